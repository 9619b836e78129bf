"""Camera intrinsics for bags: from a node params file's ``camera_info.*``, else a default pinhole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seg_perception.errors import ConfigError, GeometryError
from seg_perception.geometry.camera import CameraIntrinsics

#: Horizontal field of view of the fallback pinhole camera (the synthetic street camera's).
DEFAULT_HFOV_DEG = 62.0


def _ros_parameters(doc: Any, node_name: str = "seg_perception") -> dict:
    """The ``ros__parameters`` mapping for ``node_name`` (or ``/**``) of a ROS 2 params file."""
    if not isinstance(doc, dict):
        return {}
    for key in (node_name, f"/{node_name}", "/**"):
        section = doc.get(key)
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            return section["ros__parameters"]
    for section in doc.values():  # a namespaced node: /ns/seg_perception
        if isinstance(section, dict):
            found = _ros_parameters(section, node_name)
            if found:
                return found
    return {}


def _lookup(params: dict, dotted: str) -> Any:
    """A parameter given either nested (camera_info: {width: ..}) or flat ("camera_info.width")."""
    if dotted in params:
        return params[dotted]
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def default_camera_config_path() -> Path:
    """``config/camvid.yaml`` of the source tree (may not exist)."""
    return Path(__file__).resolve().parents[2] / "config" / "camvid.yaml"


def load_camera_config(path: str | Path) -> CameraIntrinsics | None:
    """Intrinsics from a node params file's ``camera_info.{width,height,k,d}``; None when it has none.

    Raises ConfigError when the file is unreadable or its camera_info values are invalid.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read camera config {path}: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"camera config {path} is not valid YAML: {err}") from err
    params = _ros_parameters(doc)
    values = {key: _lookup(params, f"camera_info.{key}") for key in ("width", "height", "k", "d")}
    if values["k"] is None or values["width"] is None or values["height"] is None:
        return None
    try:
        return CameraIntrinsics(
            int(values["width"]),
            int(values["height"]),
            np.asarray(values["k"], np.float64).reshape(3, 3),
            np.asarray(values["d"] if values["d"] is not None else [], np.float64),
        )
    except (GeometryError, TypeError, ValueError) as err:
        raise ConfigError(f"camera config {path}: invalid camera_info: {err}") from err


def camera_for_image(width: int, height: int, config: str | Path | None = None) -> tuple[CameraIntrinsics, str]:
    """Intrinsics for ``width`` x ``height`` images and where they came from.

    From ``config`` (a node params file; None = ``config/camvid.yaml`` when present),
    rescaled when the configured size differs from the images'; otherwise a pinhole
    with a 62 degree horizontal field of view, square pixels, the principal point at
    the image centre and no distortion. An explicitly given ``config`` that does not
    exist is an error.
    """
    path = Path(config) if config is not None else default_camera_config_path()
    if config is not None and not path.exists():
        raise ConfigError(f"camera config {path} does not exist")
    cam = load_camera_config(path) if path.exists() else None
    if cam is None:
        source = f"default pinhole (hfov {DEFAULT_HFOV_DEG} deg; no camera_info in {path})"
        return CameraIntrinsics.from_fov(width, height, DEFAULT_HFOV_DEG), source
    if (cam.width, cam.height) != (width, height):
        return cam.scaled(width, height), f"{path} (scaled from {cam.width}x{cam.height})"
    return cam, str(path)
