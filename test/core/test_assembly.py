"""assembly.open_backend: serve with ONNX Runtime while TensorRT builds behind it, only where TensorRT exists."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from seg_perception import assembly
from seg_perception.node_config import NodeConfig


def test_no_background_build_without_tensorrt(tiny_model: Path) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    selection, build = assembly.open_backend(NodeConfig(), tiny_model, lambda b: None, lambda e: None)
    assert build is None and "onnxruntime" in selection.summary


def test_tensorrt_present_serves_onnxruntime_now_and_builds_behind(tiny_model: Path, monkeypatch) -> None:
    real = importlib.util.find_spec
    def find_spec(name: str, *args: object) -> object:
        return object() if name == "tensorrt" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    ready, errors = [], []
    selection, build = assembly.open_backend(NodeConfig(precision="fp16"), tiny_model, ready.append, errors.append)
    assert build is not None and "onnxruntime" in selection.backend.description
    assert any("builds behind it" in n for n in selection.notes)
    assert build.join(60)
    # no real TensorRT here: the build fails, the ONNX Runtime backend keeps serving
    assert build.state == "failed" and errors and not ready
    # switched off, or a model TensorRT cannot take: no background build
    _, off = assembly.open_backend(NodeConfig(engine_build_in_background=False), tiny_model, ready.append,
                                   errors.append)
    assert off is None
    _, named = assembly.open_backend(NodeConfig(backend="onnxruntime"), tiny_model, ready.append, errors.append)
    assert named is None
