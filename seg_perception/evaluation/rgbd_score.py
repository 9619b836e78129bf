"""Scores of RGB-D outputs against exact truth: a grid against the world's occupancy, positions against objects.

Grid (both ``(rows, cols)`` int8, 0 free, 100 occupied, -1 unknown, same ``GridSpec``):

* ``obstacle_range_error_m``: along beams from the camera (every 0.5 degrees across the
  camera's horizontal field of view, out to ``max_range``), the distance to the first
  occupied cell of the prediction minus that of the truth, where both have one; the
  nearest obstacle on a beam is the one the camera sees, so truth hidden behind it does
  not count. ``missed_beams``/``phantom_beams``: beams where only the truth / only the
  prediction has an obstacle.
* ``occupied_precision``: predicted-occupied cells within one cell (8-neighbours) of a
  truly occupied cell, as a fraction of predicted-occupied cells.
* ``false_free``: predicted-free cells that are truly occupied, as a fraction of predicted-free.

Positions: each true object is looked up the way a query answer is built: the predicted
connected component of its class at (or, within ``search_px``, nearest to) the pixel its
true centre projects to, then ``depth.position.object_position`` on that component.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from seg_perception.depth.cloud import NormalizedRays
from seg_perception.depth.position import object_position
from seg_perception.geometry.camera import CameraIntrinsics
from seg_perception.geometry.grid_spec import FREE, OCCUPIED, GridSpec

__all__ = ["PositionError", "grid_errors", "position_errors"]


def _first_occupied(grid: np.ndarray, spec: GridSpec, origin: tuple[float, float], angles: np.ndarray) -> np.ndarray:
    """Distance (m) along each beam from ``origin`` to its first occupied cell; inf where none in range."""
    step = spec.resolution / 4
    r = np.arange(step, spec.max_range, step)
    x = origin[0] + np.cos(angles)[:, None] * r[None, :]
    y = origin[1] + np.sin(angles)[:, None] * r[None, :]
    idx = spec.cell_index(x.ravel(), y.ravel()).reshape(x.shape)
    occ = np.where(idx >= 0, grid.ravel()[np.maximum(idx, 0)] == OCCUPIED, False)
    first = np.where(occ.any(axis=1), r[np.argmax(occ, axis=1)], np.inf)
    return first


def grid_errors(
    pred: np.ndarray, truth: np.ndarray, spec: GridSpec, origin: tuple[float, float], yaw: float, hfov: float
) -> dict[str, float]:
    """Errors of ``pred`` against ``truth`` (module docstring); ``origin`` (m), ``yaw`` and ``hfov`` (rad)."""
    angles = yaw + np.arange(-hfov / 2, hfov / 2, np.radians(0.5))
    rp, rt = _first_occupied(pred, spec, origin, angles), _first_occupied(truth, spec, origin, angles)
    both = np.isfinite(rp) & np.isfinite(rt)
    err = np.abs(rp[both] - rt[both])
    occ, tocc = pred == OCCUPIED, truth == OCCUPIED
    near = cv2.dilate(tocc.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    free = pred == FREE
    return {
        "obstacle_range_error_m": float(np.median(err)) if err.size else float("nan"),
        "obstacle_range_error_p95_m": float(np.percentile(err, 95)) if err.size else float("nan"),
        "beams": int(both.sum()),
        "missed_beams": int((np.isinf(rp) & np.isfinite(rt)).sum()),
        "phantom_beams": int((np.isfinite(rp) & np.isinf(rt)).sum()),
        "occupied_precision": float((occ & near).sum() / occ.sum()) if occ.any() else float("nan"),
        "false_free": float((free & tocc).sum() / free.sum()) if free.any() else float("nan"),
        "occupied_cells": int(occ.sum()),
    }


@dataclass(frozen=True)
class PositionError:
    """One true object: its class, true range (m), error of the found position (m; None: not found)."""

    name: str
    range_m: float
    error_m: float | None


def _component_at(mask: np.ndarray, uv: np.ndarray, search_px: int) -> np.ndarray | None:
    """The 8-connected component of ``mask`` at pixel ``uv`` (or the most common one within ``search_px``)."""
    h, w = mask.shape
    u, v = int(round(uv[0])), int(round(uv[1]))
    if not (0 <= u < w and 0 <= v < h):
        return None
    n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    pick = int(comp[v, u])
    if pick == 0:
        win = comp[max(0, v - search_px) : v + search_px + 1, max(0, u - search_px) : u + search_px + 1]
        ids = win[win > 0]
        if ids.size == 0:
            return None
        pick = int(np.bincount(ids).argmax())
    return comp == pick


def position_errors(
    labels: np.ndarray,
    depth_m: np.ndarray,
    intrinsics: CameraIntrinsics,
    truth: Sequence[object],
    class_names: Sequence[str],
    rays: NormalizedRays | None = None,
    search_px: int = 6,
) -> list[PositionError]:
    """Position errors of the true objects (``rgbd_bag.TruthPosition``) from predicted ``labels`` and depth."""
    out = []
    for obj in truth:
        centre = np.asarray(obj.centre, dtype=np.float64)  # type: ignore[attr-defined]
        name = str(obj.name)  # type: ignore[attr-defined]
        rng = float(np.linalg.norm(centre))
        if name not in class_names or centre[2] <= 0:
            out.append(PositionError(name, rng, None))
            continue
        uv = intrinsics.project(centre[None, :])[0]
        comp = _component_at(labels == class_names.index(name), uv, search_px)
        pos = object_position(comp, depth_m, intrinsics, rays=rays) if comp is not None else None
        err = None if pos is None else float(np.linalg.norm(np.asarray(pos.centre) - centre))
        out.append(PositionError(name, rng, err))
    return out
