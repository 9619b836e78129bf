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
_EDGE_ON_MARGIN = 0.4  # obstacle_course keeps box faces at least this far (metres) out of line with the camera


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


def _to_optical(pose: CameraPose, p: np.ndarray) -> np.ndarray:
    """Grid-frame points (N, 3) in the camera's optical frame (per component: faster than a 3-wide matmul)."""
    r = pose.rotation_optical
    d = p - pose.position
    return np.stack([d[:, 0] * r[0, k] + d[:, 1] * r[1, k] + d[:, 2] * r[2, k] for k in range(3)], axis=1)


def _in_view(intrinsics: CameraIntrinsics, pose: CameraPose, points: np.ndarray) -> np.ndarray:
    """Whether ground points (N, 2) project inside the image's pixel area."""
    p = np.concatenate([points, np.zeros((len(points), 1))], axis=1)
    p_opt = _to_optical(pose, p)
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


def footprint_points(
    world: StreetWorld, obstacle_classes: Iterable[int], step: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boundary points (N, 2) of every grounded obstacle footprint, seen or not, and their primitive index (N,)."""
    obstacle = set(int(c) for c in obstacle_classes)
    pts, idx = [], []
    for i, prim in enumerate(world.primitives):
        if prim.label not in obstacle:
            continue
        fb = footprint_boundary(prim, step)
        if fb is not None:
            pts.append(fb[0])
            idx.append(np.full(len(fb[0]), i))
    if not pts:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    return np.concatenate(pts), np.concatenate(idx)


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


def footprint_ray_distance(
    world: StreetWorld, obstacle_classes: Iterable[int], angles: np.ndarray, erode: float = 0.0
) -> np.ndarray:
    """Distance along rays from the grid origin at ``angles`` (radians) to the first grounded obstacle
    footprint (visible or not); +inf where none. Returns (len(angles),) float64.

    ``erode`` (metres) shrinks every footprint first, so a ray that only grazes a corner or an
    edge by less than that does not count."""
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
        if erode > 0:
            if isinstance(prim, Box):
                lo = (prim.lo[0] + erode, prim.lo[1] + erode, -1.0)
                hi = (prim.hi[0] - erode, prim.hi[1] - erode, 1.0)
                if lo[0] >= hi[0] or lo[1] >= hi[1]:
                    continue
                prim = Box(lo, hi, prim.label, prim.color)
            else:
                if prim.r <= erode:
                    continue
                prim = Cylinder(prim.x, prim.y, prim.r - erode, -1.0, 1.0, prim.label, prim.color)
        tlo, thi = segment_interval(np.zeros(3), ends, prim)
        hit = (tlo <= thi) & (thi >= 0)
        best = np.where(hit, np.minimum(best, np.maximum(tlo, 0.0) * far), best)
    return best


def _framed(intrinsics: CameraIntrinsics, pose: CameraPose, prim: Primitive) -> bool:
    """Whether no part of the primitive's footprint lies below the image bottom (cut off by the view).

    An obstacle cut by the image bottom can only be reported at the near edge of the view
    (it is at least that close): a separate case, kept out of the exact-geometry scenes.
    """
    fb = footprint_boundary(prim, 0.05)
    if fb is None:
        return True
    p = np.concatenate([fb[0], np.zeros((len(fb[0]), 1))], axis=1)
    p_opt = _to_optical(pose, p)
    if np.any(p_opt[:, 2] <= 1e-6):
        return False
    uv = intrinsics.project(p_opt)
    across = (uv[:, 0] >= -0.5) & (uv[:, 0] <= intrinsics.width - 0.5)
    return not np.any(across & (uv[:, 1] > intrinsics.height - 0.5))


def obstacle_course(
    seed: int,
    intrinsics: CameraIntrinsics,
    pose: CameraPose,
    grid: GridSpec,
    n_obstacles: int | None = None,
    occluders: bool = True,
) -> StreetWorld:
    """A street with obstacles placed where the camera sees them: a scene for occupancy tests.

    Cars, pedestrians, poles, a cyclist and a fence segment (``n_obstacles``, default one
    per 10 m^2 of range disk area, 2 to 6) stand at random ground points between 0.3 and
    0.9 of ``grid.max_range`` from the camera that project into the image, with no part of
    their footprint below the image bottom and no box face in line with the camera;
    with ``occluders``, a tree (TREE trunk and crown) and a road sign on a thin post (SIGN)
    add occlusion by classes that are usually neither drivable nor obstacle. Deterministic
    for a given seed and camera.
    """
    from seg_perception.synthetic.street import BICYCLIST, CAR, FENCE, PEDESTRIAN, POLE, SIGN, TREE

    rng = np.random.default_rng(seed)
    cam = pose.position
    if n_obstacles is None:
        n_obstacles = int(np.clip(round(grid.max_range**2 / 10.0), 2, 6))
    world = StreetWorld(
        road_half_width=float(rng.uniform(2.5, 5.0)),
        road_center=float(cam[1] + rng.uniform(-1.0, 1.0)),
        sidewalk_width=float(rng.uniform(1.5, 3.0)),
    )
    # Candidate stand points: in range, in the grid and in view.
    r = grid.max_range * np.sqrt(rng.uniform(0.09, 0.81, 4000))
    yaw = pose.rpy[2]
    a = yaw + rng.uniform(-np.pi / 2, np.pi / 2, 4000)
    pts = np.stack([cam[0] + r * np.cos(a), cam[1] + r * np.sin(a)], axis=1)
    ok = (grid.cell_index(pts[:, 0], pts[:, 1]) >= 0) & _in_view(intrinsics, pose, pts)
    pts = pts[ok]
    placed: list[tuple[float, float, float]] = []  # (x, y, radius) of placed footprints
    prims: list[Primitive] = []
    kinds = [CAR, PEDESTRIAN, POLE, CAR, BICYCLIST, FENCE, PEDESTRIAN, POLE, CAR]
    for i in range(n_obstacles):
        kind = kinds[i % len(kinds)]
        for x, y in pts[rng.permutation(len(pts))[:50]]:
            if kind == CAR:
                ln, wd, ht = rng.uniform(3.8, 4.6), rng.uniform(1.6, 1.9), rng.uniform(1.3, 1.6)
                prim: Primitive = Box((x, y - wd / 2, 0.0), (x + ln, y + wd / 2, ht), CAR, (180, 40, 40))
                cx, cy, rad = x + ln / 2, y, 0.5 * np.hypot(ln, wd)
            elif kind == BICYCLIST:
                prim = Box((x, y - 0.25, 0.0), (x + 1.7, y + 0.25, 1.75), BICYCLIST, (40, 60, 150))
                cx, cy, rad = x + 0.85, y, 0.9
            elif kind == FENCE:
                ln = rng.uniform(2.0, 5.0)
                prim = Box((x, y, 0.0), (x + ln, y + 0.08, 1.1), FENCE, (120, 100, 70))
                cx, cy, rad = x + ln / 2, y, ln / 2
            elif kind == PEDESTRIAN:
                prim = Cylinder(x, y, 0.25, 0.0, float(rng.uniform(1.5, 1.9)), PEDESTRIAN, (200, 180, 60))
                cx, cy, rad = x, y, 0.25
            else:
                prim = Cylinder(x, y, 0.08, 0.0, float(rng.uniform(3.0, 5.0)), POLE, (110, 110, 115))
                cx, cy, rad = x, y, 0.08
            if np.hypot(cx - cam[0], cy - cam[1]) < rad + 0.5:
                continue
            if not _framed(intrinsics, pose, prim):
                continue
            if isinstance(prim, Box) and (
                min(abs(cam[0] - prim.lo[0]), abs(cam[0] - prim.hi[0])) < _EDGE_ON_MARGIN
                or min(abs(cam[1] - prim.lo[1]), abs(cam[1] - prim.hi[1])) < _EDGE_ON_MARGIN
            ):
                # A face in line with the camera is seen edge-on: no image evidence of it at all.
                continue
            if all(np.hypot(cx - px, cy - py) > rad + pr + 0.3 for px, py, pr in placed):
                placed.append((cx, cy, rad))
                prims.append(prim)
                break
    if occluders and len(pts):
        for x, y in pts[rng.permutation(len(pts))[:50]]:
            if all(np.hypot(x - px, y - py) > pr + 2.5 for px, py, pr in placed):
                h = float(rng.uniform(1.8, 2.6))
                prims.append(Cylinder(float(x), float(y), 0.15, 0.0, h, TREE, (85, 60, 40)))
                prims.append(Sphere(float(x), float(y), h + 0.9, 1.1, TREE, (60, 120, 50)))
                placed.append((float(x), float(y), 1.1))
                break
        for x, y in pts[rng.permutation(len(pts))[:50]]:
            if all(np.hypot(x - px, y - py) > pr + 1.0 for px, py, pr in placed):
                prims.append(Cylinder(float(x), float(y), 0.03, 0.0, 2.2, SIGN, (150, 150, 150)))
                prims.append(Box((x - 0.05, y - 0.35, 1.6), (x + 0.05, y + 0.35, 2.3), SIGN, (220, 30, 30)))
                placed.append((float(x), float(y), 0.35))
                break
    world.primitives = prims
    return world


# Edges seen at less than 15 degrees incidence are "grazing": resolvable only with far
# more pixels than the tests use (see OccupancyTruth.grazing_cells).
FRONT_FACING = float(np.sin(np.radians(15.0)))


def grid_metrics(pred: np.ndarray, truth: OccupancyTruth, min_facing: float = FRONT_FACING) -> dict:
    """Compare a predicted (rows, cols) grid with the truth.

    Returns a dict:
        free_iou: IoU of free cells.
        false_free: fraction of predicted-free cells that are not free in truth, leaving
            out cells whose only obstacle edge is seen at grazing incidence.
        false_free_strict: the same without leaving those out.
        edge_recall: fraction of front-edge cells (cells holding >= 3 visible front-facing
            edge points, i.e. >= 3 edge steps of visible edge) marked occupied.
        edge_recall_1cell: the same, counting a cell found when it or an 8-neighbour is occupied.
        per_obstacle: {primitive index: (front-edge cells, recall within one cell)}.
    """
    pf = pred == FREE
    tf = truth.state == FREE
    graze = truth.grazing_cells(min_facing)
    occ = pred == OCCUPIED
    near = occ.copy()
    near[1:] |= occ[:-1]
    near[:-1] |= occ[1:]
    near[:, 1:] |= near[:, :-1].copy()
    near[:, :-1] |= near[:, 1:].copy()
    cells = truth.edge_cells(None, min_facing, 3)
    per = {}
    for i in np.unique(truth.edge_primitive):
        c = truth.edge_cells(int(i), min_facing, 3)
        if c.size:
            per[int(i)] = (int(c.size), float(near.ravel()[c].mean()))
    return {
        "free_iou": float((pf & tf).sum() / max((pf | tf).sum(), 1)),
        "false_free": float((pf & ~tf & ~graze).sum() / max(pf.sum(), 1)),
        "false_free_strict": float((pf & ~tf).sum() / max(pf.sum(), 1)),
        "edge_recall": float(occ.ravel()[cells].mean()) if cells.size else 1.0,
        "edge_recall_1cell": float(near.ravel()[cells].mean()) if cells.size else 1.0,
        "per_obstacle": per,
    }


def scan_checks(
    ranges: np.ndarray,
    angle_min: float,
    angle_increment: float,
    reach: np.ndarray,
    truth: OccupancyTruth,
    world: StreetWorld,
    obstacle_classes: Iterable[int],
    min_facing: float = FRONT_FACING,
) -> dict:
    """Check obstacle-scan ranges against the truth; each entry is a bool array over beams (True = violation).

    Args:
        ranges: (n,) scan ranges (finite / +inf / NaN), beams from the grid origin.
        angle_min, angle_increment: beam layout (radians).
        reach: (n,) metres each beam can see to (``ObstacleScanner.reach``).

    Returns dict of violations:
        off_obstacle: a finite beam's point (range, bearing) is farther than one cell
            (+ half the beam's width at that range) from every obstacle footprint.
        too_far: the middle half of a beam's sector holds visible front-edge points, but
            neither the beam nor a neighbour (a contact's bearing is uncertain by about a
            pixel column) reports a range at most one cell beyond the nearest of them.
        inf_through_obstacle: a +inf beam crosses an obstacle footprint (eroded by a
            quarter cell) within its reach.
        and ``truth_near``: (n,) nearest visible front-edge distance in the middle half of each sector (inf if none).
    """
    res = truth.grid.resolution
    n = len(ranges)
    ang = angle_min + np.arange(n) * angle_increment
    fin = np.isfinite(ranges)
    pts, _ = footprint_points(world, obstacle_classes, res / 10)
    off = np.zeros(n, dtype=bool)
    if fin.any():
        q = np.stack([ranges[fin] * np.cos(ang[fin]), ranges[fin] * np.sin(ang[fin])], axis=1)
        if len(pts):
            d = np.sqrt(((q[:, None, :] - pts[None, :, :]) ** 2).sum(-1)).min(axis=1)
        else:
            d = np.full(len(q), np.inf)
        off[fin] = d > res + ranges[fin] * angle_increment / 2
    front = truth.edge_facing >= min_facing
    near = nearest_edge_in_sectors(truth.edge_points[front], angle_min, angle_increment, n, angle_increment / 4)
    r = np.where(fin, ranges, np.inf)
    best = r.copy()
    best[1:] = np.minimum(best[1:], r[:-1])
    best[:-1] = np.minimum(best[:-1], r[1:])
    too_far = np.isfinite(near) & ~(best <= near + res)
    ray = footprint_ray_distance(world, obstacle_classes, ang, erode=res / 4)
    inf_bad = np.isposinf(ranges) & (ray < reach)
    return {"off_obstacle": off, "too_far": too_far, "inf_through_obstacle": inf_bad, "truth_near": near}
