"""Exact RGB-D truth of a rendered scene: object positions and the occupancy of the world.

* ``object_truth``: per primitive of a class of interest, the centre and extent of its
  *visible* surface (mean and max - min of the exact hit points of all its pixels, camera
  optical frame, metres): what a position answer from a perfect mask and perfect depth gives.
* ``occupancy_truth``: the world's occupancy in a grid around the robot, independent of what
  the camera sees: a cell is occupied when the solid of an obstacle-class primitive crosses
  the cell's column inside the height window, free when its ground (or a drivable primitive
  such as a ramp) is drivable, unknown otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from seg_perception.geometry.grid_spec import FREE, OCCUPIED, UNKNOWN, GridSpec
from seg_perception.synthetic.rgbd import Ramp
from seg_perception.synthetic.street import Box, Cylinder, Sphere, StreetWorld, SyntheticScene

__all__ = ["TruthObject", "object_truth", "occupancy_truth"]


@dataclass(frozen=True)
class TruthObject:
    """One visible object: class id, primitive index, visible-surface centre and extent (optical frame, m)."""

    label: int
    index: int
    centre: tuple[float, float, float]
    extent: tuple[float, float, float]
    pixels: int


def object_truth(
    scene: SyntheticScene, labels: Iterable[int], min_pixels: int = 100, max_range: float = 20.0
) -> list[TruthObject]:
    """Visible objects of ``labels`` with at least ``min_pixels`` pixels within ``max_range`` metres."""
    wanted = {int(c) for c in labels}
    rot = scene.pose.rotation_optical  # optical axes in the grid frame (columns)
    out = []
    for i, prim in enumerate(scene.world.primitives):
        if int(prim.label) not in wanted:
            continue
        sel = scene.primitive_index == i
        n = int(np.count_nonzero(sel))
        if n < min_pixels:
            continue
        pts = (scene.points[sel] - scene.pose.position) @ rot  # grid -> optical
        centre = pts.mean(axis=0)
        if not np.all(np.isfinite(centre)) or float(np.linalg.norm(centre)) > max_range:
            continue
        ext = pts.max(axis=0) - pts.min(axis=0)
        out.append(TruthObject(int(prim.label), i, tuple(map(float, centre)), tuple(map(float, ext)), n))  # type: ignore[arg-type]
    return out


def _column_hits(prim: object, x: np.ndarray, y: np.ndarray, z_min: float, z_max: float) -> np.ndarray:
    """bool: whether the vertical column at (x, y) crosses ``prim`` between ``z_min`` and ``z_max``."""
    if isinstance(prim, Box):
        inside = (x >= prim.lo[0]) & (x <= prim.hi[0]) & (y >= prim.lo[1]) & (y <= prim.hi[1])
        return inside & (prim.hi[2] >= z_min) & (prim.lo[2] <= z_max)
    if isinstance(prim, Cylinder):
        inside = (x - prim.x) ** 2 + (y - prim.y) ** 2 <= prim.r**2
        return inside & (prim.z1 >= z_min) & (prim.z0 <= z_max)
    if isinstance(prim, Sphere):
        d2 = (x - prim.x) ** 2 + (y - prim.y) ** 2
        half = np.sqrt(np.maximum(prim.r**2 - d2, 0.0))
        return (d2 <= prim.r**2) & (prim.z + half >= z_min) & (prim.z - half <= z_max)
    if isinstance(prim, Ramp):
        inside = (x >= prim.x0) & (x <= prim.x1) & (y >= prim.y0) & (y <= prim.y1)
        h = prim.height(x)
        return inside & (h >= z_min) & (h <= z_max)
    return np.zeros(np.shape(x), dtype=bool)


def occupancy_truth(
    world: StreetWorld,
    grid: GridSpec,
    base_xy: tuple[float, float],
    obstacle: Iterable[int],
    drivable: Iterable[int],
    z_window: tuple[float, float] = (0.05, 2.0),
    samples: int = 3,
) -> np.ndarray:
    """int8 (rows, cols) exact occupancy of ``world`` in ``grid`` (the grid frame = the world moved by ``base_xy``).

    A cell is occupied when any of ``samples`` x ``samples`` points spread over it lies in an
    obstacle's column within ``z_window`` (grid-frame heights, metres); free when it is not
    occupied, no non-drivable primitive covers its centre and the ground (or a drivable
    primitive) there is drivable; unknown otherwise. ``max_range`` is not applied.
    """
    obstacle_ids, drivable_ids = {int(c) for c in obstacle}, {int(c) for c in drivable}
    xs, ys = grid.cell_centers()
    off = (np.arange(samples) + 0.5) / samples - 0.5
    sx = (xs[None, :, None, None] + grid.resolution * off[None, None, :, None]) + base_xy[0]
    sy = (ys[:, None, None, None] + grid.resolution * off[None, None, None, :]) + base_xy[1]
    sx, sy = np.broadcast_arrays(sx, sy)
    cx, cy = np.meshgrid(xs + base_xy[0], ys + base_xy[1])
    occupied = np.zeros(grid.shape, dtype=bool)
    drivable_here = np.isin(world.ground_label(cx, cy), list(drivable_ids))
    covered = np.zeros(grid.shape, dtype=bool)
    for prim in world.primitives:
        label = int(prim.label)
        if label in obstacle_ids:
            occupied |= _column_hits(prim, sx, sy, *z_window).any(axis=(2, 3))
        elif label in drivable_ids and isinstance(prim, Ramp):
            drivable_here |= _column_hits(prim, cx, cy, -np.inf, np.inf)
        else:
            covered |= _column_hits(prim, cx, cy, *z_window)
    out = np.full(grid.shape, UNKNOWN, dtype=np.int8)
    out[drivable_here & ~covered] = FREE
    out[occupied] = OCCUPIED
    return out
