"""The newest camera_info and the intrinsics of the images that arrive (cached per message and size)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seg_perception.errors import GeometryError
from seg_perception.geometry.camera import CameraIntrinsics
from seg_perception.geometry.camera_info import intrinsics_for_image
from seg_perception.runtime_stats import PipelineStats

__all__ = ["CameraState"]


class CameraState:
    """camera_info as the node uses it: ``image_rectified``, roi and binning applied, sizes checked.

    Args:
        stats: the node's counters (``camera_info_size_mismatch``).
        warn: ``warn(key, text)``, the node's throttled warning.
    """

    def __init__(self, stats: PipelineStats, warn: Callable[[str, str], None]) -> None:
        self.info: Any | None = None
        self._stats, self._warn = stats, warn
        self._cache: tuple[Any, tuple[int, int], bool, CameraIntrinsics] | None = None

    def intrinsics(self, shape: tuple[int, int], rectified: bool) -> CameraIntrinsics | None:
        """:meth:`intrinsics_of` the newest camera_info, or None (none yet, or unusable: warned)."""
        if self.info is None:
            return None
        try:
            return self.intrinsics_of(self.info, shape, rectified)
        except GeometryError as err:
            self._warn("camera_info", f"camera_info unusable: {err}")
            return None

    def intrinsics_of(self, info: Any, shape: tuple[int, int], rectified: bool) -> CameraIntrinsics:
        """Intrinsics of an (H, W) image described by ``info``; rescaled, warned and counted when the
        sizes differ. Raises GeometryError for unusable camera_info."""
        cached = self._cache
        if cached is not None and cached[0] is info and cached[1] == tuple(shape) and cached[2] == rectified:
            return cached[3]
        intrinsics = intrinsics_for_image(info, rectified)
        if (intrinsics.height, intrinsics.width) != tuple(shape):
            self._stats.on_publish("camera_info_size_mismatch")
            self._warn(
                "camera_size",
                f"image {shape[1]}x{shape[0]} differs from camera_info "
                f"{intrinsics.width}x{intrinsics.height} (after roi/binning): "
                "intrinsics rescaled; check the camera_info remap",
            )
            intrinsics = intrinsics.scaled(shape[1], shape[0])
        self._cache = (info, tuple(shape), rectified, intrinsics)
        return intrinsics
