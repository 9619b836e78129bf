"""TensorRT backend: loads or builds an engine (``tensorrt_build``) and runs it on its own CUDA stream.

Device buffers, streams and pinned host copies come from ``torch.cuda``; ``infer_labels``
arg-maxes on the GPU so only class ids leave it. Details and what was verified where:
docs/backends.md. ``import tensorrt`` happens only inside functions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from seg_perception.backends import gpu_postprocess
from seg_perception.backends.base import Backend, LabelRequest, TensorSpec, register_backend
from seg_perception.backends.calibration import DEFAULT_MAX_IMAGES
from seg_perception.backends.engine_cache import GpuInfo
from seg_perception.backends.tensorrt_build import EngineOptions, EngineSource, engine_from_onnx
from seg_perception.backends.tensorrt_support import (
    cuda_gpu,
    describe_io,
    deserialize,
    import_tensorrt,
    make_logger,
)
from seg_perception.errors import BackendUnavailable, ConfigError, ModelError

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


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
        size: tuple[int, int] | None = tuple(input_size) if input_size else None  # type: ignore[assignment]
        options = EngineOptions(
            precision, engine_cache_dir, calibration_dir, calib_max_images, size, workspace_mb, rebuild
        )
        with self._device_ctx:
            self._init(trt, gpu, Path(model_path), options)

    def _init(self, trt: ModuleType, gpu: GpuInfo, model_path: Path, options: EngineOptions) -> None:
        self._runtime = trt.Runtime(self._logger)
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
            self.source = engine_from_onnx(trt, self._logger, self._runtime, gpu, model_path, options)
            # The precision built at (a converted ONNX builds as stored, whatever was asked).
            self._precision = self.source.key.precision if self.source.key else options.precision
        self._setup(self.source.engine, options.input_size)

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

    def _labels_on_device(
        self, tensor: np.ndarray, request: LabelRequest
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Labels (and confidence) computed on the GPU; only these are copied to the host.

        Returns None (caller falls back to ``infer``) when the output is not logits.
        """
        torch = self._torch
        if self._closed:
            raise ModelError("the TensorRT backend is closed")
        out = self._dbuf[self._out.name]
        if not gpu_postprocess.accepts_logits(out, request.num_classes):
            return None
        hw = request.image_hw
        with self._lock, torch.cuda.stream(self._stream):
            self._upload_and_run(tensor)
            labels, conf = gpu_postprocess.logits_to_labels(
                out, self._in_shape[2:], request.content_hw, hw, request.want_confidence
            )
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
