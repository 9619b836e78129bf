#!/usr/bin/env python3
"""Per-frame cost of depth fusion at 640x480: depth decode, depth-aware grid, labelled points, a query position.

Frame: the synthetic street rendered at 480 x 640 with exact labels and REP-118 depth
(16UC1 millimetres, as a RealSense publishes). Baseline in the same run: the flat-ground
grid (``OccupancyMapper.process`` on the same labels), which the depth grid replaces.

    python scripts/bench_depth.py [--frames 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from seg_perception.depth.cloud import NormalizedRays, labeled_points
from seg_perception.depth.grid import frame_depth_occupancy
from seg_perception.depth.image import depth_to_metres
from seg_perception.depth.position import object_position
from seg_perception.geometry.camera import CameraIntrinsics
from seg_perception.geometry.classes import class_lut
from seg_perception.geometry.grid_spec import GridSpec
from seg_perception.geometry.mapper import OccupancyMapper
from seg_perception.synthetic.rgbd import depth_mm, optical_depth
from seg_perception.synthetic.street import CAR, default_pose, random_street, render

DRIVABLE = {3, 4}
OBSTACLES = {1, 2, 5, 7, 8, 9, 10}


def median_ms(fn, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), float(np.percentile(times, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args()
    intr = CameraIntrinsics.from_fov(640, 480, 70.0)
    pose = default_pose()
    scene = render(random_street(5), intr, pose)
    mm = depth_mm(optical_depth(scene))
    labels = scene.labels.copy()
    grid = GridSpec(resolution=0.1, x_min=0.0, x_max=20.0, y_min=-10.0, y_max=10.0, max_range=15.0)
    drivable, obstacle = class_lut(DRIVABLE, "d"), class_lut(OBSTACLES, "o")
    rays = NormalizedRays()
    depth = depth_to_metres(mm, "16UC1").metres
    frame_depth_occupancy(depth, labels, intr, pose, grid, drivable, obstacle, rays=rays)  # warm the ray cache
    car = scene.primitive_index == next(i for i, p in enumerate(scene.world.primitives) if p.label == CAR)
    mapper = OccupancyMapper(grid, pose, DRIVABLE, OBSTACLES)
    mapper.set_intrinsics(intr.scaled(640, 480))
    mapper.process(labels)  # build the flat lookup once (cached in the node too)

    rows = [
        ("decode 16UC1 -> metres", lambda: depth_to_metres(mm, "16UC1")),
        ("depth grid (stride 4)", lambda: frame_depth_occupancy(depth, labels, intr, pose, grid, drivable, obstacle,
                                                                 rays=rays)),
        ("labelled points (stride 4)", lambda: labeled_points(depth, labels, intr, 4, rays=rays)),
        ("query position (one car)", lambda: object_position(car, depth, intr, rays=rays)),
        ("baseline: flat-ground grid", lambda: mapper.process(labels)),
    ]
    print(f"640x480, {args.frames} frames; median / p95 ms")
    res = {}
    for name, fn in rows:
        med, p95 = median_ms(fn, args.frames)
        res[name] = med
        print(f"  {name:<30} {med:7.2f} / {p95:7.2f}")
    fusion = res["decode 16UC1 -> metres"] + res["depth grid (stride 4)"] + res["labelled points (stride 4)"]
    print(f"depth fusion per frame (decode + grid + points): {fusion:.2f} ms (target <= 5 ms); "
          f"{fusion / res['baseline: flat-ground grid']:.2f}x the flat-ground grid")


if __name__ == "__main__":
    main()
