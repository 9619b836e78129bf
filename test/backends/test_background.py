"""Serving while a backend builds in the background, then an atomic swap (deliberately slow fake build)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from seg_perception.backends import create_backend
from seg_perception.backends.background import BackgroundBuild
from seg_perception.backends.base import Backend
from seg_perception.errors import ModelError
from seg_perception.model_spec import ModelSpec
from seg_perception.pipeline import Segmenter

from ..conftest import make_tiny_onnx


class SlowBuilt:
    """A real ONNX Runtime backend that took ``delay`` seconds to 'build' (like a TensorRT engine)."""

    def __init__(self, model: Path, delay: float) -> None:
        time.sleep(delay)
        self.inner = create_backend("onnxruntime", model, num_threads=1)
        self.closed = False

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    @property
    def description(self) -> str:
        return "slow-built engine"

    def close(self) -> None:
        self.closed = True
        self.inner.close()


def test_frames_flow_during_the_build_and_the_swap_is_atomic(tiny_model: Path) -> None:
    spec = ModelSpec.for_model(tiny_model)
    first = create_backend("onnxruntime", tiny_model, num_threads=1)
    seg = Segmenter(first, spec)
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    reference = seg.segment(rgb, want_confidence=False).labels
    served: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def camera() -> None:  # the worker thread: one frame after another, never waiting for the build
        while not stop.is_set():
            try:
                out = seg.segment(rgb, want_confidence=False)
                np.testing.assert_array_equal(out.labels, reference)
                served.append(seg.backend.description)
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)
                return

    swapped: list[Backend] = []
    worker = threading.Thread(target=camera)
    worker.start()
    build = BackgroundBuild(lambda: SlowBuilt(tiny_model, 0.5), lambda b: swapped.append(seg.swap_backend(b)),
                            errors.append)
    assert build.state == "building" and "building" in build.summary
    assert build.join(30)
    time.sleep(0.2)
    stop.set()
    worker.join(10)
    assert not errors, errors
    assert build.state == "ready" and build.seconds >= 0.5 and "ready after" in build.summary
    before = served.index("slow-built engine")
    assert before > 0, "frames must be served while the engine builds"
    assert set(served[before:]) == {"slow-built engine"}  # once swapped, only the new backend serves
    assert swapped == [first]  # the old one comes back to be closed


def test_a_failed_build_leaves_the_serving_backend(tiny_model: Path) -> None:
    spec = ModelSpec.for_model(tiny_model)
    seg = Segmenter(create_backend("onnxruntime", tiny_model, num_threads=1), spec)
    failures: list[Exception] = []

    def broken() -> Backend:
        time.sleep(0.1)
        raise RuntimeError("engine build ran out of GPU memory")

    build = BackgroundBuild(broken, seg.swap_backend, failures.append)
    assert build.join(10)
    assert build.state == "failed" and "out of GPU memory" in build.summary
    assert isinstance(failures[0], RuntimeError)
    assert seg.segment(np.zeros((16, 16, 3), np.uint8)).labels.shape == (16, 16)


def test_swap_refuses_another_model(tiny_model: Path, tmp_path: Path) -> None:
    other = make_tiny_onnx(tmp_path / "five.onnx", num_classes=5)
    seg = Segmenter(create_backend("onnxruntime", tiny_model), ModelSpec.for_model(tiny_model))
    with pytest.raises(ModelError, match="same model"):
        seg.swap_backend(create_backend("onnxruntime", other))
