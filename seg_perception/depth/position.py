"""Where an object is: a robust centre and extent of the depth points under its mask."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from seg_perception.depth.cloud import NormalizedRays
from seg_perception.geometry.camera import CameraIntrinsics

__all__ = ["ObjectPosition", "object_position"]

#: a jump of more than max(_GAP_M, _GAP_REL x depth) between consecutive sorted depths separates surfaces
_GAP_M = 0.03
_GAP_REL = 0.02


@dataclass(frozen=True)
class ObjectPosition:
    """Centre and size of an object's depth points, camera optical frame, metres.

    Attributes:
        centre: (x, y, z) mean of the inlier points.
        extent: (x, y, z) max - min of the inlier points.
        points: inlier points used.
        rejected: mask pixels with depth that were dropped as edge bleed or background.
    """

    centre: tuple[float, float, float]
    extent: tuple[float, float, float]
    points: int
    rejected: int


def object_position(
    mask: np.ndarray,
    depth_m: np.ndarray,
    intrinsics: CameraIntrinsics,
    erode_px: int = 2,
    min_points: int = 5,
    rays: NormalizedRays | None = None,
) -> ObjectPosition | None:
    """Robust 3D centre of the object under ``mask`` (None when too few depth points).

    Edge pixels often bleed onto what lies behind or below the object, so the mask is first
    eroded by ``erode_px`` (kept as is when erosion would leave fewer than ``min_points``);
    then the sorted depths are split wherever consecutive values jump by more than
    ``max(3 cm, 2 % of the depth)`` and only the largest surface is kept. A continuous surface
    seen at a slant (a car's side) stays whole; a background behind the object does not join it.

    Args:
        mask: bool or uint8 H x W, non-zero = object.
        depth_m: float32 H x W metres registered to the mask, NaN = no reading.
        intrinsics: the colour camera at H x W.
    """
    sel = np.asarray(mask) > 0
    if sel.shape != depth_m.shape:
        return None
    if erode_px > 0:
        kernel = np.ones((2 * erode_px + 1, 2 * erode_px + 1), np.uint8)
        eroded = cv2.erode(sel.astype(np.uint8), kernel) > 0
        if np.count_nonzero(eroded & np.isfinite(depth_m)) >= min_points:
            sel = eroded
    sel &= np.isfinite(depth_m)
    if np.count_nonzero(sel) < min_points:
        return None
    x, y = (rays or NormalizedRays()).get(intrinsics)
    z = depth_m[sel].astype(np.float64)
    keep = _largest_surface(z)
    zk = z[keep]
    pts = np.stack([x[sel][keep] * zk, y[sel][keep] * zk, zk], axis=1)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = pts.mean(axis=0)
    return ObjectPosition(
        tuple(float(v) for v in centre),  # type: ignore[arg-type]
        tuple(float(v) for v in hi - lo),  # type: ignore[arg-type]
        int(keep.sum()),
        int((~keep).sum()),
    )


def _largest_surface(z: np.ndarray) -> np.ndarray:
    """bool mask of the depths in the most populated run of sorted depths without a jump."""
    order = np.argsort(z, kind="stable")
    zs = z[order]
    jumps = np.flatnonzero(np.diff(zs) > np.maximum(_GAP_M, _GAP_REL * zs[1:]))
    starts = np.concatenate([[0], jumps + 1])
    stops = np.concatenate([jumps + 1, [zs.size]])
    best = int(np.argmax(stops - starts))
    keep = np.zeros(z.size, dtype=bool)
    keep[order[starts[best] : stops[best]]] = True
    return keep
