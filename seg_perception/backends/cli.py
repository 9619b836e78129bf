"""``seg-perception build-engine``: build and cache a TensorRT engine ahead of time.

The node then finds it in the cache and starts in seconds; ``--output`` also writes a
standalone ``.engine`` with its metadata YAML (docs/backends.md).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import numpy as np

from seg_perception.backends.base import PRECISIONS
from seg_perception.backends.calibration import DEFAULT_MAX_IMAGES
from seg_perception.errors import ConfigError, ModelError


class Heartbeat:
    """Prints "still building (N s)" every ``period`` seconds while the body runs.

    TensorRT's builder gives no progress for most of a build; a line every half minute
    tells the person at the terminal that nothing hangs.
    """

    def __init__(self, label: str, period: float = 30.0, stream: TextIO | None = None) -> None:
        self.label, self.period = label, period
        self.stream = stream or sys.stdout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(self.period):
            self.beats += 1
            print(f"  ... {self.label} ({time.monotonic() - t0:.0f} s)", file=self.stream, flush=True)

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name="build-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def measure_latency(fn: Any, runs: int, warmup: int = 5) -> dict[str, float]:
    """Median / p90 / min milliseconds of ``fn()`` over ``runs`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))],
        "min_ms": times[0],
    }


def add_model_args(p: argparse.ArgumentParser) -> None:
    """``--model`` and ``--backend``, as every subcommand that runs the node's model takes them."""
    p.add_argument("--model", default=None, help="ONNX model (YAML beside it); default: the bundled models/camvid.onnx")
    p.add_argument("--backend", default="auto", help="auto, onnxruntime, tensorrt or torch (default auto)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build-engine",
        help="build and cache a TensorRT engine from an ONNX model (ahead of time)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", type=Path, help="ONNX model (its metadata YAML beside it)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp16", help="engine precision (default fp16)")
    p.add_argument("--calib", type=Path, help="folder of sample images for INT8 calibration (needed for int8)")
    p.add_argument(
        "--calib-max-images", type=int, default=DEFAULT_MAX_IMAGES, help="at most this many calibration images"
    )
    p.add_argument(
        "--input-size", type=int, nargs=2, metavar=("H", "W"), help="network input size for dynamic-shape models"
    )
    p.add_argument("--cache-dir", type=Path, help="engine cache folder (default: the node's default cache)")
    p.add_argument("--workspace-mb", type=int, default=0, help="builder workspace limit in MiB (0 = TensorRT default)")
    p.add_argument("--device", default="cuda", help="CUDA device, e.g. cuda:0")
    p.add_argument("--rebuild", action="store_true", help="ignore a cached engine and build anew")
    p.add_argument("--output", type=Path, help="also write the engine here (e.g. models/camvid_fp16.engine) + YAML")
    p.add_argument("--runs", type=int, default=50, help="timed runs for the latency figure (0 = skip)")
    p.set_defaults(func=build_engine_command)


def build_engine_command(args: argparse.Namespace) -> int:
    model = Path(args.model).expanduser()
    if model.suffix.lower() != ".onnx":
        raise ConfigError(f"build-engine takes an ONNX model, got {model.name}")
    if not model.is_file():
        raise ModelError(f"model file {model} does not exist")
    if args.precision == "int8" and args.calib is None:
        raise ConfigError("--precision int8 needs --calib DIR (a folder of sample images from the deployment domain)")
    if args.output is not None and Path(args.output).suffix.lower() not in (".engine", ".plan"):
        raise ConfigError(f"--output must end in .engine or .plan, got {args.output}")
    from seg_perception.backends import engine_cache
    from seg_perception.backends.tensorrt import TensorRTBackend

    cache_dir = Path(args.cache_dir).expanduser() if args.cache_dir else engine_cache.default_cache_dir()
    size = f"{args.input_size[0]}x{args.input_size[1]}" if args.input_size else "from the model"
    print(
        f"TensorRT engine for {model.name}: precision {args.precision}, input {size}, cache {cache_dir}\n"
        "  building can take minutes (longer on Jetson and with INT8 calibration); a cached engine loads in seconds",
        flush=True,
    )
    t0 = time.perf_counter()
    with Heartbeat("still working: parsing, calibrating or timing kernels"):
        backend = TensorRTBackend(
            model,
            precision=args.precision,
            device=args.device,
            engine_cache_dir=cache_dir,
            calibration_dir=args.calib,
            calib_max_images=args.calib_max_images,
            input_size=args.input_size,
            workspace_mb=args.workspace_mb,
            rebuild=args.rebuild,
        )
    with backend:
        src = backend.source
        how = f"built in {src.build_seconds:.1f} s" if src.built else f"loaded from cache ({src.reason})"
        print(f"engine: {src.path} ({how}; {time.perf_counter() - t0:.1f} s in total)")
        print(f"device: {backend.device}")
        print(f"precision: {backend.precision}")
        print("I/O:")
        for t in backend.io:
            print(f"  {t.describe()}")
        if args.output is not None:
            out = Path(args.output).expanduser()
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src.path, out)
            meta = model.with_suffix(".yaml")
            if meta.exists():
                shutil.copyfile(meta, out.with_suffix(".yaml"))
            print(f"wrote {out}" + (f" and {out.with_suffix('.yaml').name}" if meta.exists() else " (no YAML found)"))
        if args.runs > 0:
            x = np.random.default_rng(0).standard_normal(backend.input_spec.shape, dtype=np.float32)  # type: ignore[arg-type]
            full = measure_latency(lambda: backend.infer(x), args.runs)
            print(
                f"latency (logits to host): median {full['median_ms']:.2f} ms, p90 {full['p90_ms']:.2f} ms, "
                f"min {full['min_ms']:.2f} ms over {args.runs} runs"
            )
            hw = tuple(backend.input_spec.shape[2:])
            probe = backend.infer_labels(x, want_confidence=False, content_hw=hw, image_hw=hw)  # type: ignore[arg-type]
            if probe is not None:
                lab = measure_latency(
                    lambda: backend.infer_labels(x, want_confidence=False, content_hw=hw, image_hw=hw),  # type: ignore[arg-type]
                    args.runs,
                )
                print(
                    f"latency (class ids only, arg-max on GPU): median {lab['median_ms']:.2f} ms, "
                    f"p90 {lab['p90_ms']:.2f} ms over {args.runs} runs"
                )
    return 0
