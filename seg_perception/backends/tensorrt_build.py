"""Building TensorRT engines from ONNX: parsing, precision flags, INT8 calibration, the engine cache.

Written against the TensorRT 10/11 Python API; the control flow is tested with a fake
``tensorrt`` module, the real calls only in test/test_tensorrt_gpu.py (docs/backends.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from seg_perception.backends.base import model_spec_or_none
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
from seg_perception.backends.tensorrt_support import (
    STRONGLY_TYPED_ONLY_MAJOR,
    deserialize,
    strongly_typed_flag,
    tensorrt_major,
)
from seg_perception.errors import BackendUnavailable, ConfigError, ModelError

LOG = logging.getLogger(__name__)


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
        carried: the ONNX carries its precision (a Q/DQ or fp16 model): parsed strongly typed, no flags.
    """

    onnx_path: Path
    input_name: str
    input_shape: tuple[int, int, int, int]
    precision: str
    workspace_bytes: int = 0
    calibration: CalibrationBatches | None = None
    calibration_cache: Path | None = None
    cache: EngineCache | None = None
    carried: bool = False


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

    On TensorRT 10.x, FP16 sets BuilderFlag.FP16 and INT8 sets INT8 (+ FP16 for the layers
    left in float) and an entropy calibrator. On TensorRT 11, and on 10.x for a model that
    carries its precision (``request.carried``: fp16 weights, or Q/DQ), the network is parsed
    strongly typed with no precision flags.
    The timing cache from earlier builds on this GPU is loaded (a corrupt one is ignored
    with a warning) and the updated one returned.
    """
    # Precision carried by the model (Q/DQ int8, fp16 weights): strongly typed, no precision flags.
    # That is the only way on TensorRT 11 (engine_from_onnx swaps in the Q/DQ or fp16 ONNX).
    typed = request.carried or (
        request.precision in ("int8", "fp16") and tensorrt_major(trt) >= STRONGLY_TYPED_ONLY_MAJOR
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
    if request.precision == "fp16" and not typed:  # TensorRT 10.x: the fp32 ONNX + FP16 flag
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


@dataclass(frozen=True)
class EngineOptions:
    """How ``TensorRTBackend`` gets its engine (its constructor's arguments of the same names)."""

    precision: str = "fp32"
    engine_cache_dir: str | Path | None = None
    calib_dir: str | Path | None = None
    calib_max_images: int = DEFAULT_MAX_IMAGES
    input_size: tuple[int, int] | None = None
    workspace_mb: int = 0
    rebuild: bool = False


def _as_carried(onnx_path: Path, carried: str, asked: str) -> str:
    """The precision to build a converted model at: its own; a Q/DQ model TensorRT refuses is a ModelError."""
    if carried == "int8":
        from seg_perception.backends.quant_recipe import tensorrt_qdq_problems

        if problems := tensorrt_qdq_problems(onnx_path):
            raise ModelError(
                f"{onnx_path.name} is a Q/DQ model TensorRT's parser refuses ({'; '.join(problems)}); give the fp32 "
                "model with precision int8, or make the TensorRT flavour with `seg-perception quantize --target "
                "tensorrt` (NAME_int8_trt.onnx)"
            )
    if asked != carried:
        LOG.info("%s carries %s precision: building it as stored (asked for %s)", onnx_path.name, carried, asked)
    return carried


def engine_from_onnx(
    trt: ModuleType, logger: Any, runtime: Any, gpu: GpuInfo, onnx_path: Path, options: EngineOptions
) -> EngineSource:
    """The engine for an ONNX model at ``options.precision``: from the cache, or built (INT8 calibrated or Q/DQ)."""
    precision, calib_dir, input_size = options.precision, options.calib_dir, options.input_size
    workspace_mb, engine_cache_dir = options.workspace_mb, options.engine_cache_dir
    spec = model_spec_or_none(onnx_path)
    try:
        input_name, model_shape = onnx_input(onnx_path)
    except BackendUnavailable:
        input_name, model_shape = onnx_input_via_tensorrt(trt, logger, onnx_path)
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
    from seg_perception.backends.precision import stored_precision

    carried = stored_precision(onnx_path)
    if carried is not None:
        # A converted model (its card says int8 or fp16) is built as stored, strongly typed.
        precision = _as_carried(onnx_path, carried, precision)
    elif precision == "int8" and tensorrt_major(trt) >= STRONGLY_TYPED_ONLY_MAJOR:
        # No implicit INT8 on TensorRT 11: build the Q/DQ model strongly typed. Its own flavour:
        # the parser takes symmetric int8 only (zero points 0, float biases), not ORT's uint8 one.
        from seg_perception.backends.precision import int8_model_for

        onnx_path = int8_model_for(onnx_path, calib_dir, target="tensorrt")
        model_sha = model_fingerprint(onnx_path)
    elif precision == "fp16" and tensorrt_major(trt) >= STRONGLY_TYPED_ONLY_MAJOR:
        # No FP16 builder flag on TensorRT 11: build the fp16 ONNX (fp32 I/O) strongly typed.
        from seg_perception.backends.precision_fp16 import fp16_model_for

        onnx_path = fp16_model_for(onnx_path)
        model_sha = model_fingerprint(onnx_path)
    elif precision == "int8":
        if not calib_dir:
            raise ConfigError(
                "precision int8 needs a folder of sample images for calibration (parameter calibration_dir / --calib)"
            )
        if spec is None:
            raise ModelError(
                "INT8 calibration pre-processes images with the model's metadata; "
                f"{onnx_path.with_suffix('.yaml')} is missing"
            )
        batches = calibration_batches(calib_dir, spec, shape, options.calib_max_images)
        calib_fp = _calib_fingerprint(batches.paths, spec, shape)
        calib_cache = cache.calibration_cache_path(model_sha, shape, calib_fp, onnx_path.stem)
    workspace = int(workspace_mb) << 20
    key = EngineKey(
        model_sha256=model_sha,
        tensorrt_version=str(trt.__version__),
        gpu_name=gpu.name,
        compute_capability=gpu.compute_capability,
        precision=precision,
        input_shape=shape,
        calibration=calib_fp,
        workspace_bytes=workspace,
    )
    request = BuildRequest(
        onnx_path, input_name, shape, precision, workspace, batches, calib_cache, cache, carried=carried is not None
    )
    return obtain_engine(trt, logger, runtime, request, key, cache, gpu, onnx_path.stem, options.rebuild)
