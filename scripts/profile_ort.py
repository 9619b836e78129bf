#!/usr/bin/env python3
"""Where an ONNX model's time goes on ONNX Runtime CPU: per op type and per node, several models side by side.

Each model runs as the backend runs it (2 intra-op threads, input shape pinned to --size,
``enable_mem_pattern`` off, spinning as --spin) with ONNX Runtime's profiler on; the kernel
times of ``--runs`` runs are averaged per run. Prints one table per op type (microseconds
per run, one column per model) and the ``--top`` slowest nodes of each model; nodes whose
name matches ``--match`` are listed one by one. The wall time per run is printed too (the
profiler adds a little to it). Used for docs/deploying.md's INT8 recipe figures, e.g.:

    python scripts/profile_ort.py models/camvid_fast.onnx models/camvid_fast_int8.onnx --match stem
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np


def profile(path: Path, size: tuple[int, int], runs: int, threads: int, spin: bool, workdir: Path) -> dict:
    """Wall ms per run, and kernel us per run by op type and by (node, op type)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
    opts.enable_mem_pattern = False
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    probe = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inp = probe.get_inputs()[0]
    for dim, value in zip(inp.shape, (1, 3, *size), strict=False):
        if isinstance(dim, str) and dim:
            opts.add_free_dimension_override_by_name(dim, int(value))
    opts.enable_profiling = True
    opts.profile_file_prefix = str(workdir / path.stem)
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, *size), dtype=np.float32)
    warm = 10
    for _ in range(warm):
        sess.run(None, {inp.name: x})
    t0 = time.perf_counter()
    for _ in range(runs):
        sess.run(None, {inp.name: x})
    wall = (time.perf_counter() - t0) / runs * 1e3
    events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: collections.Counter[str] = collections.Counter()
    by_node: collections.Counter[tuple[str, str]] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"]["op_name"]
            by_op[op] += e["dur"] / (runs + warm)
            by_node[(e["name"][: -len("_kernel_time")], op)] += e["dur"] / (runs + warm)
    return {"wall_ms": wall, "by_op": by_op, "by_node": by_node}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", type=Path, help="ONNX models (their columns in this order)")
    p.add_argument("--size", nargs=2, type=int, default=(360, 480), metavar=("H", "W"))
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--spin", action="store_true", help="let idle threads spin (ONNX Runtime's default)")
    p.add_argument("--top", type=int, default=10, help="slowest nodes listed per model")
    p.add_argument("--match", default="", help="regex: list every node whose name matches")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ort_profile_") as tmp:
        res = [profile(m, tuple(args.size), args.runs, args.threads, args.spin, Path(tmp)) for m in args.models]
    names = [m.name for m in args.models]
    width = max(12, *(len(n) for n in names))
    print(f"{'us per run':34s}" + "".join(f"{n:>{width + 2}s}" for n in names))
    print(f"{'wall (ms per run)':34s}" + "".join(f"{r['wall_ms']:>{width + 2}.2f}" for r in res))
    print(f"{'kernels (ms per run)':34s}" + "".join(f"{sum(r['by_op'].values()) / 1e3:>{width + 2}.2f}" for r in res))
    ops = sorted(set().union(*(r["by_op"] for r in res)), key=lambda o: -max(r["by_op"][o] for r in res))
    for op in ops:
        print(f"{op:34s}" + "".join(f"{r['by_op'][op]:>{width + 2}.0f}" for r in res))
    pattern = re.compile(args.match) if args.match else None
    for name, r in zip(names, res, strict=True):
        print(f"\n{name}: slowest nodes" + (f", and those matching {args.match!r}" if pattern else ""))
        ranked = sorted(r["by_node"].items(), key=lambda kv: -kv[1])
        shown = ranked[: args.top] + [kv for kv in ranked[args.top :] if pattern and pattern.search(kv[0][0])]
        for (node, op), us in shown:
            print(f"  {us:8.0f} us  {op:22s} {node}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
