"""Back-projection of depth pixels to 3D points (optical frame) and to the grid frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg_perception.errors import GeometryError
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose

__all__ = ["LabeledPoints", "NormalizedRays", "labeled_points", "to_grid_frame"]


class NormalizedRays:
    """Undistorted normalised coordinates (x/z, y/z) of every pixel, cached per intrinsics."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._xy: tuple[np.ndarray, np.ndarray] | None = None

    def get(self, intrinsics: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) float32 H x W each: a pixel with depth z is the optical point (x z, y z, z)."""
        key = (intrinsics.width, intrinsics.height, intrinsics.k.tobytes(), intrinsics.d.tobytes())
        if key != self._key or self._xy is None:
            v, u = np.mgrid[0 : intrinsics.height, 0 : intrinsics.width].astype(np.float64)
            x, y = intrinsics.undistort_pixels(u, v)
            self._xy = (x.astype(np.float32), y.astype(np.float32))
            self._key = key
        return self._xy


@dataclass(frozen=True)
class LabeledPoints:
    """Points of the kept pixels, camera optical frame.

    Attributes:
        xyz: float32 N x 3, metres (x right, y down, z forward).
        label: uint8 N class ids.
        rows, cols: int32 N pixel coordinates the points come from.
        rgb: uint8 N x 3 colours (RGB), or None.
    """

    xyz: np.ndarray
    label: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    rgb: np.ndarray | None = None


def labeled_points(
    depth_m: np.ndarray,
    labels: np.ndarray,
    intrinsics: CameraIntrinsics,
    stride: int = 1,
    rgb: np.ndarray | None = None,
    rays: NormalizedRays | None = None,
) -> LabeledPoints:
    """Every ``stride``-th pixel (rows and columns) with a depth reading, as a labelled 3D point.

    Args:
        depth_m: float32 H x W metres, NaN = no reading (see ``depth.image``).
        labels: uint8 H x W class ids of the same frame.
        intrinsics: the colour camera at H x W.
        stride: decimation >= 1.
        rgb: optional H x W x 3 uint8 colours to carry along.
        rays: a cache of normalised coordinates (reused across frames).

    Raises:
        GeometryError: shapes disagree or stride < 1.
    """
    h, w = depth_m.shape[:2]
    if labels.shape[:2] != (h, w) or (intrinsics.height, intrinsics.width) != (h, w):
        raise GeometryError(
            f"depth {h}x{w}, labels {labels.shape[0]}x{labels.shape[1]} and camera "
            f"{intrinsics.height}x{intrinsics.width} must agree"
        )
    if int(stride) < 1:
        raise GeometryError(f"point decimation must be >= 1, got {stride}")
    s = int(stride)
    x, y = (rays or NormalizedRays()).get(intrinsics)
    z = depth_m[::s, ::s]
    keep = np.isfinite(z)
    rr, cc = np.nonzero(keep)
    zk = z[keep].astype(np.float32)
    xyz = np.stack([x[::s, ::s][keep] * zk, y[::s, ::s][keep] * zk, zk], axis=1)
    rows, cols = (rr * s).astype(np.int32), (cc * s).astype(np.int32)
    colours = None if rgb is None else np.ascontiguousarray(rgb[rows, cols, :3], dtype=np.uint8)
    return LabeledPoints(xyz, labels[rows, cols].astype(np.uint8), rows, cols, colours)


def to_grid_frame(xyz_optical: np.ndarray, pose: CameraPose) -> np.ndarray:
    """N x 3 optical-frame points to the grid frame (x forward, y left, z up), float64 metres."""
    pts = np.asarray(xyz_optical, dtype=np.float64)
    return pts @ pose.rotation_optical.T + pose.position
