"""TensorRT 11 version gates, driven by the fake ``tensorrt`` module of test_tensorrt_glue.

TensorRT 11 has no BuilderFlag.FP16/INT8 and no implicit-INT8 calibrators: int8 must
build a Q/DQ model strongly typed, fp16 must refuse with BackendUnavailable.
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
from seg_perception.errors import BackendUnavailable

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


def test_fp16_on_11_is_backend_unavailable_not_attribute_error(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="removed in 11.0"):
        _build(tmp_path, fake_trt11(), "fp16")


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
