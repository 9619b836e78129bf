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

from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.geometry.grid_spec import FREE, OCCUPIED, UNKNOWN, GridSpec
from seg_perception.synthetic.street import Box, Cylinder, Primitive, Sphere, StreetWorld

_EDGE_EPS = 1e-3  # metres outside a footprint at which an edge point's visibility is judged
_GROUND_EPS = 1e-6


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

    def edge_cells(self, primitive: int | None = None, min_facing: float = -1.0) -> np.ndarray:
        """Flat indices of cells holding visible edge points, unique, sorted.

        Args:
            primitive: only this primitive's edge (index into ``world.primitives``); None for all.
            min_facing: only edge points with ``edge_facing >= min_facing`` (e.g. cos(75 deg)
                keeps the front edges and drops sides seen at grazing incidence).
        """
        sel = self.edge_facing >= min_facing
        if primitive is not None:
            sel &= self.edge_primitive == primitive
        pts = self.edge_points[sel]
        idx = self.grid.cell_index(pts[:, 0], pts[:, 1])
        return np.unique(idx[idx >= 0])


def _interval_slab(o: np.ndarray, d: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Parameter interval where o + t d (per point) lies in [lo, hi] along one axis."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - o) / d
        t2 = (hi - o) / d
    parallel = np.abs(d) < 1e-15
    inside = (o >= lo) & (o <= hi)
    tmin = np.where(parallel, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
    tmax = np.where(parallel, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
    return tmin, tmax


def _interval_quadratic(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameter interval where a t^2 + b t + c <= 0 with a >= 0 (empty: tmin > tmax)."""
    disc = b * b - 4 * a * c
    small = a < 1e-15
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.maximum(disc, 0.0))
        t1 = (-b - root) / (2 * a)
        t2 = (-b + root) / (2 * a)
    # a ~ 0: the quadratic is the constant c (b is 0 whenever a is 0 for our uses).
    tmin = np.where(small, np.where(c <= 0, -np.inf, np.inf), np.where(disc >= 0, t1, np.inf))
    tmax = np.where(small, np.where(c <= 0, np.inf, -np.inf), np.where(disc >= 0, t2, -np.inf))
    return tmin, tmax


def segment_interval(start: np.ndarray, ends: np.ndarray, prim: Primitive) -> tuple[np.ndarray, np.ndarray]:
    """Parameter interval [tmin, tmax] (each (N,)) where start + t (ends[i] - start) lies in the solid ``prim``.

    ``start`` (3,), ``ends`` (N, 3), metres; empty where tmin > tmax. The solids are
    convex, so the interval is the intersection of per-constraint intervals.
    """
    d = ends - start
    n = len(ends)
    tlo = np.full(n, -np.inf)
    thi = np.full(n, np.inf)
    if isinstance(prim, Box):
        for ax in range(3):
            a, b = _interval_slab(np.full(n, start[ax]), d[:, ax], prim.lo[ax], prim.hi[ax])
            tlo, thi = np.maximum(tlo, a), np.minimum(thi, b)
    elif isinstance(prim, Cylinder):
        ox, oy = start[0] - prim.x, start[1] - prim.y
        a = d[:, 0] ** 2 + d[:, 1] ** 2
        b = 2 * (d[:, 0] * ox + d[:, 1] * oy)
        c = np.full(n, ox * ox + oy * oy - prim.r * prim.r)
        q0, q1 = _interval_quadratic(a, b, c)
        z0, z1 = _interval_slab(np.full(n, start[2]), d[:, 2], prim.z0, prim.z1)
        tlo, thi = np.maximum(q0, z0), np.minimum(q1, z1)
    elif isinstance(prim, Sphere):
        oc = start - np.array([prim.x, prim.y, prim.z])
        a = np.einsum("ij,ij->i", d, d)
        b = 2 * d @ oc
        c = np.full(n, oc @ oc - prim.r * prim.r)
        tlo, thi = _interval_quadratic(a, b, c)
    else:
        raise TypeError(f"unknown primitive {type(prim).__name__}")
    return tlo, thi


def segment_blocked(start: np.ndarray, ends: np.ndarray, prim: Primitive, t_max: float = 1.0 - 1e-9) -> np.ndarray:
    """Whether segments start -> ends[i] meet the solid ``prim`` at a parameter t in (1e-9, t_max].

    The open start and the margin below 1 keep a segment that merely ends on a face
    from counting as blocked by it.
    """
    tlo, thi = segment_interval(start, ends, prim)
    return np.maximum(tlo, 1e-9) <= np.minimum(thi, t_max)


def _footprint_2d(prim: Primitive) -> tuple[np.ndarray, float]:
    """Centre (2,) and radius (metres) of a circle holding the primitive's vertical projection."""
    if isinstance(prim, Box):
        lo, hi = np.asarray(prim.lo[:2], float), np.asarray(prim.hi[:2], float)
        return 0.5 * (lo + hi), float(0.5 * np.hypot(*(hi - lo)))
    return np.array([prim.x, prim.y], float), float(prim.r)


def _visible(world: StreetWorld, camera: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Whether ground points (N, 2) are unoccluded from ``camera`` (3,).

    A segment can only meet a primitive whose vertical projection its own vertical
    projection crosses, so each primitive is tested only against points inside the
    azimuth wedge (seen from above the camera) of its bounding circle and beyond its
    nearest distance: a conservative cull, the exact test decides.
    """
    vis = np.ones(len(points), dtype=bool)
    if len(points) == 0:
        return vis
    rel = points - camera[:2]
    dist = np.hypot(rel[:, 0], rel[:, 1])
    ends = np.concatenate([points, np.zeros((len(points), 1))], axis=1)
    for prim in world.primitives:
        centre, radius = _footprint_2d(prim)
        dc = float(np.hypot(*(centre - camera[:2])))
        cand = vis & (dist >= dc - radius - 1e-6)
        if dc > radius + 1e-6:
            # Inside the wedge: the angle to the centre direction is at most asin(radius / dc).
            u = (centre - camera[:2]) / dc
            cos_half = np.sqrt(1.0 - (radius / dc) ** 2) - 1e-9
            cand &= rel @ u >= dist * cos_half
        idx = np.flatnonzero(cand)
        if idx.size:
            vis[idx[segment_blocked(camera, ends[idx], prim)]] = False
    return vis


def _in_view(intrinsics: CameraIntrinsics, pose: CameraPose, points: np.ndarray) -> np.ndarray:
    """Whether ground points (N, 2) project inside the image's pixel area."""
    p = np.concatenate([points, np.zeros((len(points), 1))], axis=1)
    p_opt = (p - pose.position) @ pose.rotation_optical
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
    idx = idx[_in_view(intrinsics, pose, points[idx])]
    idx = idx[_visible(world, cam, points[idx])]
    out = np.zeros(len(points), dtype=bool)
    out[idx] = True
    return out


def footprint_boundary(prim: Primitive, step: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Boundary points (N, 2) and outward unit normals (N, 2) of a grounded primitive's footprint, or None."""
    if isinstance(prim, Box):
        if prim.lo[2] > _GROUND_EPS or prim.hi[2] <= 0:
            return None
        (x0, y0), (x1, y1) = prim.lo[:2], prim.hi[:2]
        pts, nrm = [], []
        for (ax, ay), (bx, by), n in (
            ((x0, y0), (x1, y0), (0.0, -1.0)),
            ((x1, y0), (x1, y1), (1.0, 0.0)),
            ((x1, y1), (x0, y1), (0.0, 1.0)),
            ((x0, y1), (x0, y0), (-1.0, 0.0)),
        ):
            k = max(2, int(np.ceil(np.hypot(bx - ax, by - ay) / step)) + 1)
            t = np.linspace(0.0, 1.0, k)
            pts.append(np.stack([ax + t * (bx - ax), ay + t * (by - ay)], axis=1))
            nrm.append(np.tile(n, (k, 1)))
        return np.concatenate(pts), np.concatenate(nrm)
    if isinstance(prim, Cylinder):
        if prim.z0 > _GROUND_EPS or prim.z1 <= 0:
            return None
        cx, cy, r = prim.x, prim.y, prim.r
    elif isinstance(prim, Sphere):
        if prim.z - prim.r > _GROUND_EPS:
            return None
        cx, cy, r = prim.x, prim.y, float(np.sqrt(max(prim.r**2 - prim.z**2, 0.0)))
        if r <= 0:
            return None
    else:
        raise TypeError(f"unknown primitive {type(prim).__name__}")
    k = max(8, int(np.ceil(2 * np.pi * r / step)))
    a = np.arange(k) * (2 * np.pi / k)
    nrm = np.stack([np.cos(a), np.sin(a)], axis=1)
    return np.array([cx, cy]) + r * nrm, nrm


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
    in_view[in_view] = _in_view(intrinsics, pose, corners[in_view])
    corner_seen = in_view.copy()
    corner_seen[in_view] = _visible(world, cam, corners[in_view])
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


def nearest_edge_in_sectors(
    edge_points: np.ndarray, angle_min: float, angle_increment: float, n_beams: int, half_width: float
) -> np.ndarray:
    """Per beam, the smallest distance from the origin of edge points whose bearing is within
    ``half_width`` radians of the beam's bearing; +inf where none. Returns (n_beams,) float64."""
    out = np.full(n_beams, np.inf)
    if len(edge_points) == 0:
        return out
    bearing = np.arctan2(edge_points[:, 1], edge_points[:, 0])
    dist = np.hypot(edge_points[:, 0], edge_points[:, 1])
    for i in range(n_beams):
        delta = np.angle(np.exp(1j * (bearing - (angle_min + i * angle_increment))))
        sel = np.abs(delta) <= half_width
        if sel.any():
            out[i] = dist[sel].min()
    return out


def footprint_ray_distance(world: StreetWorld, obstacle_classes: Iterable[int], angles: np.ndarray) -> np.ndarray:
    """Distance along rays from the grid origin at ``angles`` (radians) to the first grounded obstacle
    footprint (visible or not); +inf where none. Returns (len(angles),) float64."""
    obstacle = set(int(c) for c in obstacle_classes)
    far = 1e4
    ends = far * np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
    best = np.full(len(angles), np.inf)
    for prim in world.primitives:
        if prim.label not in obstacle or footprint_boundary(prim, 1.0) is None:
            continue
        # The footprint is the solid's cross-section at ground level: cut the rays (z = 0) against it.
        if isinstance(prim, Sphere):
            r = float(np.sqrt(max(prim.r**2 - prim.z**2, 0.0)))
            prim = Cylinder(prim.x, prim.y, r, -1.0, 1.0, prim.label, prim.color)
        tlo, thi = segment_interval(np.zeros(3), ends, prim)
        hit = (tlo <= thi) & (thi >= 0)
        best = np.where(hit, np.minimum(best, np.maximum(tlo, 0.0) * far), best)
    return best
