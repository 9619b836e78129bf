"""Scores of a predicted occupancy grid and obstacle scan against the ground truth (``OccupancyTruth``)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from oracles.occupancy_truth import OccupancyTruth
from oracles.solids import footprint_boundary, segment_interval
from seg_perception.geometry.grid_spec import FREE, OCCUPIED
from seg_perception.synthetic.street import Box, Cylinder, Sphere, StreetWorld


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


__all__ = [
    "FRONT_FACING",
    "footprint_points",
    "footprint_ray_distance",
    "grid_metrics",
    "nearest_edge_in_sectors",
    "scan_checks",
]
