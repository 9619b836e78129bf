"""TensorRT plumbing shared by engine building and running: availability, dtypes, logger, engine I/O.

``import tensorrt`` happens only inside functions, so this imports on any machine.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from seg_perception.backends.engine_cache import GpuInfo
from seg_perception.errors import BackendUnavailable, ConfigError, ModelError

LOG = logging.getLogger(__name__)

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


def deserialize(runtime: Any, data: bytes) -> Any | None:
    """``runtime.deserialize_cuda_engine`` that returns None instead of raising."""
    try:
        return runtime.deserialize_cuda_engine(data)
    except Exception as err:  # noqa: BLE001 - version/device mismatch surfaces as various errors
        LOG.warning("TensorRT could not deserialize the engine: %s", err)
        return None
