#!/usr/bin/env python3
"""Labels rate of the real node with and without a client asking household (detector) queries.

Streams 640x480 frames (scikit-image's coffee, astronaut and chelsea photos, resized) at
15 Hz to the node for --seconds without queries, then again while a client asks
"cup", "the red mug", "the second bottle from the left", ... at --hz (default 5 Hz, the
issue's target) and back to back (--hz 0). Prints labelled fps without and with queries,
their ratio, and the service latency (median/p95, detector answer with mask included).
Needs the detector (`make setup` or `seg-perception fetch-models`). Not a test.

    python scripts/bench_query_rate.py [--seconds 20] [--model models/camvid.onnx] [--hz 5]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_query_service import ROOT, run_mode

HOUSEHOLD = [
    "cup",
    "the red cup",
    "the red mug",
    "the cup on the left",
    "the second bottle from the left",
    "the biggest box",
    "laptop",
    "person",
    "cat",
    "the blue cup",
]


def household_frames(size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """RGB photos with detector classes, resized to ``size`` (width, height)."""
    import cv2
    from skimage import data

    return [
        cv2.resize(np.ascontiguousarray(getattr(data, n)()[..., :3]), size, interpolation=cv2.INTER_AREA)
        for n in ("coffee", "astronaut", "chelsea")
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "camvid.onnx"))
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--hz", type=float, nargs="*", default=[5.0, 0.0], help="query rates; 0 = back to back")
    args = ap.parse_args()
    from seg_perception.detection.base import MODEL_FILE, model_dir

    if not (model_dir() / MODEL_FILE).is_file():
        print(f"detector not installed in {model_dir()}; run 'seg-perception fetch-models'", file=sys.stderr)
        return 2
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(151, 200)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    imgs = household_frames()
    rows = [
        run_mode(
            f"household at {hz:g} Hz" if hz else "household back to back",
            "disabled",
            HOUSEHOLD,
            imgs,
            args,
            period=1.0 / hz if hz else 0.0,
        )
        for hz in args.hz
    ]
    print(f"\nlabels rate at 640x480, frames published at 15 Hz ({args.seconds:g} s each, fresh node per row)")
    print(f"{'client':<28}{'queries':>8}{'median ms':>11}{'p95 ms':>9}{'fps w/o q':>11}{'fps with q':>12}{'ratio':>7}")
    for r in rows:
        print(
            f"{r['mode']:<28}{r['queries']:>8}{r['median_ms']:>11.1f}{r['p95_ms']:>9.1f}{r['rate_without']:>11.2f}"
            f"{r['rate_with']:>12.2f}{r['rate_with'] / max(r['rate_without'], 1e-9):>7.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
