"""Serial eval-bag vs eval-bags on local Ray: 8 bags x 60 frames, one run, frames per second and speed-up.

Serial: ``evaluate_bag`` on each bag in turn with eval-bag's own segmenter (backend
defaults). Fleet: ``run_fleet`` on a local Ray with ``--cpus`` CPUs (one task per bag, one
inference thread per task). Ray's start-up is timed separately and reported both ways.
Usage: ``python scripts/bench_fleet.py [--bags 8] [--frames 60] [--cpus 2] [--model M]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bags", type=int, default=8)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()

    import ray

    from seg_perception.evaluation.bag_writer import make_bag
    from seg_perception.evaluation.eval_bag import evaluate_bag
    from seg_perception.evaluation.fleet import FleetOptions, run_fleet
    from seg_perception.evaluation.session import make_grid_fn, open_segmenter
    from seg_perception.synthetic.street import render_street

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bags = []
        for b in range(args.bags):
            frames = [(s.rgb, s.labels) for s in (render_street(b * 1000 + i, 90, 120) for i in range(args.frames))]
            bags.append(str(make_bag(iter(frames), root / f"bag{b}", storage=("mcap", "sqlite3")[b % 2]).path))
        n = args.bags * args.frames

        t0 = time.perf_counter()
        serial_counts = None
        with open_segmenter(args.model) as (seg, info):
            grid_fn = make_grid_fn(seg.spec, None)
            for bag in bags:
                r = evaluate_bag(bag, seg, grid_fn=grid_fn, strip_frames=0, progress=False)
                serial_counts = r.confusion.counts if serial_counts is None else serial_counts + r.confusion.counts
        serial_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fleet = run_fleet(bags, FleetOptions(model=args.model), root / "results")
        fleet_s = time.perf_counter() - t0
        ray.shutdown()
        exact = np.array_equal(np.asarray(fleet.summary["confusion_matrix"]), serial_counts)

    print(f"{args.bags} bags x {args.frames} frames = {n} frames, backend {info['backend']}, Ray on {args.cpus} CPUs")
    print(f"serial eval-bag      : {serial_s:6.1f} s  {n / serial_s:6.1f} frames/s")
    print(f"eval-bags (Ray)      : {fleet_s:6.1f} s  {n / fleet_s:6.1f} frames/s  speed-up {serial_s / fleet_s:.2f}x")
    print(
        f"eval-bags + Ray start: {fleet_s + init_s:6.1f} s  {n / (fleet_s + init_s):6.1f} frames/s  "
        f"speed-up {serial_s / (fleet_s + init_s):.2f}x (ray.init {init_s:.1f} s)"
    )
    print(f"merged confusion matrix equals the serial sum: {exact}; failed bags: {fleet.summary['failed_bags']}")


if __name__ == "__main__":
    main()
