"""TensorRT 11 version gates, driven by the fake ``tensorrt`` module of test_tensorrt_glue.

TensorRT 11 has no BuilderFlag.FP16/INT8 and no implicit-INT8 calibrators: int8 must
build a Q/DQ model strongly typed, fp16 the fp16 ONNX strongly typed.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from pathlib import Path

import pytest

from seg_perception.backends import tensorrt_build as trt_build
from seg_perception.backends import tensorrt_support as trt_support

_spec = importlib.util.spec_from_file_location("_trt_glue", Path(__file__).with_name("test_tensorrt_glue.py"))
glue = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(glue)  # type: ignore[union-attr]
STRONGLY_TYPED = 1


def fake_trt11(**kw: object) -> types.ModuleType:
    """The fake TensorRT 10 module with what 11.0 removed taken away and STRONGLY_TYPED present."""
    trt = glue.make_fake_trt(version="11.4.0", **kw)
    trt.BuilderFlag = types.SimpleNamespace()  # FP16 / INT8 gone
    del trt.IInt8EntropyCalibrator2
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=STRONGLY_TYPED)
    return trt


def _build(tmp_path: Path, trt: types.ModuleType, precision: str) -> bytes:
    req = glue._request(tmp_path, precision)
    req.calibration = None
    data, _ = trt_build.build_serialized_engine(trt, None, req, glue.GPU, b"")
    return data


def test_tensorrt_11_is_admitted_by_the_version_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", fake_trt11())
    assert trt_support.tensorrt_major(trt_support.import_tensorrt()) == 11


def test_int8_on_11_builds_strongly_typed_without_flags_or_calibrator(tmp_path: Path) -> None:
    trt = fake_trt11()
    _build(tmp_path, trt, "int8")
    cfg = trt.record["config"]
    assert trt.record["network_flags"] == 1 << STRONGLY_TYPED
    assert cfg.flags == set() and cfg.int8_calibrator is None


def test_fp16_on_11_builds_strongly_typed_without_the_removed_flag(tmp_path: Path) -> None:
    trt = fake_trt11()
    _build(tmp_path, trt, "fp16")
    assert trt.record["network_flags"] == 1 << STRONGLY_TYPED
    assert trt.record["config"].flags == set()


def _tiny_model(folder: Path) -> Path:
    import numpy as np
    import onnx
    import yaml
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.full((3, 3, 1, 1), 0.5, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 8, 8])],
        [w],
    )
    path = folder / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    meta = {"class_names": ["a", "b", "c"], "input_size": [8, 8], "mean": [0.5] * 3, "std": [0.25] * 3}
    path.with_suffix(".yaml").write_text(yaml.safe_dump(meta))
    return path


def _recorded_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[trt_build.BuildRequest]:
    """Patch ``obtain_engine`` to record each BuildRequest instead of building; the list it fills."""
    seen: list[trt_build.BuildRequest] = []

    def obtain(trt_, logger, runtime, request, key, *a, **k):  # type: ignore[no-untyped-def]
        seen.append(request)
        return trt_build.EngineSource(None, tmp_path / "e", built=True, key=key)

    monkeypatch.setattr(trt_build, "obtain_engine", obtain)
    return seen


def _calib_frames(tmp_path: Path) -> Path:
    """Five random 8x8 PNG frames in ``tmp_path/calib``."""
    import cv2
    import numpy as np

    calib = tmp_path / "calib"
    calib.mkdir(exist_ok=True)
    for i in range(5):
        cv2.imwrite(str(calib / f"{i}.png"), np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8))
    return calib


@pytest.mark.parametrize(("version", "swapped"), [("11.4.0", True), ("10.3.0", False)])
def test_fp16_engine_builds_from_the_fp16_onnx_on_11_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str, swapped: bool
) -> None:
    import onnx
    from onnx import TensorProto

    from seg_perception.backends import precision

    monkeypatch.setattr(precision, "precision_cache_dir", lambda: tmp_path / "precision")
    trt = fake_trt11() if swapped else glue.make_fake_trt(version=version)
    src = _tiny_model(tmp_path)
    seen = _recorded_requests(tmp_path, monkeypatch)
    opts = trt_build.EngineOptions(precision="fp16", engine_cache_dir=tmp_path / "engines")
    trt_build.engine_from_onnx(trt, None, None, glue.GPU, src, opts)
    built = seen[0].onnx_path
    assert (built != src) is swapped
    weights = onnx.load(str(built)).graph.initializer
    assert {t.data_type for t in weights} == ({TensorProto.FLOAT16} if swapped else {TensorProto.FLOAT})


def test_int8_engine_on_11_builds_from_the_tensorrt_qdq_flavour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not ORT's uint8 Q/DQ model: TensorRT's parser takes symmetric int8 only (zero points 0, float biases)."""
    import onnx

    from seg_perception.backends import precision

    monkeypatch.setattr(precision, "precision_cache_dir", lambda: tmp_path / "precision")
    src = _tiny_model(tmp_path)
    calib = _calib_frames(tmp_path)
    seen = _recorded_requests(tmp_path, monkeypatch)
    opts = trt_build.EngineOptions(precision="int8", calib_dir=calib, engine_cache_dir=tmp_path / "engines")
    trt_build.engine_from_onnx(fake_trt11(), None, None, glue.GPU, src, opts)
    built = seen[0].onnx_path
    assert built.name == "tiny_int8_trt_auto.onnx" and precision.tensorrt_qdq_problems(built) == []
    ops = {n.op_type for n in onnx.load(str(built)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def _converted(tmp_path: Path, target: str) -> Path:

    from seg_perception.backends import precision

    src = _tiny_model(tmp_path)
    calib = _calib_frames(tmp_path)
    out = tmp_path / f"tiny_{target}.onnx"
    precision.quantize_int8(src, calib, out, calib_images=4, verify_images=0, use_cache=False, target=target)
    return out


@pytest.mark.parametrize("version", ["10.3.0", "11.4.0"])
def test_a_qdq_model_given_as_is_builds_as_stored_strongly_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    """NVIDIA: explicit quantization with strong typing and no precision flags, on 10.x too."""
    qdq = _converted(tmp_path, "tensorrt")
    trt = fake_trt11() if version.startswith("11") else glue.make_fake_trt(version=version)
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=STRONGLY_TYPED)  # 10.x has it too
    seen = _recorded_requests(tmp_path, monkeypatch)
    opts = trt_build.EngineOptions(precision="fp32", engine_cache_dir=tmp_path / "engines")
    trt_build.engine_from_onnx(trt, None, None, glue.GPU, qdq, opts)
    request = seen[0]
    assert request.onnx_path == qdq and request.carried and request.precision == "int8"
    assert request.calibration is None
    monkeypatch.undo()
    trt_build.build_serialized_engine(trt, None, request, glue.GPU, b"")
    assert trt.record["network_flags"] == 1 << STRONGLY_TYPED and trt.record["config"].flags == set()
    assert trt.record["config"].int8_calibrator is None


def test_the_cpu_qdq_flavour_is_refused_by_the_tensorrt_backend_with_the_reason(tmp_path: Path) -> None:
    from seg_perception.errors import ModelError

    cpu = _converted(tmp_path, "onnxruntime")
    opts = trt_build.EngineOptions(precision="int8", engine_cache_dir=tmp_path / "engines")
    with pytest.raises(ModelError, match="refuses .*UINT8.*quantize --target tensorrt"):
        trt_build.engine_from_onnx(fake_trt11(), None, None, glue.GPU, cpu, opts)


def test_fp32_on_11_builds_as_before(tmp_path: Path) -> None:
    trt = fake_trt11()
    assert _build(tmp_path, trt, "fp32") == b"ENGINE:"
    assert trt.record["network_flags"] == 0


def test_fp16_on_10_keeps_the_flag(tmp_path: Path) -> None:
    trt = glue.make_fake_trt(version="10.3.0")
    assert _build(tmp_path, trt, "fp16") == b"ENGINE:FP16"


def test_one_logger_per_process() -> None:
    trt = glue.make_fake_trt()
    assert trt_support.make_logger(trt) is trt_support.make_logger(trt)


def test_rejected_timing_cache_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    trt = glue.make_fake_trt()
    calls: list[bytes] = []

    def set_timing_cache(self: object, cache: object, ignore_mismatch: bool) -> bool:
        calls.append(cache.data)  # type: ignore[attr-defined]
        self.timing = cache  # type: ignore[attr-defined]
        return len(calls) > 1  # the first (loaded) cache is rejected

    glue.FakeConfig.set_timing_cache, original = set_timing_cache, glue.FakeConfig.set_timing_cache
    try:
        req = glue._request(tmp_path, "fp32")
        with caplog.at_level(logging.WARNING):
            trt_build.build_serialized_engine(trt, None, req, glue.GPU, b"old")
    finally:
        glue.FakeConfig.set_timing_cache = original
    assert calls == [b"old", b""] and "rejected the timing cache" in caplog.text
