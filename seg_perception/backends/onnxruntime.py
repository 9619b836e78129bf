"""ONNX Runtime backend (CPU, or CUDA when onnxruntime-gpu is installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.backends.base import Backend, TensorSpec, model_spec_or_none, register_backend
from seg_perception.backends.engine_cache import resolve_input_shape
from seg_perception.errors import BackendUnavailable, ConfigError, ModelError

_ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(uint8)": np.dtype(np.uint8),
}


def _dims(shape: list) -> tuple[int | None, ...]:
    # ONNX Runtime reports symbolic dims as strings and unknown ones as None.
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


class OnnxRuntimeBackend(Backend):
    """An ``onnxruntime.InferenceSession`` over one ONNX file.

    Args:
        model_path: ONNX file.
        device: "cpu" or "cuda" (CUDAExecutionProvider, needs onnxruntime-gpu).
        num_threads: intra-op threads on CPU (0 = onnxruntime's default).
        precision: "fp32" runs the model as stored (a converted file, e.g. NAME_int8.onnx with
            its card, then reports the card's precision); "int8" runs its Q/DQ copy (see
            backends.precision.int8_model_for); "fp16" is refused (ConfigError).
        calibration_dir: images to generate the Q/DQ copy from when none exists (int8 only).
        input_size: (H, W) the pipeline will feed a dynamic-size model (else the metadata's
            ``input_size`` rounded up to ``size_divisor``); the session is pinned to that one
            shape and reports a static input (why: docs/backends.md). Unknown size: dynamic.
        thread_spinning: let idle intra-op threads spin-wait (ONNX Runtime's default, lowest
            latency); False makes them sleep, for far less CPU per frame (the node's default).
    """

    name = "onnxruntime"

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        num_threads: int = 0,
        precision: str = "fp32",
        input_size: tuple[int, int] | list[int] | None = None,
        calibration_dir: str | Path | None = None,
        thread_spinning: bool = True,
        **_: Any,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise BackendUnavailable(f"onnxruntime is not installed: {err}") from err
        if precision == "fp16":
            # Refused, not mapped: ORT's CPU provider has no fp16 kernels for most ops and runs them
            # through casts, slower than fp32; "auto" lowers fp16 to fp32 itself and says so.
            raise ConfigError(
                "precision 'fp16' is not run on onnxruntime (CPU has no fast fp16 kernels); use fp32 or int8 here, "
                "fp16 on tensorrt"
            )
        self.model_path = Path(model_path)
        if precision == "int8":
            # INT8 is a model transformation: run the Q/DQ copy (a verified sibling NAME_int8.onnx,
            # or one generated into the precision cache from calibration_dir).
            from seg_perception.backends.precision import int8_model_for

            model_path = self.model_path = int8_model_for(model_path, calibration_dir or _.get("calib_dir"))
        if precision == "fp32":
            # A converted file run as stored (e.g. --model camvid_int8.onnx) runs at its card's precision.
            from seg_perception.backends.precision import stored_precision

            precision = stored_precision(self.model_path) or precision
        self._precision = precision
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailable(
                    "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu and a CUDA runtime)"
                )
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = int(num_threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if not thread_spinning:
            # Idle pool threads sleep instead of spin-waiting for the next operator: in the live
            # node this cut CPU per frame from 54 to 33 ms at 640x480 (docs/backends.md).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if providers[0] == "CPUExecutionProvider":
            # No pre-planned block for all intermediate tensors: the arena reuses freed chunks
            # instead. Same speed here, ~23 MiB less RSS for the default model (docs/backends.md).
            opts.enable_mem_pattern = False
        self._session = self._open(ort, model_path, opts, providers)
        # The free dimensions' names are read from a loaded session; pinning them needs a second one.
        pinned = self._pin_free_dims(opts, model_path, input_size)
        if pinned:
            self._session = self._open(ort, model_path, opts, providers)
        self._device = "cuda" if providers[0].startswith("CUDA") else "cpu"
        inp, out = self._session.get_inputs()[0], self._session.get_outputs()[0]
        self._input_spec = TensorSpec(inp.name, _dims(inp.shape), _ORT_DTYPES.get(inp.type, np.dtype(np.float32)))
        self._output_spec = TensorSpec(out.name, _dims(out.shape), _ORT_DTYPES.get(out.type, np.dtype(np.float32)))
        if len(self._input_spec.shape) != 4:
            raise ModelError(f"model input {inp.name} must be NCHW (4-D), got shape {inp.shape}")

    @staticmethod
    def _open(ort: Any, model_path: str | Path, opts: Any, providers: list[str]) -> Any:
        try:
            return ort.InferenceSession(str(model_path), sess_options=opts, providers=providers)
        except Exception as err:
            raise ModelError(f"cannot load ONNX model {model_path}: {err}") from err

    def _pin_free_dims(self, opts: Any, model_path: str | Path, input_size: tuple[int, int] | list[int] | None) -> bool:
        """Fix the input's symbolic N/H/W to the shape the pipeline feeds; True if any was fixed."""
        shape = self._session.get_inputs()[0].shape
        symbolic = [(i, d) for i, d in enumerate(shape) if isinstance(d, str) and d]
        if len(shape) != 4 or not symbolic:
            return False
        spec = model_spec_or_none(Path(model_path))
        divisor = spec.size_divisor if spec is not None else 1
        try:
            target = resolve_input_shape(
                _dims(shape), input_size, spec.input_size if spec is not None else None, divisor
            )
        except ConfigError:
            return False  # no size known (or one the model contradicts): left to the Segmenter, as before
        if target[2] % divisor or target[3] % divisor:
            return False  # the Segmenter pads such a size up to the divisor: keep it dynamic
        for i, name in symbolic:
            opts.add_free_dimension_override_by_name(name, int(target[i]))
        return True

    @property
    def device(self) -> str:
        return self._device

    @property
    def description(self) -> str:
        return f"onnxruntime {self.precision} on {self._device} ({self.model_path.name})"

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        feed = {self._input_spec.name: np.ascontiguousarray(tensor, dtype=self._input_spec.dtype)}
        return self._session.run([self._output_spec.name], feed)[0]

    def close(self) -> None:
        self._session = None  # type: ignore[assignment]


@register_backend("onnxruntime")
def _make(model_path: Path, **options: Any) -> Backend:
    return OnnxRuntimeBackend(model_path, **options)
