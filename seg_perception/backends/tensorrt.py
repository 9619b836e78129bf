"""TensorRT 10 backend: builds (or loads) an engine, caches it, runs it on its own CUDA stream.

Written against the TensorRT 10 Python API (named I/O tensors: ``num_io_tensors``,
``get_tensor_name``, ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``);
none of the binding-index calls removed in 10.0 are used. CUDA memory and streams come
from ``torch.cuda``: device buffers are torch tensors allocated once, whose
``data_ptr()`` is handed to TensorRT, host<->device copies go through pinned torch
tensors, and the arg-max / softmax of ``infer_labels`` runs on the GPU so only class ids
(and confidence when asked) are copied back.

What was verified where: the pure parts (cache keys, cache validation, shapes,
calibration batches, GPU post-processing on CPU tensors, selection) are unit tested on
CPU; the control flow of build/cache/rebuild is tested with a fake ``tensorrt`` module
injected by the tests. The TensorRT calls themselves run only in
test/test_tensorrt_gpu.py on a machine with TensorRT and a GPU (see docs/deploying.md).

``import tensorrt`` happens only inside functions: this module is imported by the
backend registry on every machine and must then register a factory that raises
BackendUnavailable with the reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from seg_perception.backends import gpu_postprocess
from seg_perception.backends.base import Backend, TensorSpec, model_spec_or_none, register_backend
from seg_perception.backends.calibration import DEFAULT_MAX_IMAGES, CalibrationBatches, calibration_batches
from seg_perception.backends.calibration import calibration_fingerprint as _calib_fingerprint
from seg_perception.backends.engine_cache import (
    EngineCache,
    EngineKey,
    GpuInfo,
    default_cache_dir,
    model_fingerprint,
    optimization_profile,
    resolve_input_shape,
)
from seg_perception.errors import BackendUnavailable, ConfigError, ModelError

LOG = logging.getLogger(__name__)

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
MIN_TENSORRT_MAJOR = 10
#: TensorRT 11.0 removed BuilderFlag.FP16/INT8 and the implicit-INT8 calibrators: precision
#: must come from the model (strongly typed networks, Q/DQ for INT8).
STRONGLY_TYPED_ONLY_MAJOR = 11

#: TensorRT DataType member name -> numpy dtype name.
TRT_DTYPE_NAMES: dict[str, str] = {
    "FLOAT": "float32",
    "HALF": "float16",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
}


# -- availability ------------------------------------------------------------------


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module (TensorRT >= 10), or BackendUnavailable saying what is missing."""
    try:
        import tensorrt as trt
    except (ImportError, OSError) as err:  # OSError: Python bindings present, libnvinfer missing
        raise BackendUnavailable(
            f"the TensorRT Python package cannot be imported ({err}); on Jetson it comes with JetPack "
            "(python3-libnvinfer), on x86 install TensorRT 10 from NVIDIA"
        ) from err
    version = str(getattr(trt, "__version__", "0"))
    major = tensorrt_major(trt)
    if major < MIN_TENSORRT_MAJOR:
        raise BackendUnavailable(
            f"TensorRT {version} found; this backend needs TensorRT >= {MIN_TENSORRT_MAJOR} (named-tensor API)"
        )
    return trt


def tensorrt_major(trt: ModuleType) -> int:
    """Major version of a ``tensorrt`` module (0 when unreadable)."""
    try:
        return int(str(getattr(trt, "__version__", "0")).split(".")[0])
    except ValueError:
        return 0


def strongly_typed_flag(trt: ModuleType) -> Any | None:
    """``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` where this TensorRT has it (10.x from 10.0, 11)."""
    flags = getattr(trt, "NetworkDefinitionCreationFlag", None)
    return getattr(flags, "STRONGLY_TYPED", None) if flags is not None else None


def cuda_gpu(device: str | int = "cuda") -> GpuInfo:
    """The CUDA device as torch sees it, or BackendUnavailable when torch or CUDA is missing."""
    try:
        import torch
    except ImportError as err:
        raise BackendUnavailable(
            "the TensorRT backend uses PyTorch (torch.cuda) for GPU buffers and streams; torch is not installed"
        ) from err
    if not torch.cuda.is_available():
        raise BackendUnavailable(
            f"no CUDA device visible to PyTorch (torch {torch.__version__}, CUDA build {torch.version.cuda}); "
            "the TensorRT backend needs a CUDA-enabled torch (on Jetson: NVIDIA's JetPack torch wheel)"
        )
    index = parse_cuda_index(device)
    if index >= torch.cuda.device_count():
        raise BackendUnavailable(f"CUDA device {index} requested, {torch.cuda.device_count()} present")
    major, minor = torch.cuda.get_device_capability(index)
    return GpuInfo(torch.cuda.get_device_name(index), (int(major), int(minor)), index)


def parse_cuda_index(device: str | int) -> int:
    """CUDA ordinal of "cuda", "cuda:1", "gpu" or 1; ConfigError for "cpu" or garbage."""
    if isinstance(device, int):
        return device
    d = str(device).strip().lower()
    if d in ("cuda", "gpu", "auto", ""):
        return 0
    if d.startswith("cuda:") and d[5:].isdigit():
        return int(d[5:])
    raise ConfigError(
        f"the TensorRT backend runs on a CUDA device; device {device!r} is not one (use 'cuda' or 'cuda:N')"
    )


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    """numpy dtype of a ``tensorrt.DataType`` (by member name, so fakes in tests work too)."""
    name = getattr(trt_dtype, "name", str(trt_dtype).split(".")[-1])
    if name not in TRT_DTYPE_NAMES:
        raise ModelError(f"engine tensor type {name} is not supported by this backend")
    return np.dtype(TRT_DTYPE_NAMES[name])


# -- logging -------------------------------------------------------------------------


_LOGGERS: dict[int, Any] = {}
_LOGGER_LOCK = threading.Lock()


def make_logger(trt: ModuleType) -> Any:
    """The process's one ``trt.ILogger`` (TensorRT keeps one per process and warns on a second)."""
    with _LOGGER_LOCK:
        logger = _LOGGERS.get(id(trt))
        if logger is None:
            logger = _LOGGERS[id(trt)] = _new_logger(trt)
        return logger


def _new_logger(trt: ModuleType) -> Any:
    """A ``trt.ILogger`` forwarding TensorRT's messages to Python logging."""

    class _Logger(trt.ILogger):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            name = getattr(severity, "name", str(severity))
            if name in ("INTERNAL_ERROR", "ERROR"):
                LOG.error("TensorRT: %s", msg)
            elif name == "WARNING":
                LOG.warning("TensorRT: %s", msg)
            elif name == "INFO":
                LOG.debug("TensorRT: %s", msg)

    return _Logger()


# -- engine I/O description ------------------------------------------------------------


@dataclass(frozen=True)
class IOTensor:
    """One engine input or output: name, shape (-1 = dynamic) and numpy dtype."""

    name: str
    is_input: bool
    shape: tuple[int, ...]
    dtype: np.dtype

    def describe(self) -> str:
        kind = "input " if self.is_input else "output"
        return f"{kind} {self.name:<16} {self.dtype.name:<8} {'x'.join(str(d) for d in self.shape)}"


def describe_io(trt: ModuleType, engine: Any) -> list[IOTensor]:
    """The engine's I/O tensors in engine order (TensorRT 10 named-tensor API)."""
    out = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        out.append(IOTensor(name, is_input, shape, numpy_dtype(engine.get_tensor_dtype(name))))
    return out


def onnx_input(onnx_path: Path) -> tuple[str, tuple[int | None, ...]]:
    """Name and shape (None = dynamic) of the ONNX model's only input, read with the onnx package."""
    try:
        import onnx
    except ImportError as err:  # Jetson images may lack it: the caller falls back to TensorRT's parser
        raise BackendUnavailable(f"onnx is not installed: {err}") from err
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as err:
        raise ModelError(f"{onnx_path} is not a readable ONNX model: {err}") from err
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(f"{onnx_path.name} has {len(inputs)} inputs; the pipeline feeds exactly one image tensor")
    dims = inputs[0].type.tensor_type.shape.dim
    return inputs[0].name, tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)


def _parse_onnx(trt: ModuleType, logger: Any, onnx_path: Path, strongly_typed: bool = False) -> tuple[Any, Any, Any]:
    builder = trt.Builder(logger)
    flags = 0  # TensorRT 10/11: always explicit batch, EXPLICIT_BATCH is ignored
    if strongly_typed:
        flag = strongly_typed_flag(trt)
        if flag is None:
            raise BackendUnavailable(
                f"TensorRT {trt.__version__} has no strongly-typed networks; a Q/DQ or fp16 model needs TensorRT >= 10"
            )
        flags = 1 << int(flag)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)) or "unknown error"
        raise BackendUnavailable(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    if network.num_inputs != 1:
        raise ModelError(f"{onnx_path.name} has {network.num_inputs} inputs; the pipeline feeds exactly one")
    return builder, network, parser


def onnx_input_via_tensorrt(trt: ModuleType, logger: Any, onnx_path: Path) -> tuple[str, tuple[int | None, ...]]:
    """Name and shape of the model input from TensorRT's ONNX parser (used when onnx is absent)."""
    _, network, _ = _parse_onnx(trt, logger, onnx_path)
    inp = network.get_input(0)
    return inp.name, tuple(int(d) if int(d) > 0 else None for d in inp.shape)


# -- building ------------------------------------------------------------------------


@dataclass
class BuildRequest:
    """What to build: one ONNX model at one precision and input shape.

    Attributes:
        onnx_path: the model.
        input_name: its input tensor name.
        input_shape: NCHW shape of the optimization profile.
        precision: "fp32", "fp16" or "int8".
        workspace_bytes: builder workspace limit, 0 = TensorRT's default (device memory).
        calibration: INT8 calibration batches (int8 only).
        calibration_cache: file for the INT8 calibration cache (read before, written after calibrating).
    """

    onnx_path: Path
    input_name: str
    input_shape: tuple[int, int, int, int]
    precision: str
    workspace_bytes: int = 0
    calibration: CalibrationBatches | None = None
    calibration_cache: Path | None = None
    cache: EngineCache | None = None


def make_entropy_calibrator(trt: ModuleType, request: BuildRequest, gpu: GpuInfo) -> Any:
    """An ``IInt8EntropyCalibrator2`` feeding ``request.calibration`` through one device buffer."""
    import torch

    batches, cache, cache_path = request.calibration, request.cache, request.calibration_cache
    if batches is None:
        raise ConfigError("precision int8 needs calibration images (calibration_dir / --calib)")
    device = torch.device("cuda", gpu.index)

    class _EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.used_cache = False
            self.buffer = torch.empty(batches.batch_shape, dtype=torch.float32, device=device)
            batches.reset()

        def get_batch_size(self) -> int:
            return batches.batch_shape[0]

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = batches.next_batch()
            if batch is None:
                LOG.info("INT8 calibration: %d batches used", batches.batches_served)
                return None
            self.buffer.copy_(torch.from_numpy(batch))
            torch.cuda.synchronize(device)  # TensorRT reads the pointer on its own stream
            if batches.batches_served % 25 == 0:
                LOG.info("INT8 calibration: batch %d/%d", batches.batches_served, len(batches))
            return [int(self.buffer.data_ptr())] * len(names)

        def read_calibration_cache(self) -> bytes | None:
            if cache is None or cache_path is None:
                return None
            data = cache.read_blob(cache_path)
            if data:
                LOG.info("INT8 calibration: using cached scales %s", cache_path)
                self.used_cache = True
            return data or None

        def write_calibration_cache(self, data: Any) -> None:
            if cache is not None and cache_path is not None:
                cache.write_blob(cache_path, bytes(data))

    return _EntropyCalibrator()


def build_serialized_engine(
    trt: ModuleType, logger: Any, request: BuildRequest, gpu: GpuInfo, timing_cache: bytes = b""
) -> tuple[bytes, bytes]:
    """Build an engine from ONNX; returns (serialized engine, serialized timing cache).

    FP16 sets BuilderFlag.FP16; INT8 sets INT8 (+ FP16 for the layers left in float) and
    an entropy calibrator. The timing cache from earlier builds on this GPU is loaded
    (a corrupt one is ignored with a warning) and the updated one returned.
    """
    # Precision carried by the model (Q/DQ int8, fp16 weights): strongly typed, no precision flags.
    # That is the only way on TensorRT 11 and the recommended one on 10.x.
    typed = request.precision == "int8" and tensorrt_major(trt) >= STRONGLY_TYPED_ONLY_MAJOR
    if request.precision == "fp16" and tensorrt_major(trt) >= STRONGLY_TYPED_ONLY_MAJOR:
        raise BackendUnavailable(
            f"TensorRT {trt.__version__} has no FP16 builder flag (removed in 11.0) and needs an fp16 ONNX model, "
            "which this project does not make yet; use precision fp32 or int8 (Q/DQ) on TensorRT 11"
        )
    # TensorRT 10.x keeps the (deprecated) FP16 flag and implicit INT8 calibrators.
    builder, network, _parser = _parse_onnx(trt, logger, request.onnx_path, strongly_typed=typed)
    config = builder.create_builder_config()
    if request.workspace_bytes:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(request.workspace_bytes))
    inp = network.get_input(0)
    dynamic = any(int(d) < 0 for d in inp.shape)
    profile = None
    if dynamic:
        profile = builder.create_optimization_profile()
        mn, opt, mx = optimization_profile(request.input_shape)
        profile.set_shape(inp.name, mn, opt, mx)
        config.add_optimization_profile(profile)
    calibrator = None
    if request.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif request.precision == "int8" and not typed:  # implicit INT8, TensorRT 10.x only
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)
        calibrator = make_entropy_calibrator(trt, request, gpu)
        config.int8_calibrator = calibrator
        if profile is not None:
            config.set_calibration_profile(profile)
    cache_obj = None
    if timing_cache:
        try:
            cache_obj = config.create_timing_cache(timing_cache)
            problem = "" if cache_obj is not None else "rejected by TensorRT"
        except Exception as err:  # noqa: BLE001 - TensorRT raises varied errors for a bad blob
            problem = str(err)
        if cache_obj is None:
            LOG.warning("ignoring an unreadable TensorRT timing cache (%s); starting a new one", problem)
    if cache_obj is None:
        cache_obj = config.create_timing_cache(b"")
    if cache_obj is not None and config.set_timing_cache(cache_obj, False) is False:
        LOG.warning("TensorRT rejected the timing cache (another TensorRT or GPU?); starting a new one")
        fresh = config.create_timing_cache(b"")
        if fresh is not None:
            config.set_timing_cache(fresh, True)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None and calibrator is not None and getattr(calibrator, "used_cache", False):
        # Scales cached by an earlier calibration no longer fit (e.g. the file was damaged):
        # drop them and calibrate from the images once more.
        LOG.warning(
            "INT8 build failed with cached calibration scales; discarding %s and recalibrating",
            request.calibration_cache,
        )
        if request.calibration_cache is not None:
            request.calibration_cache.unlink(missing_ok=True)
        return build_serialized_engine(trt, logger, request, gpu, timing_cache)
    if serialized is None:
        raise BackendUnavailable(
            f"TensorRT failed to build an engine for {request.onnx_path.name} "
            f"({request.precision}, input {list(request.input_shape)}); see the TensorRT errors logged above"
        )
    new_timing = b""
    tc = config.get_timing_cache()
    if tc is not None:
        new_timing = bytes(memoryview(tc.serialize()))
    del calibrator  # kept alive until the build finished: TensorRT holds only a raw pointer
    return bytes(memoryview(serialized)), new_timing


def deserialize(runtime: Any, data: bytes) -> Any | None:
    """``runtime.deserialize_cuda_engine`` that returns None instead of raising."""
    try:
        return runtime.deserialize_cuda_engine(data)
    except Exception as err:  # noqa: BLE001 - version/device mismatch surfaces as various errors
        LOG.warning("TensorRT could not deserialize the engine: %s", err)
        return None


@dataclass
class EngineSource:
    """Where the running engine came from."""

    engine: Any
    path: Path
    built: bool
    build_seconds: float = 0.0
    reason: str = ""
    key: EngineKey | None = None


BuildFn = Callable[[ModuleType, Any, BuildRequest, GpuInfo, bytes], tuple[bytes, bytes]]


def obtain_engine(
    trt: ModuleType,
    logger: Any,
    runtime: Any,
    request: BuildRequest,
    key: EngineKey,
    cache: EngineCache,
    gpu: GpuInfo,
    model_name: str,
    rebuild: bool = False,
    build_fn: BuildFn = build_serialized_engine,
) -> EngineSource:
    """The deserialized engine for ``key``: from the cache, or built, cached and loaded.

    A cache entry that fails validation or that TensorRT cannot deserialize (another
    TensorRT build, a driver change) is discarded with a warning and rebuilt; only a
    failure of the fresh build raises.
    """
    if not rebuild:
        lookup = cache.load(key, model_name)
        if lookup.hit:
            engine = deserialize(runtime, lookup.data or b"")
            if engine is not None:
                LOG.info("TensorRT engine from cache: %s", lookup.path)
                return EngineSource(engine, lookup.path, built=False, reason="cache hit", key=key)
            LOG.warning("cached engine %s is incompatible or corrupt; rebuilding it", lookup.path)
            cache.discard(key, model_name)
            reason = "cached engine could not be deserialized"
        else:
            reason = lookup.reason
    else:
        reason = "rebuild requested"
    LOG.info(
        "building TensorRT engine for %s (%s, input %s) because: %s. This takes minutes on Jetson; "
        "run `seg-perception build-engine` ahead of time to avoid it at startup",
        request.onnx_path.name,
        request.precision,
        "x".join(map(str, request.input_shape)),
        reason,
    )
    timing_path = cache.timing_cache_path(key.tensorrt_version, gpu)
    t0 = time.perf_counter()
    data, timing = build_fn(trt, logger, request, gpu, cache.read_blob(timing_path))
    seconds = time.perf_counter() - t0
    if timing:
        cache.write_blob(timing_path, timing)
    stored = cache.store(
        key,
        model_name,
        data,
        extra={"onnx_path": str(request.onnx_path), "build_seconds": round(seconds, 2)},
    )
    engine = deserialize(runtime, data)
    if engine is None:
        raise BackendUnavailable(f"TensorRT could not load the engine it just built for {request.onnx_path.name}")
    LOG.info("TensorRT engine built in %.1f s%s", seconds, f", cached at {stored}" if stored else "")
    return EngineSource(engine, stored or cache.engine_path(key, model_name), True, seconds, reason, key)


# -- the backend -----------------------------------------------------------------------


def _torch_dtype(torch: ModuleType, dtype: np.dtype) -> Any:
    return {
        "float32": torch.float32,
        "float16": torch.float16,
        "int8": torch.int8,
        "uint8": torch.uint8,
        "int32": torch.int32,
        "int64": torch.int64,
        "bool": torch.bool,
    }[dtype.name]


@dataclass
class _Pinned:
    """Pinned host buffers reused per output size."""

    buffers: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def get(self, torch: ModuleType, tag: str, shape: tuple[int, ...], dtype: Any) -> Any:
        key = (tag, shape, dtype)
        buf = self.buffers.get(key)
        if buf is None:
            if len(self.buffers) >= 8:  # image sizes changing all the time: don't hoard pinned RAM
                self.buffers.clear()
            buf = torch.empty(shape, dtype=dtype, pin_memory=True)
            self.buffers[key] = buf
        return buf


class TensorRTBackend(Backend):
    """A TensorRT engine on one GPU.

    Args:
        model_path: ONNX model (built into an engine and cached) or a prebuilt
            ``.engine``/``.plan`` (metadata YAML beside it, like any model).
        precision: "fp32", "fp16" or "int8" (ONNX only; a prebuilt engine has its own).
        device: "cuda" or "cuda:N".
        engine_cache_dir: folder for cached engines; empty/None = ``default_cache_dir()``.
        calibration_dir: folder of sample images for INT8 calibration (``calib_dir`` is
            accepted as an alias).
        calib_max_images: at most this many calibration images (evenly thinned).
        input_size: (H, W) for models with a dynamic input size (else the metadata's).
        workspace_mb: builder workspace limit in MiB (0 = TensorRT's default).
        rebuild: ignore a cached engine and build anew.
    """

    name = "tensorrt"

    def __init__(
        self,
        model_path: str | Path,
        precision: str = "fp32",
        device: str = "cuda",
        engine_cache_dir: str | Path | None = None,
        calibration_dir: str | Path | None = None,
        calib_max_images: int = DEFAULT_MAX_IMAGES,
        input_size: tuple[int, int] | list[int] | None = None,
        workspace_mb: int = 0,
        rebuild: bool = False,
        calib_dir: str | Path | None = None,
        **_: Any,
    ) -> None:
        calibration_dir = calibration_dir or calib_dir
        trt = import_tensorrt()
        gpu = cuda_gpu(device)
        import torch

        self._trt, self._torch, self._gpu = trt, torch, gpu
        self._closed = False
        self._lock = threading.Lock()
        self._logger = make_logger(trt)
        # Builder, runtime and context on the device the buffers use (multi-GPU hosts).
        self._device_ctx = torch.cuda.device(gpu.index)
        with self._device_ctx:
            self._init(
                trt,
                gpu,
                model_path,
                precision,
                engine_cache_dir,
                calibration_dir,
                calib_max_images,
                input_size,
                workspace_mb,
                rebuild,
            )

    def _init(
        self,
        trt: ModuleType,
        gpu: GpuInfo,
        model_path: str | Path,
        precision: str,
        engine_cache_dir: str | Path | None,
        calibration_dir: str | Path | None,
        calib_max_images: int,
        input_size: Any,
        workspace_mb: int,
        rebuild: bool,
    ) -> None:
        self._runtime = trt.Runtime(self._logger)
        model_path = Path(model_path)
        input_size = tuple(input_size) if input_size else None  # type: ignore[assignment]
        if model_path.suffix.lower() in ENGINE_SUFFIXES:
            try:
                data = model_path.read_bytes()
            except OSError as err:
                raise ModelError(f"cannot read engine {model_path}: {err.strerror or err}") from err
            engine = deserialize(self._runtime, data)
            if engine is None:
                raise ModelError(
                    f"TensorRT {trt.__version__} cannot load {model_path.name} on {gpu.name} ({gpu.sm}): engines only "
                    "run on the TensorRT version and GPU they were built for; rebuild it with `seg-perception "
                    "build-engine` on this machine"
                )
            self.source = EngineSource(engine, model_path, built=False, reason="prebuilt engine file")
            self._precision = "as built"
        else:
            self.source = self._engine_from_onnx(
                model_path,
                precision,
                engine_cache_dir,
                calibration_dir,
                calib_max_images,
                input_size,
                workspace_mb,
                rebuild,
            )
            self._precision = precision
        self._setup(self.source.engine, input_size)

    # -- construction ----------------------------------------------------------
    def _engine_from_onnx(
        self,
        onnx_path: Path,
        precision: str,
        engine_cache_dir: str | Path | None,
        calib_dir: str | Path | None,
        calib_max_images: int,
        input_size: tuple[int, int] | None,
        workspace_mb: int,
        rebuild: bool,
    ) -> EngineSource:
        trt, gpu = self._trt, self._gpu
        spec = model_spec_or_none(onnx_path)
        try:
            input_name, model_shape = onnx_input(onnx_path)
        except BackendUnavailable:
            input_name, model_shape = onnx_input_via_tensorrt(trt, self._logger, onnx_path)
        shape = resolve_input_shape(
            model_shape,
            input_size,
            spec.input_size if spec is not None else None,
            spec.size_divisor if spec is not None else 1,
        )
        cache = EngineCache(Path(engine_cache_dir) if engine_cache_dir else default_cache_dir())
        model_sha = model_fingerprint(onnx_path)
        batches = None
        calib_fp = ""
        calib_cache = None
        if precision == "int8" and tensorrt_major(trt) >= STRONGLY_TYPED_ONLY_MAJOR:
            # No implicit INT8 on TensorRT 11: build the Q/DQ model strongly typed.
            from seg_perception.backends.precision import int8_model_for

            onnx_path = int8_model_for(onnx_path, calib_dir)
            model_sha = model_fingerprint(onnx_path)
        elif precision == "int8":
            if not calib_dir:
                raise ConfigError(
                    "precision int8 needs a folder of sample images for calibration "
                    "(parameter calibration_dir / --calib)"
                )
            if spec is None:
                raise ModelError(
                    "INT8 calibration pre-processes images with the model's metadata; "
                    f"{onnx_path.with_suffix('.yaml')} is missing"
                )
            batches = calibration_batches(calib_dir, spec, shape, calib_max_images)
            calib_fp = _calib_fingerprint(batches.paths, spec, shape)
            calib_cache = cache.calibration_cache_path(model_sha, shape, calib_fp, onnx_path.stem)
        key = EngineKey(
            model_sha256=model_sha,
            tensorrt_version=str(trt.__version__),
            gpu_name=gpu.name,
            compute_capability=gpu.compute_capability,
            precision=precision,
            input_shape=shape,
            calibration=calib_fp,
            workspace_bytes=int(workspace_mb) << 20,
        )
        request = BuildRequest(
            onnx_path, input_name, shape, precision, int(workspace_mb) << 20, batches, calib_cache, cache
        )
        return obtain_engine(trt, self._logger, self._runtime, request, key, cache, gpu, onnx_path.stem, rebuild)

    def _setup(self, engine: Any, input_size: tuple[int, int] | None) -> None:
        trt, torch = self._trt, self._torch
        self._engine = engine
        self.io = describe_io(trt, engine)
        inputs = [t for t in self.io if t.is_input]
        outputs = [t for t in self.io if not t.is_input]
        if len(inputs) != 1 or not outputs:
            raise ModelError(f"engine has {len(inputs)} inputs and {len(outputs)} outputs; need 1 input, >= 1 output")
        inp = inputs[0]
        self._context = engine.create_execution_context()
        if self._context is None:
            raise BackendUnavailable("TensorRT could not create an execution context (out of GPU memory?)")
        shape = inp.shape
        if any(d < 0 for d in shape):  # a prebuilt engine with a dynamic profile
            mn, opt, mx = (tuple(int(v) for v in s) for s in engine.get_tensor_profile_shape(inp.name, 0))
            shape = opt
            if input_size is not None:
                shape = (opt[0], opt[1], int(input_size[0]), int(input_size[1]))
                if any(s < a or s > b for s, a, b in zip(shape, mn, mx, strict=True)):
                    raise ConfigError(f"input_size {list(input_size)} is outside the engine's profile {mn}..{mx}")
        if self._context.set_input_shape(inp.name, shape) is False:
            raise ConfigError(
                f"input shape {list(shape)} is outside what engine input {inp.name} accepts; "
                "rebuild the engine for this size (input_size / --input-size)"
            )
        self._device = torch.device("cuda", self._gpu.index)
        self._stream = torch.cuda.Stream(device=self._device)
        self._dbuf: dict[str, Any] = {}
        with torch.cuda.stream(self._stream):  # zeroed on the stream the warm-up runs on
            for t in self.io:
                tshape = tuple(int(d) for d in self._context.get_tensor_shape(t.name))
                if any(d < 0 for d in tshape):
                    raise ModelError(f"engine output {t.name} has a data-dependent shape {tshape}; not supported")
                # zeros: the warm-up run below reads the input before any frame was copied in
                buf = torch.zeros(tshape, dtype=_torch_dtype(torch, t.dtype), device=self._device)
                self._context.set_tensor_address(t.name, buf.data_ptr())
                self._dbuf[t.name] = buf
        self._in, self._out = inp, outputs[0]
        self._in_shape = tuple(self._dbuf[inp.name].shape)
        out_shape = tuple(self._dbuf[self._out.name].shape)
        self._input_spec = TensorSpec(inp.name, self._in_shape, np.dtype(np.float32))
        self._output_spec = TensorSpec(self._out.name, out_shape, self._out.dtype)
        self._pinned = _Pinned()
        self._h_in = torch.empty(self._in_shape, dtype=torch.float32, pin_memory=True)
        self._h_out = torch.empty(out_shape, dtype=_torch_dtype(torch, self._out.dtype), pin_memory=True)
        # One run now: the first execution initializes kernels; better at startup than on frame 1.
        with torch.cuda.stream(self._stream):
            self._execute()
        self._stream.synchronize()

    # -- Backend interface -----------------------------------------------------
    @property
    def input_spec(self) -> TensorSpec:
        return self._input_spec

    @property
    def output_spec(self) -> TensorSpec:
        return self._output_spec

    @property
    def precision(self) -> str:
        return self._precision

    @property
    def device(self) -> str:
        return f"cuda:{self._gpu.index} ({self._gpu.name}, {self._gpu.sm})"

    @property
    def description(self) -> str:
        origin = "built now" if self.source.built else self.source.reason
        return (
            f"tensorrt {self._trt.__version__} {self._precision} on {self.device}, "
            f"engine {self.source.path.name} ({origin})"
        )

    def _execute(self) -> None:
        if not self._context.execute_async_v3(self._stream.cuda_stream):
            raise ModelError("TensorRT execution failed (see the TensorRT errors logged above)")

    def _upload_and_run(self, tensor: np.ndarray) -> None:
        x = np.asarray(tensor, dtype=np.float32)
        if tuple(x.shape) != self._in_shape:
            raise ModelError(
                f"this engine was built for input {list(self._in_shape)}, got {list(x.shape)}; "
                "rebuild it for the new size (input_size / --input-size)"
            )
        if self._closed:
            raise ModelError("the TensorRT backend is closed")
        np.copyto(self._h_in.numpy(), x)
        self._dbuf[self._in.name].copy_(self._h_in, non_blocking=True)
        self._execute()

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.cuda.stream(self._stream):
            self._upload_and_run(tensor)
            self._h_out.copy_(self._dbuf[self._out.name], non_blocking=True)
            self._stream.synchronize()
            return self._h_out.numpy().copy()

    def infer_labels(
        self,
        tensor: np.ndarray,
        *,
        want_confidence: bool,
        content_hw: tuple[int, int],
        image_hw: tuple[int, int],
        num_classes: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Labels (and confidence) computed on the GPU; only these are copied to the host.

        Returns None (caller falls back to ``infer``) when the output is not logits.
        """
        torch = self._torch
        if self._closed:
            raise ModelError("the TensorRT backend is closed")
        out = self._dbuf[self._out.name]
        if not gpu_postprocess.is_logits_output(out):
            return None
        if num_classes is not None and out.shape[-3] != num_classes:
            raise ModelError(f"model produced {out.shape[-3]} classes; metadata lists {num_classes}")
        hw = (int(image_hw[0]), int(image_hw[1]))
        with self._lock, torch.cuda.stream(self._stream):
            self._upload_and_run(tensor)
            labels, conf = gpu_postprocess.logits_to_labels(out, self._in_shape[2:], content_hw, hw, want_confidence)
            h_lab = self._pinned.get(torch, "labels", hw, torch.uint8)
            h_lab.copy_(labels, non_blocking=True)
            h_conf = None
            if conf is not None:
                h_conf = self._pinned.get(torch, "confidence", hw, torch.uint8)
                h_conf.copy_(conf, non_blocking=True)
            self._stream.synchronize()
            return h_lab.numpy().copy(), (h_conf.numpy().copy() if h_conf is not None else None)

    def close(self) -> None:
        with self._lock:  # never free buffers under a running inference
            if self._closed:
                return
            self._closed = True
            stream = getattr(self, "_stream", None)
            if stream is not None:
                stream.synchronize()
            # Context before engine before runtime: TensorRT objects must die in that order.
            self._context = None
            self._dbuf = {}
            self._engine = None
            self.source.engine = None
            self._runtime = None


@register_backend("tensorrt")
def _make(model_path: Path, **options: Any) -> Backend:
    return TensorRTBackend(model_path, **options)
