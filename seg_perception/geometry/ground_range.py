"""Per-pixel ground range: how far along the ground (metres) each pixel's ray meets the floor.

The query service ranks "nearest" / "farthest" instances by it (the 10th percentile of an
instance's ranges is its near face, see ``query/instances.py``). For an object standing on
the ground, the pixels where it touches the floor carry its true range; the ray of any pixel
higher up meets the floor behind it, so low percentiles are the ones that mean something.
"""

from __future__ import annotations

import numpy as np

from seg_perception.errors import GeometryError
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose, pixel_rays_grid
from seg_perception.geometry.ground import ground_hits

__all__ = ["ground_ranges", "GroundRangeCache"]


def ground_ranges(intrinsics: CameraIntrinsics, pose: CameraPose, max_range: float = np.inf) -> np.ndarray:
    """Horizontal distance (metres, grid frame) from the camera to where each pixel's ray meets z = 0.

    Args:
        intrinsics: the camera at the image's size (distortion honoured).
        pose: camera body pose in the grid frame (REP-103: x forward, z up); z must be > 0.
        max_range: ranges beyond it become NaN.

    Returns:
        float32 H x W (``intrinsics.height`` x ``intrinsics.width``); NaN at or above the
        horizon, beyond ``max_range`` and where the distortion model cannot be inverted.

    Raises:
        GeometryError: the camera is not above the ground.
    """
    origin = pose.position
    if not origin[2] > 0:
        raise GeometryError(f"camera must be above the ground (z > 0), got z = {origin[2]} m")
    rays = pixel_rays_grid(intrinsics, pose)  # unit vectors, H x W x 3
    x, y, valid = ground_hits(origin, rays, np.isfinite(rays).all(axis=-1), max_range)
    return np.where(valid, np.hypot(x - origin[0], y - origin[1]), np.nan).astype(np.float32)


class GroundRangeCache:
    """:func:`ground_ranges` for the newest camera, recomputed only when size, intrinsics or pose change.

    Not thread-safe by itself: one caller (the query callback) uses it.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: np.ndarray | None = None

    def get(
        self, intrinsics: CameraIntrinsics, pose: CameraPose, shape: tuple[int, int], max_range: float = np.inf
    ) -> np.ndarray:
        """Ranges for an ``shape`` = (H, W) image (intrinsics rescaled to it when they differ)."""
        h, w = int(shape[0]), int(shape[1])
        if (intrinsics.width, intrinsics.height) != (w, h):
            intrinsics = intrinsics.scaled(w, h)
        key = (
            h,
            w,
            intrinsics.k.tobytes(),
            np.asarray(intrinsics.d).tobytes(),
            tuple(pose.xyz),
            tuple(pose.rpy),
            float(max_range),
        )
        if key != self._key or self._value is None:
            self._value = ground_ranges(intrinsics, pose, max_range)
            self._key = key
        return self._value
