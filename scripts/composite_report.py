"""Figures of the pasted-cup composites (issue 16): how often all three cups are found, and mask IoU.

    python scripts/composite_report.py [--data ../shared/datasets/camvid] [--every 7]

The coffee cup (hand polygon) is pasted at ``query.tabletop.CUP_LAYOUT`` on every ``--every``-th
CamVid val frame; the real detector answers (test/query/test_detected_composites.py asserts on
the same scenes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.evaluation.datasets import SegmentationDataset
from seg_perception.query.engine import QueryEngine
from seg_perception.query.tabletop import paste_cups


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/datasets/camvid")
    ap.add_argument("--every", type=int, default=7)
    args = ap.parse_args()
    dataset = SegmentationDataset(Path(args.data), "val")
    engine = QueryEngine(CAMVID_CLASSES, use_embeddings=False)
    frames = range(0, len(dataset), args.every)
    three, ious = 0, []
    for i in frames:
        comp = paste_cups(dataset.load(i)[0])
        zeros = np.zeros(comp.rgb.shape[:2], np.uint8)
        three += engine.answer("all cups", comp.rgb, zeros).instances == 3
        mask = engine.answer("the biggest cup", comp.rgb, zeros).mask > 0
        ious.append(np.count_nonzero(mask & comp.masks[1]) / np.count_nonzero(mask | comp.masks[1]))
    print(f"all three cups found on {three} of {len(frames)} frames; biggest-cup mask IoU "
          f"min {min(ious):.2f}, max {max(ious):.2f}, mean {np.mean(ious):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
