#!/usr/bin/env python3
"""GPU benchmark of the inference backends against an ONNX Runtime CPU baseline (same run).

Rows: ONNX Runtime CPU fp32 (baseline), ONNX Runtime CUDA fp32, torch CPU fp32, torch
CUDA fp32 / fp16 / fp16 + CUDA graphs, TensorRT fp16 (and int8 with --calib). Rows that
cannot run here are listed with the reason (on TensorRT 11 the fp16 row builds the fp16 ONNX
and the int8 row the TensorRT Q/DQ flavour: the shipped ``NAME_int8_trt.onnx``, else one made
from --calib). On a machine without a GPU only the CPU rows run, so the script itself is
checked anywhere.

Model: --model ONNX (torch rows then need --torch-model), else models/camvid.onnx (+
models/camvid.pt for torch rows when present), else the project's training
architecture with random weights, exported to ONNX and traced to TorchScript in a
temporary folder so every backend runs the same network.

Columns (milliseconds, median over --runs after --warmup):
  infer   backend.infer: host tensor in, logits back on the host
  frame   one frame as the node does it: pre-process + (GPU arg-max when the backend
          offers infer_labels, else infer + numpy post-processing), labels only
  fps     1000 / frame;  vs CPU: ORT CPU frame time / this frame time

Usage:
  python scripts/bench_gpu.py [--size 360 480] [--runs 50] [--threads 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from seg_perception.backends import create_backend  # noqa: E402
from seg_perception.errors import SegPerceptionError  # noqa: E402
from seg_perception.model_spec import ModelSpec  # noqa: E402
from seg_perception.pipeline import Segmenter  # noqa: E402


def timed(fn: Callable[[], Any], runs: int, warmup: int) -> float:
    """Median milliseconds of fn() over ``runs`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def prepare_models(args: argparse.Namespace, workdir: Path) -> tuple[Path, Path | None, str]:
    """(onnx model, torch model or None, description)."""
    if args.model:
        onnx_path = Path(args.model)
        return onnx_path, (Path(args.torch_model) if args.torch_model else None), f"{onnx_path.name} (given)"
    trained = REPO / "models" / "camvid.onnx"
    if trained.exists() and trained.with_suffix(".yaml").exists():
        pt = next((p for p in (trained.with_suffix(".pt"), trained.with_suffix(".pt2")) if p.exists()), None)
        return trained, pt, "models/camvid.onnx (trained)"
    import torch
    import yaml

    from seg_perception.nets.build import build_model

    h, w = args.size
    net = build_model({}, num_classes=11).eval()
    x = torch.randn(1, 3, h, w)
    onnx_path = workdir / "bench.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                net,
                (x,),
                str(onnx_path),
                input_names=["input"],
                output_names=["logits"],
                opset_version=17,
                dynamo=False,
            )
        except (TypeError, RuntimeError):  # torch builds without the TorchScript exporter
            torch.onnx.export(net, (x,), str(onnx_path), input_names=["input"], output_names=["logits"])
        ts_path = workdir / "bench.pt"
        with torch.no_grad():
            torch.jit.save(torch.jit.trace(net, x), str(ts_path))
    spec = ModelSpec(class_names=tuple(f"c{i}" for i in range(11)), colors=None, input_size=(h, w), size_divisor=8)
    for p in (onnx_path, ts_path):
        p.with_suffix(".yaml").write_text(yaml.safe_dump(spec.to_dict()))
    return onnx_path, ts_path, "training architecture, random weights (no trained model yet)"


def test_image(h: int, w: int) -> np.ndarray:
    for root in (REPO.parent / "shared/datasets/camvid/val", Path("/work/shared/datasets/camvid/val")):
        if root.is_dir():
            from seg_perception.backends.calibration import load_rgb

            first = sorted(root.glob("*.png"))
            if first:
                return load_rgb(first[0])
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def bench_row(name: str, model: Path, opts: dict, rgb: np.ndarray, args: argparse.Namespace) -> dict:
    row: dict[str, Any] = {"backend": name}
    try:
        backend = create_backend(name, model, **opts)
    except SegPerceptionError as err:
        row["skipped"] = str(err)
        return row
    except Exception as err:  # noqa: BLE001 - report any failure as a skipped row, keep benchmarking
        row["skipped"] = f"{type(err).__name__}: {err}"
        return row
    with backend:
        seg = Segmenter(backend, ModelSpec.for_model(model))
        tensor, geo = seg.preprocess(rgb)
        row["device"] = backend.device
        row["description"] = backend.description
        row["infer_ms"] = timed(lambda: backend.infer(tensor), args.runs, args.warmup)

        def frame() -> None:
            t, g = seg.preprocess(rgb)
            out = backend.infer_labels(t, want_confidence=False, content_hw=g.content, image_hw=g.image)
            if out is None:
                seg.postprocess(backend.infer(t), g, want_confidence=False)

        row["gpu_argmax"] = (
            backend.infer_labels(tensor, want_confidence=False, content_hw=geo.content, image_hw=geo.image) is not None
        )
        row["frame_ms"] = timed(frame, args.runs, args.warmup)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="ONNX model (metadata YAML beside it)")
    p.add_argument("--torch-model", help="TorchScript/ExportedProgram/checkpoint for the torch rows")
    p.add_argument("--size", type=int, nargs=2, default=(360, 480), metavar=("H", "W"))
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--cpu-runs", type=int, default=10, help="runs for CPU rows (keep CPU load modest)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ORT/torch CPU rows (0 = library default)")
    p.add_argument("--engine-cache", help="TensorRT engine cache folder (default: a temporary folder)")
    p.add_argument("--calib", help="image folder: also benchmark TensorRT int8")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        work = Path(tmp)
        onnx_model, torch_model, what = prepare_models(args, work)
        rgb = test_image(*args.size)
        cache = args.engine_cache or str(work / "engines")
        cpu = argparse.Namespace(**{**vars(args), "runs": args.cpu_runs, "warmup": min(args.warmup, 3)})
        plan: list[tuple[str, str, Path | None, dict, argparse.Namespace]] = [
            ("ORT CPU fp32 (baseline)", "onnxruntime", onnx_model, {"device": "cpu", "num_threads": args.threads}, cpu),
            ("ORT CUDA fp32", "onnxruntime", onnx_model, {"device": "cuda"}, args),
            ("torch CPU fp32", "torch", torch_model, {"device": "cpu", "num_threads": args.threads}, cpu),
            ("torch CUDA fp32", "torch", torch_model, {"device": "cuda"}, args),
            ("torch CUDA fp16", "torch", torch_model, {"device": "cuda", "precision": "fp16"}, args),
            (
                "torch CUDA fp16 + graphs",
                "torch",
                torch_model,
                {"device": "cuda", "precision": "fp16", "cuda_graphs": True},
                args,
            ),
            ("TensorRT fp16", "tensorrt", onnx_model, {"precision": "fp16", "engine_cache_dir": cache}, args),
        ]
        # A shipped TensorRT Q/DQ sibling (NAME_int8_trt.onnx) needs no calibration frames.
        trt_sibling = onnx_model is not None and Path(onnx_model).with_name(Path(onnx_model).stem + "_int8_trt.onnx")
        if args.calib or (trt_sibling and trt_sibling.exists()):
            plan.append(
                (
                    "TensorRT int8",
                    "tensorrt",
                    onnx_model,
                    {"precision": "int8", "engine_cache_dir": cache, "calibration_dir": args.calib},
                    args,
                )
            )
        rows = []
        for label, name, model, opts, rargs in plan:
            if model is None:
                rows.append({"label": label, "backend": name, "skipped": "no torch model (give --torch-model)"})
                continue
            print(f"running {label} ...", file=sys.stderr, flush=True)
            row = bench_row(name, model, opts, rgb, rargs)
            row["label"] = label
            rows.append(row)

        base = rows[0].get("frame_ms")
        print(f"\nmodel: {what}; image {rgb.shape[1]}x{rgb.shape[0]}, network {args.size[0]}x{args.size[1]}")
        print(f"GPU runs: {args.runs}, CPU runs: {args.cpu_runs} (median ms)\n")
        print(f"| {'backend':<26} | {'device':<34} | infer ms | frame ms |   fps  | vs CPU | GPU arg-max |")
        print(f"|{'-' * 28}|{'-' * 36}|---------:|---------:|-------:|-------:|:-----------:|")
        for r in rows:
            if "skipped" in r:
                continue
            ratio = f"{base / r['frame_ms']:.1f}x" if base else "-"
            print(
                f"| {r['label']:<26} | {r['device'][:34]:<34} | {r['infer_ms']:8.2f} | {r['frame_ms']:8.2f} | "
                f"{1000 / r['frame_ms']:6.1f} | {ratio:>6} | {'yes' if r['gpu_argmax'] else 'no':^11} |"
            )
        skipped = [r for r in rows if "skipped" in r]
        if skipped:
            print("\nnot run here:")
            for r in skipped:
                print(f"  {r['label']}: {r['skipped']}")
        try:
            from seg_perception.backends.select import select_backend

            sel = select_backend("auto", onnx_model, precision="fp16", engine_cache_dir=cache)
            print(f"\nbackend auto (precision fp16) here: {sel.summary}")
            sel.backend.close()
        except SegPerceptionError as err:
            print(f"\nbackend auto: {err}")
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
