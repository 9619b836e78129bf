"""Exact tests on StreetWorld solids: where a segment runs inside a primitive, grounded footprints,
and which ground points a camera centre sees unoccluded. Independent of pixels and of the projector."""

from __future__ import annotations

import numpy as np

from seg_perception.synthetic.street import Box, Cylinder, Primitive, Sphere, StreetWorld

_GROUND_EPS = 1e-6


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


def footprint_circle(prim: Primitive) -> tuple[np.ndarray, float]:
    """Centre (2,) and radius (metres) of a circle holding the primitive's vertical projection."""
    if isinstance(prim, Box):
        lo, hi = np.asarray(prim.lo[:2], float), np.asarray(prim.hi[:2], float)
        return 0.5 * (lo + hi), float(0.5 * np.hypot(*(hi - lo)))
    return np.array([prim.x, prim.y], float), float(prim.r)


def visible(world: StreetWorld, camera: np.ndarray, points: np.ndarray) -> np.ndarray:
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
        centre, radius = footprint_circle(prim)
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


__all__ = ["footprint_boundary", "segment_blocked", "segment_interval", "visible"]
