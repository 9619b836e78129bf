#!/usr/bin/env python3
"""Benchmark the occupancy-grid projection: lookup build, per-frame pass, obstacle scan.

Baseline measured in the same run: a naive per-pixel Python implementation (one ray and
one ground intersection per pixel, per frame) of the same free / contact marking.

Default frame: a rendered synthetic street at 360 x 480 with exact labels, the synthetic
default camera, and a 20 m x 20 m grid at 0.10 m (x 0..20, y -10..10, max range 20 m).
``--camvid DIR`` uses a CamVid annotation (480 x 360) and the intrinsics and pose of
``config/camvid.yaml`` instead.

    PYTHONPATH=. .venv/bin/python scripts/bench_grid.py [--frames 300] [--camvid ../shared/datasets/camvid]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from seg_perception.geometry.camera import (
    CameraIntrinsics,
    CameraPose,
    intrinsics_from_parameters,
    pose_from_parameters,
)
from seg_perception.geometry.grid_spec import FREE, OCCUPIED, GridSpec
from seg_perception.geometry.projection import GroundProjector
from seg_perception.geometry.scan import ObstacleScanner

ROOT = Path(__file__).resolve().parents[1]
DRIVABLE = {3, 4}  # road, pavement
OBSTACLES = {1, 2, 5, 7, 8, 9, 10}  # building, pole, tree, fence, car, pedestrian, bicyclist


def naive_project(labels: np.ndarray, intr: CameraIntrinsics, pose: CameraPose, grid: GridSpec) -> np.ndarray:
    """Per-pixel Python loop: drivable pixels mark their ground cell free; the lowest pixel of each obstacle
    run in a column marks the cell where the ray through its lower edge meets the ground occupied."""
    h, w = labels.shape
    rot, o = pose.rotation_optical, pose.position
    fx, fy, cx, cy = intr.k[0, 0], intr.k[1, 1], intr.k[0, 2], intr.k[1, 2]
    out = np.full(grid.n_cells, -1, np.int8)
    occ = []

    def hit(u: float, v: float) -> int:
        d = rot @ np.array([(u - cx) / fx, (v - cy) / fy, 1.0])
        if d[2] >= 0:
            return -1
        t = -o[2] / d[2]
        x, y = o[0] + t * d[0], o[1] + t * d[1]
        if math.hypot(x - o[0], y - o[1]) > grid.max_range:
            return -1
        return int(grid.cell_index(x, y))

    for v in range(h):
        for u in range(w):
            lab = int(labels[v, u])
            if lab in DRIVABLE:
                c = hit(u, v)
                if c >= 0:
                    out[c] = FREE
            elif lab in OBSTACLES and (v == h - 1 or int(labels[v + 1, u]) not in OBSTACLES):
                c = hit(u, v + 0.5)
                if c >= 0:
                    occ.append(c)
    out[occ] = OCCUPIED
    return out.reshape(grid.shape)


def timed(fn, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300, help="per-frame passes to time")
    ap.add_argument("--builds", type=int, default=5, help="lookup builds to time")
    ap.add_argument("--naive-runs", type=int, default=1, help="runs of the per-pixel Python baseline")
    ap.add_argument("--camvid", type=Path, default=None, help="CamVid folder: real annotation + config/camvid.yaml")
    args = ap.parse_args(argv)

    grid = GridSpec("base_link", 0.10, 0.0, 20.0, -10.0, 10.0, 20.0)
    if args.camvid is not None:
        import cv2
        import yaml

        params = yaml.safe_load((ROOT / "config" / "camvid.yaml").read_text())["/**"]["ros__parameters"]
        intr, pose = intrinsics_from_parameters(params), pose_from_parameters(params)
        # 0016E5 is the sequence config/camvid.yaml was estimated on.
        path = sorted((args.camvid / "trainannot").glob("0016E5_*.png"))[60]
        labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        source = f"CamVid annotation {path.name}"
    else:
        from seg_perception.synthetic.street import render_street

        scene = render_street(4, 360, 480)
        labels, intr, pose = scene.labels, scene.intrinsics, scene.pose
        source = "synthetic street (seed 4)"
    h, w = labels.shape
    print(f"frame: {source}, labels {w}x{h}; grid {grid.width}x{grid.height} cells at {grid.resolution} m")

    projector = GroundProjector(intr, pose, grid, DRIVABLE, OBSTACLES)
    build = timed(lambda: GroundProjector(intr, pose, grid, DRIVABLE, OBSTACLES), args.builds)
    scanner = ObstacleScanner.for_projector(projector)
    scan_build = timed(lambda: ObstacleScanner.for_projector(projector), args.builds)
    projector.project(labels)  # warm up
    frame = timed(lambda: projector.project(labels), args.frames)
    result = projector.project(labels)
    scan = timed(lambda: scanner.scan(result), args.frames)
    naive = timed(lambda: naive_project(labels, intr, pose, grid), args.naive_runs)
    ref = naive_project(labels, intr, pose, grid)

    med = statistics.median
    print(f"lookup build        median {med(build):8.1f} ms  (n={len(build)})")
    print(f"scanner build       median {med(scan_build):8.1f} ms  (n={len(scan_build)})")
    print(
        f"per-frame grid      median {med(frame):8.3f} ms  p90 {np.percentile(frame, 90):.3f} ms  (n={len(frame)})"
    )
    print(f"per-frame scan      median {med(scan):8.3f} ms  p90 {np.percentile(scan, 90):.3f} ms")
    print(f"naive per-pixel     median {med(naive):8.1f} ms  (n={len(naive)})")
    print(f"speed-up vs naive   {med(naive) / med(frame):8.0f} x (grid pass)")
    free, ref_free = result.grid == FREE, ref == FREE
    print(
        f"cells: free {free.sum()} occupied {(result.grid == OCCUPIED).sum()} | naive free {ref_free.sum()} "
        f"occupied {(ref == OCCUPIED).sum()} | naive free cells also free here "
        f"{(free & ref_free).sum() / max(ref_free.sum(), 1):.3f}"
    )
    ok = med(frame) <= 2.0 and med(build) <= 200.0
    print("targets (<= 2 ms per frame, <= 200 ms build):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
