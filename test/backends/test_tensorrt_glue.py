"""TensorRT backend control flow without TensorRT.

A small fake ``tensorrt`` module (defined here, used only by these tests) stands in for
the real one to check the build / cache / rebuild logic and which builder settings are
made. It encodes our reading of the TensorRT 10 API, so it checks our control flow, not
TensorRT itself: test/test_tensorrt_gpu.py runs the real library where it exists.
"""

from __future__ import annotations

import logging
import sys
import types
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from seg_perception.backends import create_backend
from seg_perception.backends import tensorrt_build as trt_build
from seg_perception.backends import tensorrt_support as trt_support
from seg_perception.backends.engine_cache import EngineCache, EngineKey, GpuInfo
from seg_perception.errors import BackendUnavailable, ConfigError, ModelError

GPU = GpuInfo("Orin", (8, 7))


# -- a fake tensorrt module -----------------------------------------------------------------


class _Enum:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


class FakeDims(tuple):
    pass


class FakeInput:
    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name, self.shape = name, FakeDims(shape)


class FakeNetwork:
    def __init__(self, input_shape: tuple[int, ...]) -> None:
        self.num_inputs = 1
        self._inp = FakeInput("input", input_shape)

    def get_input(self, i: int) -> FakeInput:
        return self._inp


class FakeTimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return self.data + b"+new"


class FakeProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name: str, mn, opt, mx) -> None:
        self.shapes[name] = (tuple(mn), tuple(opt), tuple(mx))


class FakeConfig:
    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.pools: dict[str, int] = {}
        self.profiles: list[FakeProfile] = []
        self.int8_calibrator = None
        self.calibration_profile = None
        self.timing: FakeTimingCache | None = None

    def set_flag(self, flag: _Enum) -> None:
        self.flags.add(flag.name)

    def set_memory_pool_limit(self, pool: _Enum, size: int) -> None:
        self.pools[pool.name] = size

    def add_optimization_profile(self, p: FakeProfile) -> int:
        self.profiles.append(p)
        return len(self.profiles) - 1

    def set_calibration_profile(self, p: FakeProfile) -> None:
        self.calibration_profile = p

    def create_timing_cache(self, data: bytes) -> FakeTimingCache:
        if data.startswith(b"garbage"):
            raise RuntimeError("bad timing cache blob")
        return FakeTimingCache(bytes(data))

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.timing = cache
        return True

    def get_timing_cache(self) -> FakeTimingCache | None:
        return self.timing


def make_fake_trt(
    version: str = "10.3.0", input_shape=(1, 3, 8, 8), build_ok: bool = True, fail_builds: int = 0
) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.record = {}  # type: ignore[attr-defined]

    class ILogger:
        def __init__(self) -> None:
            pass

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            pass

    class Builder:
        def __init__(self, logger: Any) -> None:
            trt.record["builder"] = self

        def create_network(self, flags: int) -> FakeNetwork:
            trt.record["network_flags"] = flags
            return FakeNetwork(input_shape)

        def create_builder_config(self) -> FakeConfig:
            trt.record["config"] = FakeConfig()
            return trt.record["config"]

        def create_optimization_profile(self) -> FakeProfile:
            return FakeProfile()

        def build_serialized_network(self, network: FakeNetwork, config: FakeConfig) -> bytes | None:
            trt.record["builds"] = trt.record.get("builds", 0) + 1
            if trt.record["builds"] <= fail_builds:
                return None
            return b"ENGINE:" + ",".join(sorted(config.flags)).encode() if build_ok else None

    class OnnxParser:
        def __init__(self, network: FakeNetwork, logger: Any) -> None:
            self.num_errors = 0

        def parse_from_file(self, path: str) -> bool:
            if Path(path).read_bytes().startswith(b"broken"):
                self.num_errors = 1
                return False
            return True

        def get_error(self, i: int) -> str:
            return "Unsupported ONNX op: FancyOp"

    trt.ILogger = ILogger
    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    trt.Builder = Builder
    trt.OnnxParser = OnnxParser
    trt.BuilderFlag = types.SimpleNamespace(FP16=_Enum("FP16"), INT8=_Enum("INT8"))
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE=_Enum("WORKSPACE"))
    trt.TensorIOMode = types.SimpleNamespace(INPUT=_Enum("INPUT"), OUTPUT=_Enum("OUTPUT"))
    trt.DataType = types.SimpleNamespace(FLOAT=_Enum("FLOAT"), HALF=_Enum("HALF"), INT64=_Enum("INT64"))
    return trt


class FakeRuntime:
    """Deserializes b"ENGINE:..." blobs; refuses anything else, or everything when ``refuse`` is set."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.calls = 0

    def deserialize_cuda_engine(self, data: bytes) -> Any:
        self.calls += 1
        if self.refuse > 0:
            self.refuse -= 1
            return None
        return {"engine": bytes(data)} if bytes(data).startswith(b"ENGINE:") else None


class Builds:
    """A build_fn counting calls and recording the timing cache it was given."""

    def __init__(self) -> None:
        self.count = 0
        self.timing_in: list[bytes] = []

    def __call__(self, trt, logger, request, gpu, timing):
        self.count += 1
        self.timing_in.append(timing)
        return b"ENGINE:" + request.precision.encode() + b":%d" % self.count, b"TIMING%d" % self.count


def _request(tmp_path: Path, precision: str = "fp16") -> trt_build.BuildRequest:
    onnx_path = tmp_path / "m.onnx"
    if not onnx_path.exists():
        onnx_path.write_bytes(b"onnx")
    return trt_build.BuildRequest(onnx_path, "input", (1, 3, 8, 8), precision)


def _key(precision: str = "fp16") -> EngineKey:
    return EngineKey("f" * 64, "10.3.0", GPU.name, GPU.compute_capability, precision, (1, 3, 8, 8))


def _obtain(tmp_path, runtime, builds, key=None, precision="fp16", rebuild=False):
    cache = EngineCache(tmp_path / "cache")
    return trt_build.obtain_engine(
        make_fake_trt(),
        None,
        runtime,
        _request(tmp_path, precision),
        key or _key(precision),
        cache,
        GPU,
        "m",
        rebuild=rebuild,
        build_fn=builds,
    )


# -- build / cache / rebuild ---------------------------------------------------------------


def test_first_start_builds_second_start_hits_cache(tmp_path: Path) -> None:
    builds = Builds()
    first = _obtain(tmp_path, FakeRuntime(), builds)
    assert first.built and builds.count == 1 and first.path.exists()
    second = _obtain(tmp_path, FakeRuntime(), builds)
    assert not second.built and builds.count == 1 and second.reason == "cache hit"
    assert second.engine == first.engine


def test_each_key_part_change_rebuilds(tmp_path: Path) -> None:
    builds = Builds()
    _obtain(tmp_path, FakeRuntime(), builds)
    for changed in (
        replace(_key(), tensorrt_version="10.4.0"),
        replace(_key(), gpu_name="NVIDIA GeForce RTX 4090", compute_capability=(8, 9)),
        replace(_key(), input_shape=(1, 3, 16, 16)),
        replace(_key(), model_sha256="e" * 64),
    ):
        before = builds.count
        assert _obtain(tmp_path, FakeRuntime(), builds, key=changed).built
        assert builds.count == before + 1
        assert not _obtain(tmp_path, FakeRuntime(), builds, key=changed).built  # and then cached


def test_corrupt_cache_file_is_rebuilt_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    builds = Builds()
    first = _obtain(tmp_path, FakeRuntime(), builds)
    first.path.write_bytes(first.path.read_bytes()[:5])  # truncated (disk full, power loss)
    with caplog.at_level(logging.WARNING):
        again = _obtain(tmp_path, FakeRuntime(), builds)
    assert again.built and builds.count == 2
    assert any("rebuilding" in r.message for r in caplog.records)
    assert not _obtain(tmp_path, FakeRuntime(), builds).built  # the rebuilt engine was cached


def test_incompatible_cached_engine_is_rebuilt_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    builds = Builds()
    _obtain(tmp_path, FakeRuntime(), builds)
    with caplog.at_level(logging.WARNING):
        again = _obtain(tmp_path, FakeRuntime(refuse=1), builds)  # e.g. TensorRT libs upgraded underneath
    assert again.built and again.reason == "cached engine could not be deserialized"
    assert any("incompatible or corrupt" in r.message for r in caplog.records)


def test_rebuild_flag_forces_a_build(tmp_path: Path) -> None:
    builds = Builds()
    _obtain(tmp_path, FakeRuntime(), builds)
    assert _obtain(tmp_path, FakeRuntime(), builds, rebuild=True).built and builds.count == 2


def test_timing_cache_is_reused_across_builds(tmp_path: Path) -> None:
    builds = Builds()
    _obtain(tmp_path, FakeRuntime(), builds, precision="fp16")
    _obtain(tmp_path, FakeRuntime(), builds, precision="fp32")
    assert builds.timing_in == [b"", b"TIMING1"]


def test_failed_build_stores_nothing(tmp_path: Path) -> None:
    def failing(*_a):
        raise BackendUnavailable("TensorRT failed to build")

    with pytest.raises(BackendUnavailable):
        _obtain(tmp_path, FakeRuntime(), failing)
    assert not list(tmp_path.rglob("*.engine")) and not list(tmp_path.rglob("*.json"))


def test_unloadable_fresh_build_raises(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="just built"):
        _obtain(tmp_path, FakeRuntime(refuse=5), Builds())


# -- builder settings --------------------------------------------------------------------------


def _build(tmp_path: Path, precision: str, input_shape=(1, 3, 8, 8), timing=b"", workspace=0, **fake):
    trt = make_fake_trt(input_shape=input_shape, **fake)
    req = _request(tmp_path, precision)
    req.workspace_bytes = workspace
    data, new_timing = trt_build.build_serialized_engine(trt, None, req, GPU, timing)
    return trt, data, new_timing


def test_fp16_sets_the_fp16_flag_and_no_profile_for_static_input(tmp_path: Path) -> None:
    trt, data, timing = _build(tmp_path, "fp16", workspace=1 << 30)
    cfg = trt.record["config"]
    assert cfg.flags == {"FP16"} and data == b"ENGINE:FP16"
    assert cfg.pools == {"WORKSPACE": 1 << 30}
    assert cfg.profiles == []  # static model: no profile needed
    assert trt.record["network_flags"] == 0
    assert timing == b"+new"


def test_fp32_sets_no_precision_flag(tmp_path: Path) -> None:
    trt, _, _ = _build(tmp_path, "fp32")
    assert trt.record["config"].flags == set() and trt.record["config"].pools == {}


def test_dynamic_input_gets_a_single_shape_profile(tmp_path: Path) -> None:
    trt, _, _ = _build(tmp_path, "fp32", input_shape=(-1, 3, -1, -1))
    (profile,) = trt.record["config"].profiles
    assert profile.shapes == {"input": ((1, 3, 8, 8),) * 3}


def test_int8_sets_calibrator_and_calibration_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calibrator = object()
    monkeypatch.setattr(trt_build, "make_entropy_calibrator", lambda trt, req, gpu: calibrator)
    trt, _, _ = _build(tmp_path, "int8", input_shape=(1, 3, -1, -1))
    cfg = trt.record["config"]
    assert cfg.flags == {"INT8", "FP16"}
    assert cfg.int8_calibrator is calibrator
    assert cfg.calibration_profile is cfg.profiles[0]


def test_int8_build_failing_on_cached_scales_recalibrates_once(tmp_path: Path, monkeypatch, caplog) -> None:
    made = []

    class Calibrator:
        def __init__(self) -> None:
            # the first calibrator finds the cache file, the retry must not
            self.used_cache = req.calibration_cache.exists()

    def make(trt, request, gpu):
        made.append(Calibrator())
        return made[-1]

    monkeypatch.setattr(trt_build, "make_entropy_calibrator", make)
    trt = make_fake_trt(fail_builds=1)
    req = _request(tmp_path, "int8")
    req.calibration_cache = tmp_path / "calib.cache"
    req.calibration_cache.write_bytes(b"stale scales")
    with caplog.at_level(logging.WARNING):
        data, _ = trt_build.build_serialized_engine(trt, None, req, GPU, b"")
    assert data.startswith(b"ENGINE:") and trt.record["builds"] == 2
    assert [c.used_cache for c in made] == [True, False]
    assert not req.calibration_cache.exists()
    assert any("recalibrating" in r.message for r in caplog.records)
    # without a cached file a failed build is final
    trt = make_fake_trt(build_ok=False)
    with pytest.raises(BackendUnavailable, match="failed to build"):
        trt_build.build_serialized_engine(trt, None, req, GPU, b"")
    assert trt.record["builds"] == 1


def test_int8_without_calibration_data_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="calibration"):
        _build(tmp_path, "int8")


def test_existing_timing_cache_is_loaded_and_corrupt_one_ignored(tmp_path: Path, caplog) -> None:
    _, _, timing = _build(tmp_path, "fp16", timing=b"OLD")
    assert timing == b"OLD+new"
    with caplog.at_level(logging.WARNING):
        _, _, timing = _build(tmp_path, "fp16", timing=b"garbage")
    assert timing == b"+new"
    assert sum("timing cache" in r.message for r in caplog.records) == 1


def test_parse_errors_and_failed_builds_are_reported(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"broken")
    with pytest.raises(BackendUnavailable, match="FancyOp"):
        _build(tmp_path, "fp16")
    (tmp_path / "m.onnx").write_bytes(b"fine")
    with pytest.raises(BackendUnavailable, match="failed to build"):
        _build(tmp_path, "fp16", build_ok=False)


# -- availability and helpers -----------------------------------------------------------------


def test_factory_reports_missing_tensorrt_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails like on a machine without TensorRT
    model = tmp_path / "m.onnx"
    _tiny_onnx(model)
    with pytest.raises(BackendUnavailable, match="TensorRT Python package cannot be imported"):
        create_backend("tensorrt", model)


def test_old_tensorrt_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt(version="8.6.1"))
    with pytest.raises(BackendUnavailable, match=">= 10"):
        trt_support.import_tensorrt()


def test_tensorrt_without_cuda_torch_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt())
    model = tmp_path / "m.onnx"
    _tiny_onnx(model)
    with pytest.raises(BackendUnavailable, match="no CUDA device"):
        create_backend("tensorrt", model)


def test_parse_cuda_index() -> None:
    assert trt_support.parse_cuda_index("cuda") == 0
    assert trt_support.parse_cuda_index("cuda:2") == 2
    assert trt_support.parse_cuda_index(1) == 1
    with pytest.raises(ConfigError):
        trt_support.parse_cuda_index("cpu")


def test_numpy_dtype_and_describe_io() -> None:
    trt = make_fake_trt()

    class Engine:
        num_io_tensors = 2
        _t = {
            "input": (trt.TensorIOMode.INPUT, (1, 3, 8, 8), trt.DataType.FLOAT),
            "logits": (trt.TensorIOMode.OUTPUT, (1, 11, 8, 8), trt.DataType.HALF),
        }

        def get_tensor_name(self, i):
            return list(self._t)[i]

        def get_tensor_mode(self, n):
            return self._t[n][0]

        def get_tensor_shape(self, n):
            return self._t[n][1]

        def get_tensor_dtype(self, n):
            return self._t[n][2]

    io = trt_support.describe_io(trt, Engine())
    assert [(t.name, t.is_input, t.shape, t.dtype) for t in io] == [
        ("input", True, (1, 3, 8, 8), np.dtype(np.float32)),
        ("logits", False, (1, 11, 8, 8), np.dtype(np.float16)),
    ]
    assert "1x11x8x8" in io[1].describe()
    with pytest.raises(ModelError):
        trt_support.numpy_dtype(_Enum("FP8"))


def _tiny_onnx(path: Path, shape=(1, 3, 8, 8), k: int = 4) -> Path:
    dims = [d if d is not None else n for d, n in zip(shape, ("N", "C", "H", "W"), strict=True)]
    w = helper.make_tensor("w", TensorProto.FLOAT, (k, 3, 1, 1), np.ones(k * 3, np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_onnx_input_reads_name_and_dynamic_dims(tmp_path: Path) -> None:
    assert trt_build.onnx_input(_tiny_onnx(tmp_path / "s.onnx")) == ("input", (1, 3, 8, 8))
    dyn = _tiny_onnx(tmp_path / "d.onnx", shape=(None, 3, None, None))
    assert trt_build.onnx_input(dyn) == ("input", (None, 3, None, None))
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(ModelError):
        trt_build.onnx_input(tmp_path / "bad.onnx")
