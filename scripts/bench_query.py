#!/usr/bin/env python3
"""Per-call latency of QueryEngine.answer at 360x480 (the ~/segment_query service minus ROS messaging).

Prints median and 90th percentile milliseconds for:
- baseline: the least work any answer needs (class mask + connected components), measured here;
- lexicon: exact names, synonyms, plurals, colours and spatial selectors (no embedding model);
- embeddings, cold: phrases only the sentence-embedding model can ground, each seen for the first time;
- embeddings, cached: the same phrases again (the engine caches query embeddings);
and each median as a ratio to the baseline. Targets: lexicon <= 20 ms, embeddings <= 40 ms (median).

Usage: python scripts/bench_query.py [--repeats N] [--no-embeddings] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.query import QueryEngine
from seg_perception.synthetic.street import render_street
from seg_perception.tools.query_thresholds import CAMVID_POSITIVES, OOV_NEGATIVES

LEXICON_QUERIES = [
    "car",
    "the red car on the left",
    "all pedestrians",
    "automobile",
    "the nearest person",
    "road",
    "people on the right",
    "the largest building",
    "pedestrain",
    "cup",
    "the blue car",
    "trees",
]


def _stats(ms: list[float]) -> tuple[float, float]:
    return statistics.median(ms), float(np.percentile(ms, 90))


def _time(fn, items, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        for it in items:
            t0 = time.perf_counter()
            fn(it)
            out.append((time.perf_counter() - t0) * 1000.0)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="passes over each query list (default 5)")
    p.add_argument("--no-embeddings", action="store_true", help="skip the sentence-embedding measurements")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads for the embedding model (default 1; 0 = leave)"
    )
    p.add_argument("--seed", type=int, default=4)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    scene = render_street(args.seed, 360, 480)
    rgb, labels = scene.rgb, scene.labels
    print(f"frame 480x360, classes present: {sorted({CAMVID_CLASSES[i] for i in np.unique(labels) if i < 11})}")

    def baseline(cls: int) -> None:
        cv2.connectedComponentsWithStats((labels == cls).astype(np.uint8), connectivity=8)

    rows = []
    base = _time(baseline, [3, 8, 9, 1], args.repeats * 3)
    rows.append(("baseline (mask + components)", base))

    lex = QueryEngine(CAMVID_CLASSES, use_embeddings=False)
    for q in LEXICON_QUERIES:
        lex.answer(q, rgb, labels)  # warm-up
    rows.append(("lexicon", _time(lambda q: lex.answer(q, rgb, labels), LEXICON_QUERIES, args.repeats)))

    if not args.no_embeddings:
        t0 = time.perf_counter()
        emb = QueryEngine(CAMVID_CLASSES, use_embeddings="auto", torch_threads=args.threads)
        print(f"embedding engine start-up {time.perf_counter() - t0:.1f} s: {emb.embedding_status}")
        if emb.embeddings_active:
            import torch

            print(f"torch threads: {torch.get_num_threads()}")
            phrases = [p for p, _ in CAMVID_POSITIVES] + list(OOV_NEGATIVES)
            emb.answer("warm up the model", rgb, labels)
            cold = _time(lambda q: emb.answer(q, rgb, labels), phrases, 1)
            rows.append(("embeddings, cold", cold))
            rows.append(("embeddings, cached", _time(lambda q: emb.answer(q, rgb, labels), phrases, 1)))
            rows.append(
                ("lexicon queries, embeddings on", _time(lambda q: emb.answer(q, rgb, labels), LEXICON_QUERIES, 2))
            )

    b_med, _ = _stats(base)
    print(f"{'':34s} {'median ms':>10s} {'p90 ms':>8s} {'calls':>6s} {'x baseline':>10s}")
    for name, ms in rows:
        med, p90 = _stats(ms)
        print(f"{name:34s} {med:10.2f} {p90:8.2f} {len(ms):6d} {med / b_med:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
