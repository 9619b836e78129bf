#!/usr/bin/env python3
"""Benchmark: offline ``eval-bag`` against ``eval`` on the same frames, same model, same machine.

Baseline: ``evaluate_dataset`` over N frames read from PNG files. Measured: ``make_bag``
of those frames (rgb8, mcap and sqlite3) then ``evaluate_bag``. Prints frames/s of each,
the bag path's speed relative to the baseline (>1: faster), and checks that both give the same confusion
matrix (they must: same Segmenter, same lossless pixels).

    PYTHONPATH=. .venv/bin/python scripts/bench_eval.py --model models/camvid.onnx --frames 20
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from seg_perception.backends.select import select_backend
from seg_perception.evaluation.bag_writer import make_bag
from seg_perception.evaluation.datasets import SegmentationDataset
from seg_perception.evaluation.eval_bag import evaluate_bag
from seg_perception.evaluation.eval_dataset import evaluate_dataset
from seg_perception.model_spec import ModelSpec, default_model_path
from seg_perception.pipeline import Segmenter

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--split", default="test")
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()

    ds = SegmentationDataset(args.data, args.split, limit=args.frames, sort=True)
    spec = ModelSpec.for_model(args.model)
    with select_backend(args.backend, args.model).backend as be:
        seg = Segmenter(be, spec)
        seg.segment(ds.load(0)[0])  # warm-up outside the timings
        t0 = time.perf_counter()
        base = evaluate_dataset(ds, seg, progress=False)
        base_s = time.perf_counter() - t0
        print(f"backend {be.description}, {len(ds)} frames of {args.split}")
        print(f"eval (PNG files)       {len(ds) / base_s:7.1f} frames/s  (baseline)")
        with tempfile.TemporaryDirectory() as tmp:
            for storage in ("mcap", "sqlite3"):
                bag = Path(tmp) / storage
                t0 = time.perf_counter()
                make_bag((ds.load(i) for i in range(len(ds))), bag, storage=storage)
                make_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                res = evaluate_bag(bag, seg, progress=False, strip_frames=0)
                bag_s = time.perf_counter() - t0
                same = (res.confusion.counts == base.confusion.counts).all()  # type: ignore[union-attr]
                print(
                    f"eval-bag ({storage:7s})    {res.frames / bag_s:7.1f} frames/s  "
                    f"speed {base_s / bag_s:5.2f}x baseline; make-bag {len(ds) / make_s:6.1f} frames/s; "
                    f"same confusion matrix: {bool(same)}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
