"""Package exceptions. Every error the library raises derives from SegPerceptionError."""

from __future__ import annotations


class SegPerceptionError(Exception):
    """Base class of every error raised by seg_perception."""


class ConfigError(SegPerceptionError):
    """A parameter or configuration value is invalid."""


class ModelError(SegPerceptionError):
    """A model file or its metadata is missing, corrupt or inconsistent."""


class BackendUnavailable(SegPerceptionError):
    """An inference backend cannot run on this machine (library or device missing)."""


class ImageError(SegPerceptionError):
    """An image or image message is malformed or has an unsupported encoding."""


class DatasetError(SegPerceptionError):
    """A dataset folder, split file or label image is missing or inconsistent."""


class BagError(SegPerceptionError):
    """A rosbag is missing, corrupt, or lacks the requested topics."""


class GeometryError(SegPerceptionError):
    """Camera intrinsics or pose are invalid for projection."""
