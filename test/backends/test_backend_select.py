"""Backend selection: auto order, reasons, precision handling, explicit requests."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from seg_perception.backends import base
from seg_perception.backends.base import Backend, TensorSpec
from seg_perception.backends.select import auto_candidates, model_format, parse_auto_order, select_backend
from seg_perception.errors import BackendUnavailable, ConfigError, ModelError


def _tiny_onnx(path: Path) -> Path:
    w = helper.make_tensor("w", TensorProto.FLOAT, (4, 3, 1, 1), np.ones(12, np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return _tiny_onnx(tmp_path / "m.onnx")


class _Dummy(Backend):
    def __init__(self, name: str, **opts: Any) -> None:
        self.name, self.opts = name, opts

    @property
    def input_spec(self) -> TensorSpec:
        return TensorSpec("input", (1, 3, 8, 8), np.dtype(np.float32))

    @property
    def output_spec(self) -> TensorSpec:
        return TensorSpec("logits", (1, 4, 8, 8), np.dtype(np.float32))

    @property
    def device(self) -> str:
        return str(self.opts.get("device", "cpu"))

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        return np.zeros((1, 4, 8, 8), np.float32)


@pytest.fixture
def fake_registry(monkeypatch: pytest.MonkeyPatch):
    """Replace the three backends with scripted fakes: {name: exception to raise or None}."""
    behaviour: dict[str, Any] = {}
    calls: list[tuple[str, dict]] = []

    def factory(name: str):
        def make(path: Path, **opts: Any) -> Backend:
            calls.append((name, opts))
            b = behaviour.get((name, opts.get("device")), behaviour.get(name))
            if b is not None:
                raise b
            return _Dummy(name, **opts)

        return make

    registry = {n: factory(n) for n in ("tensorrt", "onnxruntime", "torch")}
    monkeypatch.setattr(base, "_REGISTRY", registry)
    monkeypatch.setattr(base, "_load_builtin_backends", lambda: None)
    return behaviour, calls


def test_auto_on_this_machine_uses_onnxruntime_cpu_and_says_why(model: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="seg_perception.backends.select"):
        sel = select_backend("auto", model)
    try:
        if sel.backend.name == "onnxruntime" and sel.backend.device == "cpu":
            assert [r.split(":")[0] for r in sel.reasons] == ["tensorrt", "onnxruntime (cuda)"]
            assert "tensorrt" in sel.summary and "skipped" in sel.summary
            assert any("backend auto" in r.message for r in caplog.records)
        else:  # a GPU machine picked something faster
            assert sel.backend.name in ("tensorrt", "onnxruntime")
    finally:
        sel.backend.close()


def test_auto_order_and_first_success(model: Path, fake_registry) -> None:
    behaviour, calls = fake_registry
    behaviour["tensorrt"] = BackendUnavailable("tensorrt not installed")
    behaviour[("onnxruntime", "cuda")] = BackendUnavailable("no CUDAExecutionProvider")
    sel = select_backend("auto", model, precision="fp32", engine_cache_dir="/x")
    assert (sel.backend.name, sel.backend.device) == ("onnxruntime", "cpu")
    tried = [(n, o["device"]) for n, o in calls]
    assert tried == [("tensorrt", "cuda"), ("onnxruntime", "cuda"), ("onnxruntime", "cpu")]
    assert calls[0][1]["engine_cache_dir"] == "/x"  # options reach every candidate
    assert sel.reasons == ["tensorrt: tensorrt not installed", "onnxruntime (cuda): no CUDAExecutionProvider"]
    assert sel.summary.endswith(
        "(skipped: tensorrt: tensorrt not installed; onnxruntime (cuda): no CUDAExecutionProvider)"
    )


def test_tensorrt_first_when_it_works(model: Path, fake_registry) -> None:
    _, calls = fake_registry
    sel = select_backend("auto", model, precision="fp16")
    assert sel.backend.name == "tensorrt" and sel.reasons == [] and sel.notes == []
    assert calls[0][1]["precision"] == "fp16"
    assert "first choice" in sel.summary


def test_auto_runs_fp32_where_the_precision_is_unsupported(model: Path, fake_registry) -> None:
    behaviour, calls = fake_registry
    behaviour["tensorrt"] = BackendUnavailable("no GPU")
    sel = select_backend("auto", model, precision="fp16")
    assert sel.backend.name == "onnxruntime" and calls[-1][1]["precision"] == "fp32"
    assert sel.notes == ["onnxruntime cannot run fp16; running fp32"]
    assert "running fp32" in sel.summary


def test_unexpected_errors_do_not_stop_the_fallback(model: Path, fake_registry, caplog) -> None:
    behaviour, _ = fake_registry
    behaviour["tensorrt"] = RuntimeError("CUDA driver version is insufficient")
    with caplog.at_level(logging.WARNING):
        sel = select_backend("auto", model)
    assert sel.backend.name == "onnxruntime"
    assert sel.reasons[0] == "tensorrt: unexpected RuntimeError: CUDA driver version is insufficient"


def test_nothing_works(model: Path, fake_registry) -> None:
    behaviour, _ = fake_registry
    behaviour["tensorrt"] = BackendUnavailable("a")
    behaviour["onnxruntime"] = BackendUnavailable("b")
    with pytest.raises(BackendUnavailable, match="no backend could load the model: tensorrt: a; onnxruntime"):
        select_backend("auto", model)
    behaviour["tensorrt"] = ModelError("corrupt")
    behaviour["onnxruntime"] = ModelError("corrupt")
    with pytest.raises(ModelError):
        select_backend("auto", model)


def test_explicit_backend_never_falls_back(model: Path, fake_registry) -> None:
    behaviour, calls = fake_registry
    behaviour["tensorrt"] = BackendUnavailable("tensorrt not installed")
    with pytest.raises(BackendUnavailable, match="backend 'tensorrt' was requested but cannot run on this machine"):
        select_backend("tensorrt", model, precision="fp16")
    assert [n for n, _ in calls] == ["tensorrt"]
    sel = select_backend("onnxruntime", model)
    assert sel.requested == "onnxruntime" and "requested explicitly" in sel.summary


def test_explicit_tensorrt_on_this_machine_has_a_clear_message(model: Path) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorrt is installed here")
    with pytest.raises(BackendUnavailable) as info:
        select_backend("tensorrt", model)
    msg = str(info.value)
    assert "requested but cannot run" in msg and "TensorRT" in msg and "'auto'" in msg


def test_engine_and_torch_files_get_their_own_order(tmp_path: Path, fake_registry) -> None:
    behaviour, calls = fake_registry
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    behaviour["tensorrt"] = BackendUnavailable("no TensorRT")
    with pytest.raises(BackendUnavailable, match="tensorrt: no TensorRT"):
        select_backend("auto", engine)
    ts = tmp_path / "m.pt"
    ts.write_bytes(b"x")
    behaviour[("torch", "cuda")] = BackendUnavailable("no CUDA")
    sel = select_backend("auto", ts)
    assert (sel.backend.name, sel.backend.device) == ("torch", "cpu")
    assert sel.reasons == ["torch (cuda): no CUDA"]


def test_auto_order_option(model: Path, fake_registry) -> None:
    _, calls = fake_registry
    sel = select_backend("auto", model, auto_order=["torch:cuda", "onnxruntime:cpu"])
    assert (sel.backend.name, sel.backend.device) == ("onnxruntime", "cpu")
    assert sel.reasons == ["torch (cuda): cannot read onnx model files"]
    assert all("auto_order" not in o for _, o in calls)


def test_parse_auto_order_and_candidates(tmp_path: Path) -> None:
    assert parse_auto_order(["tensorrt", "onnxruntime:cuda", "torch"]) == [
        ("tensorrt", {"device": "cuda"}),
        ("onnxruntime", {"device": "cuda"}),
        ("torch", {"device": "cpu"}),
    ]
    for bad in (["tensorflow"], ["tensorrt:cpu"], ["onnxruntime:tpu"], []):
        with pytest.raises(ConfigError):
            parse_auto_order(bad)
    cands, skipped = auto_candidates(tmp_path / "x.plan")
    assert cands == [("tensorrt", {"device": "cuda"})] and skipped == []


def test_model_format_and_argument_errors(model: Path, tmp_path: Path) -> None:
    assert model_format("a.ONNX") == "onnx" and model_format("a.plan") == "engine" and model_format("a.pt2") == "torch"
    with pytest.raises(ConfigError, match="model type"):
        model_format("a.tflite")
    with pytest.raises(ConfigError, match="precision"):
        select_backend("auto", model, precision="bf16")
    with pytest.raises(ModelError):
        select_backend("auto", tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match="unknown backend"):
        select_backend("tensorflow", model)
