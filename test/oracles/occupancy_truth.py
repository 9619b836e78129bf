"""Exact ground-truth occupancy of a StreetWorld seen by a camera, for testing the projector.

Independent of ``seg_perception.geometry.projection``: nothing here goes through pixels
or labels. The truth works in the world: it samples ground points densely inside every
grid cell and casts the segment from the camera centre to each point against the
primitives (its own segment/solid tests), and it samples every grounded obstacle's
footprint boundary.

Definitions (all on the ground plane z = 0 of the grid frame):

- a ground point is *seen* when it lies inside the grid, within ``grid.max_range``
  (horizontal distance from the camera), projects inside the image (pixel area
  ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``) and the segment camera -> point meets no
  primitive;
- a cell is **free** when one of its ``supersample**2`` sample points is seen and its
  ground class (``StreetWorld.ground_label``) is drivable;
- a cell is **occupied** when it holds a *visible edge point*: a point of the footprint
  boundary of a grounded obstacle primitive (box with ``lo z = 0``, cylinder with
  ``z0 = 0``, sphere reaching the ground) whose class is an obstacle class, such that
  the ground just outside the footprint there (1 mm along the outward normal) is seen;
- occupied wins over free; every other cell is **unknown** (occluded, out of view, out
  of range, or non-drivable ground).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from oracles.solids import footprint_boundary, visible
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.geometry.grid_spec import FREE, OCCUPIED, UNKNOWN, GridSpec
from seg_perception.synthetic.street import StreetWorld

_EDGE_EPS = 1e-3  # metres outside a footprint at which an edge point's visibility is judged


@dataclass
class OccupancyTruth:
    """Ground-truth grid and the visible obstacle edges.

    Attributes:
        state: (rows, cols) int8: 0 free, 100 occupied, -1 unknown.
        free: (rows, cols) bool: the cell holds seen drivable ground (before occupied wins).
        seen: (rows, cols) bool: some sample point of the cell is seen (any ground class).
        edge_points: (N, 2) float64 visible edge points (x, y), metres.
        edge_primitive: (N,) int index into ``world.primitives`` of each edge point.
        edge_facing: (N,) float64 cosine of the angle between the footprint's outward
            normal and the horizontal direction to the camera (1 = faces the camera,
            near 0 = seen at grazing incidence).
        grid: the grid spec used.
    """

    state: np.ndarray
    free: np.ndarray
    seen: np.ndarray
    edge_points: np.ndarray
    edge_primitive: np.ndarray
    edge_facing: np.ndarray
    grid: GridSpec

    def grazing_cells(self, min_facing: float) -> np.ndarray:
        """(rows, cols) bool: cells whose visible edge points are all seen at grazing incidence
        (``edge_facing < min_facing``, e.g. a car side in line with the camera). The image holds
        no usable evidence of such an edge: a projector cannot be asked to find it."""
        n = self.grid.n_cells
        idx = self.grid.cell_index(self.edge_points[:, 0], self.edge_points[:, 1])
        inside = idx >= 0
        front = np.zeros(n, dtype=bool)
        front[idx[inside & (self.edge_facing >= min_facing)]] = True
        graze = np.zeros(n, dtype=bool)
        graze[idx[inside & (self.edge_facing < min_facing)]] = True
        return (graze & ~front).reshape(self.grid.shape)

    def edge_cells(self, primitive: int | None = None, min_facing: float = -1.0, min_points: int = 1) -> np.ndarray:
        """Flat indices of cells holding visible edge points, unique, sorted.

        Args:
            primitive: only this primitive's edge (index into ``world.primitives``); None for all.
            min_facing: only edge points with ``edge_facing >= min_facing`` (e.g. sin(15 deg)
                keeps the front edges and drops sides seen at grazing incidence).
            min_points: only cells holding at least this many such points (edge points are
                ``edge_step`` apart, so this asks for a visible edge length in the cell).
        """
        sel = self.edge_facing >= min_facing
        if primitive is not None:
            sel &= self.edge_primitive == primitive
        pts = self.edge_points[sel]
        idx = self.grid.cell_index(pts[:, 0], pts[:, 1])
        cells, counts = np.unique(idx[idx >= 0], return_counts=True)
        return cells[counts >= min_points]


def to_optical(pose: CameraPose, p: np.ndarray) -> np.ndarray:
    """Grid-frame points (N, 3) in the camera's optical frame (per component: faster than a 3-wide matmul)."""
    r = pose.rotation_optical
    d = p - pose.position
    return np.stack([d[:, 0] * r[0, k] + d[:, 1] * r[1, k] + d[:, 2] * r[2, k] for k in range(3)], axis=1)


def in_image(intrinsics: CameraIntrinsics, pose: CameraPose, points: np.ndarray) -> np.ndarray:
    """Whether ground points (N, 2) project inside the image's pixel area."""
    p = np.concatenate([points, np.zeros((len(points), 1))], axis=1)
    p_opt = to_optical(pose, p)
    front = p_opt[:, 2] > 1e-6
    out = np.zeros(len(points), dtype=bool)
    if not front.any():
        return out
    q = p_opt[front]
    uv = intrinsics.project(q)
    w, h = intrinsics.width, intrinsics.height
    ok = (uv[:, 0] >= -0.5) & (uv[:, 0] <= w - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= h - 0.5)
    if intrinsics.has_distortion:
        # Points far outside the lens's valid region can fold back into the image.
        xn, yn = intrinsics.undistort_pixels(uv[:, 0], uv[:, 1])
        ok &= np.hypot(xn - q[:, 0] / q[:, 2], yn - q[:, 1] / q[:, 2]) < 1e-3
    out[np.flatnonzero(front)[ok]] = True
    return out


def _seen(
    world: StreetWorld, intrinsics: CameraIntrinsics, pose: CameraPose, grid: GridSpec, points: np.ndarray
) -> np.ndarray:
    cam = pose.position
    ok = np.hypot(points[:, 0] - cam[0], points[:, 1] - cam[1]) <= grid.max_range
    ok &= grid.cell_index(points[:, 0], points[:, 1]) >= 0
    idx = np.flatnonzero(ok)
    idx = idx[in_image(intrinsics, pose, points[idx])]
    idx = idx[visible(world, cam, points[idx])]
    out = np.zeros(len(points), dtype=bool)
    out[idx] = True
    return out


def occupancy_truth(
    world: StreetWorld,
    intrinsics: CameraIntrinsics,
    pose: CameraPose,
    grid: GridSpec,
    drivable_classes: Iterable[int],
    obstacle_classes: Iterable[int],
    supersample: int = 7,
    edge_step: float | None = None,
    refine_samples: int = 25,
) -> OccupancyTruth:
    """Ground-truth occupancy (see the module docstring).

    Args:
        supersample: sample points per cell side (odd keeps the centre as a sample).
        refine_samples: sample points per side in cells on a boundary (view, range, shadow,
            ground class): cells whose corners or samples disagree are sampled again this densely.
        edge_step: spacing of footprint boundary samples, metres; default resolution / 10.
    """
    drivable = np.array(sorted(set(int(c) for c in drivable_classes)), dtype=np.int64)
    obstacle = set(int(c) for c in obstacle_classes)
    res = grid.resolution
    edge_step = res / 10 if edge_step is None else edge_step

    # Cell samples only where the cell can be seen: a cell with a corner in view and in range,
    # or next to one (the view region is wider than a cell, so it cannot hide inside one).
    cam = pose.position
    gx = grid.x_min + np.arange(grid.width + 1) * res
    gy = grid.y_min + np.arange(grid.height + 1) * res
    kx, ky = np.meshgrid(gx, gy)
    corners = np.stack([kx.ravel(), ky.ravel()], axis=1)
    in_view = np.hypot(corners[:, 0] - cam[0], corners[:, 1] - cam[1]) <= grid.max_range
    in_view[in_view] = in_image(intrinsics, pose, corners[in_view])
    corner_seen = in_view.copy()
    corner_seen[in_view] = visible(world, cam, corners[in_view])
    in_view = in_view.reshape(grid.height + 1, grid.width + 1)
    corner_seen = corner_seen.reshape(grid.height + 1, grid.width + 1)

    def any4(c: np.ndarray) -> np.ndarray:
        return c[:-1, :-1] | c[1:, :-1] | c[:-1, 1:] | c[1:, 1:]

    def all4(c: np.ndarray) -> np.ndarray:
        return c[:-1, :-1] & c[1:, :-1] & c[:-1, 1:] & c[1:, 1:]

    any_corner = any4(in_view)
    near = any_corner.copy()
    near[1:] |= any_corner[:-1]
    near[:-1] |= any_corner[1:]
    near[:, 1:] |= near[:, :-1].copy()
    near[:, :-1] |= near[:, 1:].copy()
    # Cells whose corners disagree straddle a view, range or shadow boundary.
    straddle = (any4(corner_seen) & ~all4(corner_seen)) | (any4(in_view) & ~all4(in_view))

    n = grid.n_cells
    seen_cells = np.zeros(n, dtype=bool)
    free = np.zeros(n, dtype=bool)

    def sample(cells: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-sample (seen, seen drivable, cell) for k x k samples in each of ``cells``."""
        xs, ys = grid.cell_centers()
        ccx = xs[cells % grid.width]
        ccy = ys[cells // grid.width]
        offs = ((np.arange(k) + 0.5) / k - 0.5) * res
        ox, oy = np.meshgrid(offs, offs)
        px = (ccx[:, None] + ox.ravel()[None, :]).ravel()
        py = (ccy[:, None] + oy.ravel()[None, :]).ravel()
        seen = _seen(world, intrinsics, pose, grid, np.stack([px, py], axis=1))
        drv = np.isin(world.ground_label(px, py), drivable)
        return seen, seen & drv, np.repeat(cells, k * k)

    cells = np.flatnonzero(near.ravel())
    seen, seen_drv, cell_of = sample(cells, supersample)
    seen_cells[cell_of[seen]] = True
    free[cell_of[seen_drv]] = True
    # Refine cells where the samples disagree or the corners straddle a boundary: a sliver of
    # seen drivable ground there can be thinner than the sample spacing.
    k2 = supersample * supersample
    n_seen = np.bincount(np.searchsorted(cells, cell_of[seen]), minlength=cells.size)
    n_drv = np.bincount(np.searchsorted(cells, cell_of[seen_drv]), minlength=cells.size)
    mixed = ((n_seen > 0) & (n_seen < k2)) | ((n_drv > 0) & (n_drv < k2)) | straddle.ravel()[cells]
    refine = cells[mixed]
    if refine.size and refine_samples > supersample:
        seen, seen_drv, cell_of = sample(refine, refine_samples)
        seen_cells[cell_of[seen]] = True
        free[cell_of[seen_drv]] = True

    edge_pts, edge_prim, edge_face = [], [], []
    for i, prim in enumerate(world.primitives):
        if prim.label not in obstacle:
            continue
        fb = footprint_boundary(prim, edge_step)
        if fb is None:
            continue
        pts, nrm = fb
        vis = _seen(world, intrinsics, pose, grid, pts + _EDGE_EPS * nrm)
        to_cam = cam[:2] - pts[vis]
        facing = np.einsum("ij,ij->i", nrm[vis], to_cam) / np.maximum(np.hypot(to_cam[:, 0], to_cam[:, 1]), 1e-12)
        edge_pts.append(pts[vis])
        edge_prim.append(np.full(int(vis.sum()), i))
        edge_face.append(facing)
    edge_points = np.concatenate(edge_pts) if edge_pts else np.zeros((0, 2))
    edge_primitive = np.concatenate(edge_prim) if edge_prim else np.zeros(0, dtype=np.int64)
    edge_facing = np.concatenate(edge_face) if edge_face else np.zeros(0)

    state = np.full(n, UNKNOWN, dtype=np.int8)
    state[free] = FREE
    occ = grid.cell_index(edge_points[:, 0], edge_points[:, 1])
    state[occ[occ >= 0]] = OCCUPIED
    return OccupancyTruth(
        state=state.reshape(grid.shape),
        free=free.reshape(grid.shape),
        seen=seen_cells.reshape(grid.shape),
        edge_points=edge_points,
        edge_primitive=edge_primitive,
        edge_facing=edge_facing,
        grid=grid,
    )



__all__ = ["OccupancyTruth", "in_image", "occupancy_truth", "to_optical"]
