#!/usr/bin/env python3
"""Latency of the default model at 360x480 on this machine: ONNX Runtime vs PyTorch eager, same run.

Prints params, GFLOPs, median/p95 latency of the bare network for both runtimes (2 threads
each), their ratio, and the full Segmenter path (pre-process + ORT + post-process). ONNX
Runtime is timed as the node runs it (the backend pins the dynamic H/W to the metadata's
360x480) and, for comparison, as a plain session with the shape left dynamic. All are timed
in alternating blocks so a noisy shared machine slows all of them alike.

Precision rows: the INT8 Q/DQ model through the backend (``precision=int8``: a verified sibling
NAME_int8.onnx, else one quantized from ``--calib`` into the precision cache) and the fp16
ONNX as a plain session with the same pinned shape (the backend refuses fp16 on CPU), each
with its ratio to fp32 from the same run. ``--precisions ''`` skips them.

``--baseline`` (default: ``models/camvid_fast.onnx`` when benchmarking another model) is timed in
the same interleaved run, and the ratio model / baseline is printed. Each model's training
config (for parameters and GFLOPs) is read from its model card unless ``--config`` is given.

    python scripts/bench_model.py [--model models/camvid.onnx] [--config config/train_camvid.yaml] [--runs 100]
        [--calib ../shared/datasets/camvid/train] [--precisions int8,fp16]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def timeit_interleaved(
    fns: dict[str, Callable[[], object]], runs: int, block: int = 25, warmup: int = 5
) -> dict[str, tuple[float, float]]:
    """Median and p95 latency (ms) of each callable, measured in alternating blocks.

    Candidates take turns in blocks of ``block`` calls, so drifts of a shared machine (noisy
    neighbours, clock changes) hit all of them alike and the ratios stay meaningful. Each
    block starts with ``warmup`` untimed calls: another runtime's thread pool may still be
    spinning when a block starts (strict one-call round-robin measured 2x slower for both).
    """
    samples: dict[str, list[float]] = {k: [] for k in fns}
    while min(len(v) for v in samples.values()) < runs:
        for k, fn in fns.items():
            for _ in range(warmup):
                fn()
            for _ in range(min(block, runs - len(samples[k]))):
                t = time.perf_counter()
                fn()
                samples[k].append((time.perf_counter() - t) * 1e3)
    return {k: (statistics.median(v), float(np.percentile(v, 95))) for k, v in samples.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "camvid.onnx"))
    ap.add_argument("--config", default=None, help="training config (default: the model card's training.config)")
    ap.add_argument("--baseline", default=str(ROOT / "models" / "camvid_fast.onnx"),
                    help="a second model timed in the same run ('' for none)")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--calib", default=str(ROOT.parent / "shared" / "datasets" / "camvid" / "train"),
                    help="calibration frames for the INT8 model when none is cached (train split, never test)")
    ap.add_argument("--precisions", default="int8,fp16", help="comma list of extra precisions to time")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the whole benchmark N times, each in a fresh process, and print every ratio's "
                         "per-run values and median (a model's speed can differ from one process to the next)")
    args = ap.parse_args()
    if args.repeat > 1:
        return _repeat(args.repeat)
    extra = [p for p in args.precisions.split(",") if p]

    import onnxruntime as ort
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from seg_perception.backends import create_backend
    from seg_perception.model_spec import ModelSpec
    from seg_perception.nets.build import build_model, count_parameters
    from seg_perception.pipeline import Segmenter
    from seg_perception.training.config import load_config

    torch.set_num_threads(args.threads)
    x = torch.randn(1, 3, args.height, args.width)

    def net_of(onnx: Path, config: str | None) -> tuple[torch.nn.Module, int, float]:
        net = build_model(load_config(config or str(ROOT / _card_config(onnx)))["model"]).eval()
        net.aux_head = None
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            net(x)
        return net, count_parameters(net), counter.get_total_flops() / 1e9

    onnx_path = Path(args.model)
    model, params, gflops = net_of(onnx_path, args.config)
    if not onnx_path.exists():
        raise SystemExit(f"{onnx_path} not found: export the model first (see README)")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    xn = x.numpy()
    rgb = np.random.default_rng(0).integers(0, 255, (args.height, args.width, 3), np.uint8)
    with create_backend("onnxruntime", onnx_path, num_threads=args.threads) as backend, torch.inference_mode():
        seg = Segmenter(backend, ModelSpec.for_model(onnx_path))
        fns = {
            "ort": lambda: backend.infer(xn),
            "ort_dynamic": lambda: sess.run(None, {name: xn}),
            "torch": lambda: model(x),
            "labels": lambda: seg.segment(rgb, want_confidence=False),
            "confidence": lambda: seg.segment(rgb, want_confidence=True),
        }
        closers = _precision_candidates(fns, extra, onnx_path, args, xn, rgb)
        base_path = Path(args.baseline) if args.baseline else None
        if base_path is not None and (not base_path.exists() or base_path.resolve() == onnx_path.resolve()):
            base_path = None
        if base_path is not None:
            _, base_params, base_gflops = net_of(base_path, None)
            be_base = create_backend("onnxruntime", base_path, num_threads=args.threads)
            closers.append(be_base.close)
            seg_base = Segmenter(be_base, ModelSpec.for_model(base_path))
            fns["ort_base"] = lambda: be_base.infer(xn)
            fns["labels_base"] = lambda: seg_base.segment(rgb, want_confidence=False)
        try:
            res = timeit_interleaved(fns, args.runs)
        finally:
            for close in closers:
                close()
    (ort_med, ort_p95), (pt_med, pt_p95) = res["ort"], res["torch"]
    dyn_med, dyn_p95 = res["ort_dynamic"]
    (full_med, full_p95), (conf_med, conf_p95) = res["labels"], res["confidence"]

    print(f"model {onnx_path.name}: {params / 1e6:.3f} M params, {gflops:.2f} GFLOPs at {args.height}x{args.width}")
    print(f"{'runtime (' + str(args.threads) + ' threads)':<40} {'median ms':>10} {'p95 ms':>10}")
    print(f"{'ONNX Runtime CPU (network)':<40} {ort_med:>10.2f} {ort_p95:>10.2f}")
    print(f"{'ONNX Runtime, shape left dynamic':<40} {dyn_med:>10.2f} {dyn_p95:>10.2f}")
    print(f"{'PyTorch eager CPU (network)':<40} {pt_med:>10.2f} {pt_p95:>10.2f}")
    print(f"{'Segmenter: labels (pre+ORT+post)':<40} {full_med:>10.2f} {full_p95:>10.2f}")
    print(f"{'Segmenter: labels + confidence':<40} {conf_med:>10.2f} {conf_p95:>10.2f}")
    print(f"ratio PyTorch eager / ONNX Runtime: {pt_med / ort_med:.2f}x")
    print(f"ratio dynamic-shape / pinned-shape ONNX Runtime session: {dyn_med / ort_med:.2f}x")
    for label, key, base in (
        ("ONNX Runtime CPU int8 Q/DQ (network)", "ort_int8", "ort"),
        ("Segmenter int8: labels", "labels_int8", "labels"),
        ("ONNX Runtime CPU fp16 ONNX (plain, pinned)", "ort_fp16", "ort"),
    ):
        if key in res:
            med, p95 = res[key]
            print(f"{label:<40} {med:>10.2f} {p95:>10.2f}   {med / res[base][0]:.2f}x fp32")
    if "ort_base" in res:
        (b_med, b_p95), (bl_med, bl_p95) = res["ort_base"], res["labels_base"]
        print(f"baseline {base_path.name}: {base_params / 1e6:.3f} M params, {base_gflops:.2f} GFLOPs")
        print(f"{'baseline ONNX Runtime CPU (network)':<40} {b_med:>10.2f} {b_p95:>10.2f}")
        print(f"{'baseline Segmenter: labels':<40} {bl_med:>10.2f} {bl_p95:>10.2f}")
        print(f"ratio {onnx_path.name} / baseline, network: {ort_med / b_med:.2f}x; Segmenter labels: "
              f"{full_med / bl_med:.2f}x")
    return 0


def _ratios(stdout: str) -> dict[str, float]:
    """The ratios one run printed.

    Two forms: "<label>  <ms>  <ms>  <r>x fp32" rows, and "ratio <what>: <r>x[; <what>: <r>x]" lines.
    """
    found: dict[str, float] = {}
    for line in stdout.splitlines():
        row = re.match(r"^(?P<label>\S.*?)\s{2,}[\d.]+\s+[\d.]+\s+(?P<r>[\d.]+)x fp32$", line)
        if row:
            found[f"{row['label']} / fp32"] = float(row["r"])
        elif line.startswith("ratio "):
            head = ""
            for part in line[len("ratio ") :].split(";"):
                what, _, value = part.strip().rpartition(":")
                head = head or what.split(",")[0]
                key = what if what.startswith(head) else f"{head}, {what}"
                found[key] = float(value.strip().rstrip("x"))
    return found


def _repeat(times: int) -> int:
    """Run this script ``times`` times (same arguments, --repeat 1), then each ratio per run and its median."""
    argv = [*sys.argv[1:], "--repeat", "1"]  # argparse keeps the last --repeat
    ratios: dict[str, list[float]] = {}
    for i in range(times):
        print(f"--- run {i + 1}/{times}", flush=True)
        out = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=False)
        print(out.stdout, end="", flush=True)
        if out.returncode:
            print(out.stderr, file=sys.stderr)
            return out.returncode
        for key, value in _ratios(out.stdout).items():
            ratios.setdefault(key, []).append(value)
    print(f"--- {times} runs, each in a fresh process: ratio per run, median")
    for key, values in ratios.items():
        print(f"{key:<58} {' '.join(f'{v:.2f}' for v in values)}   median {statistics.median(values):.2f}x")
    return 0


def _card_config(onnx: Path) -> str:
    """training.config of the YAML model card beside ``onnx`` (repository-relative)."""
    import yaml

    card = yaml.safe_load(onnx.with_suffix(".yaml").read_text())
    return str((card.get("training") or {}).get("config") or "config/train_camvid.yaml")


def _precision_candidates(fns: dict, extra: list[str], onnx_path: Path, args: argparse.Namespace,
                          xn: np.ndarray, rgb: np.ndarray) -> list[Callable[[], object]]:
    """Add the int8 / fp16 callables to ``fns``; returns their close functions."""
    import onnxruntime as ort

    from seg_perception.backends import create_backend
    from seg_perception.model_spec import ModelSpec
    from seg_perception.pipeline import Segmenter

    closers: list[Callable[[], object]] = []
    if "int8" in extra:
        be8 = create_backend("onnxruntime", onnx_path, num_threads=args.threads, precision="int8",
                             calibration_dir=args.calib)
        closers.append(be8.close)
        seg8 = Segmenter(be8, ModelSpec.for_model(onnx_path))
        print(f"int8 model: {be8.model_path}")
        fns["ort_int8"] = lambda: be8.infer(xn)
        fns["labels_int8"] = lambda: seg8.segment(rgb, want_confidence=False)
    if "fp16" in extra:
        from seg_perception.backends.precision_fp16 import fp16_model_for

        path16 = fp16_model_for(onnx_path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
        dims = ort.InferenceSession(str(path16), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
        for dim, value in zip(dims, (1, 3, args.height, args.width), strict=False):
            if isinstance(dim, str):  # pin the dynamic dims as the backend does
                opts.add_free_dimension_override_by_name(dim, value)
        s16 = ort.InferenceSession(str(path16), opts, providers=["CPUExecutionProvider"])
        print(f"fp16 model: {path16}")
        fns["ort_fp16"] = lambda: s16.run(None, {s16.get_inputs()[0].name: xn})
    return closers


if __name__ == "__main__":
    raise SystemExit(main())
