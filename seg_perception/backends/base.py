"""The inference backend interface and its registry: ``create_backend("onnxruntime", path)``.

The registry never imports its plugins statically: :data:`BUILTIN_BACKENDS` names their
modules, loaded on first use; importing one registers its factory (docs/backends.md).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from seg_perception.errors import BackendUnavailable, ConfigError, ModelError

if TYPE_CHECKING:
    from seg_perception.model_spec import ModelSpec

#: Inference precisions a backend may be asked for (the node's ``precision`` parameter too).
PRECISIONS = ("fp32", "fp16", "int8")
#: Built-in backend name -> the module that registers it when imported.
BUILTIN_BACKENDS: dict[str, str] = {
    "onnxruntime": "seg_perception.backends.onnxruntime",
    "tensorrt": "seg_perception.backends.tensorrt",
    "torch": "seg_perception.backends.torch",
}


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one network input or output.

    ``shape`` holds ints for fixed dimensions and None for dynamic ones, e.g.
    (1, 3, None, None) for an NCHW input of any height and width.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype

    @property
    def static_hw(self) -> tuple[int, int] | None:
        """(H, W) when both spatial dims of an NCHW tensor are fixed, else None."""
        if len(self.shape) == 4 and isinstance(self.shape[2], int) and isinstance(self.shape[3], int):
            return int(self.shape[2]), int(self.shape[3])
        return None


@dataclass(frozen=True)
class LabelRequest:
    """What ``Backend.infer_labels`` asks of the device: see its docstring for each field."""

    want_confidence: bool
    content_hw: tuple[int, int]
    image_hw: tuple[int, int]
    num_classes: int | None = None


def _hw(size: tuple[int, int]) -> tuple[int, int]:
    return int(size[0]), int(size[1])


class Backend(ABC):
    """One loaded network on one device. Use as a context manager or call ``close()``."""

    #: registry name, e.g. "onnxruntime"
    name: str = "base"
    #: set by a subclass's ``__init__`` (or override the properties)
    _input_spec: TensorSpec
    _output_spec: TensorSpec
    _precision: str = "fp32"

    @property
    def input_spec(self) -> TensorSpec:
        """The network input (NCHW)."""
        return self._input_spec

    @property
    def output_spec(self) -> TensorSpec:
        """The network's first output: logits (N, K, h, w) or labels (N, h, w)."""
        return self._output_spec

    @property
    def precision(self) -> str:
        """The precision the network runs at ("fp32", "fp16", "int8" or "as built")."""
        return self._precision

    @property
    def device(self) -> str:
        """Human-readable device, e.g. 'cpu' or 'cuda:0 (NVIDIA H100)'."""
        return "cpu"

    @property
    def description(self) -> str:
        """One line for logs and diagnostics."""
        return f"{self.name} on {self.device}"

    @abstractmethod
    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Run the network on an NCHW float32 tensor; returns the first output as numpy."""

    def infer_labels(
        self,
        tensor: np.ndarray,
        *,
        want_confidence: bool,
        content_hw: tuple[int, int],
        image_hw: tuple[int, int],
        num_classes: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Optional fast path: run the network and post-process on its device.

        Same result as ``Segmenter.postprocess`` of ``infer(tensor)`` for a logits output
        (crop to ``content_hw`` of the network input, bilinear resize to ``image_hw``,
        arg-max, softmax confidence), but only the class ids (and the confidence when
        ``want_confidence``) leave the device. Returns (HxW uint8 labels, HxW uint8
        confidence or None), or None when this backend has no such path or the output is
        not logits: the caller then uses ``infer``. Raises ModelError when the output has
        a channel count other than ``num_classes``.
        """
        request = LabelRequest(bool(want_confidence), _hw(content_hw), _hw(image_hw), num_classes)
        return self._labels_on_device(tensor, request)

    def _labels_on_device(
        self, tensor: np.ndarray, request: LabelRequest
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """``infer_labels`` of a backend with a device path; None (the default): it has none."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources keep the default
        """Release sessions, device memory and streams."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


BackendFactory = Callable[..., Backend]
_REGISTRY: dict[str, BackendFactory] = {}
_UNAVAILABLE_REASONS: dict[str, str] = {}


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Decorator registering a backend factory ``f(model_path, **options) -> Backend`` under ``name``."""

    def deco(factory: BackendFactory) -> BackendFactory:
        _REGISTRY[name] = factory
        return factory

    return deco


def registered_backends() -> list[str]:
    """Names of the backends that registered a factory (built-ins loaded first)."""
    _load_builtin_backends()
    return sorted(_REGISTRY)


def _load_builtin_backends() -> None:
    """Import each module of :data:`BUILTIN_BACKENDS` not yet loaded; remember a failed import as the reason."""
    for name, module in BUILTIN_BACKENDS.items():
        if name in _REGISTRY or name in _UNAVAILABLE_REASONS:
            continue
        try:
            importlib.import_module(module)
        except ImportError as err:  # backend module not written or its import failed
            _UNAVAILABLE_REASONS[name] = f"backend module failed to import: {err}"


def model_spec_or_none(model_path: Path) -> ModelSpec | None:
    """The model's metadata (``ModelSpec`` from the YAML beside it), or None if it has none."""
    from seg_perception.model_spec import ModelSpec

    try:
        return ModelSpec.for_model(model_path)
    except ModelError:
        return None


def check_model_path(model_path: str | Path) -> Path:
    """The model path as a Path, or ModelError when it is missing or not a file."""
    path = Path(model_path).expanduser()
    if not path.exists():
        raise ModelError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelError(f"model path {path} is not a file")
    return path


def create_backend(name: str, model_path: str | Path, **options: Any) -> Backend:
    """Load ``model_path`` with the backend called ``name`` (not "auto"; see backends.select).

    Raises ConfigError for an unknown name, BackendUnavailable when the backend cannot
    run here, ModelError for a missing or corrupt model.
    """
    _load_builtin_backends()
    if name not in _REGISTRY:
        if name in _UNAVAILABLE_REASONS:
            raise BackendUnavailable(f"backend '{name}' is unavailable: {_UNAVAILABLE_REASONS[name]}")
        raise ConfigError(f"unknown backend '{name}'; choose one of {['auto', *sorted(_REGISTRY)]}")
    precision = options.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return _REGISTRY[name](check_model_path(model_path), **options)
