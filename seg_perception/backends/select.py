"""Backend selection: ``auto`` takes the fastest backend that works here and says why.

Per file type: ONNX -> TensorRT, ONNX Runtime CUDA, ONNX Runtime CPU; engine -> TensorRT;
PyTorch -> torch CUDA, torch CPU (``auto_order`` replaces it). ``auto`` lowers a precision a
backend cannot run to fp32 and says so; a named backend gets exactly what was asked or fails.
Reasoning: docs/backends.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg_perception.backends.base import PRECISIONS, Backend, check_model_path, create_backend
from seg_perception.errors import BackendUnavailable, ConfigError, ModelError, SegPerceptionError

LOG = logging.getLogger(__name__)

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
TORCH_SUFFIXES = (".pt", ".pth", ".pt2", ".ts", ".torchscript")

# (backend name, options) in order of preference for "auto" with an ONNX model.
AUTO_ORDER: tuple[tuple[str, dict[str, Any]], ...] = (
    ("tensorrt", {"device": "cuda"}),
    ("onnxruntime", {"device": "cuda"}),
    ("onnxruntime", {"device": "cpu"}),
)
AUTO_ORDER_ENGINE: tuple[tuple[str, dict[str, Any]], ...] = (("tensorrt", {"device": "cuda"}),)
AUTO_ORDER_TORCH: tuple[tuple[str, dict[str, Any]], ...] = (
    ("torch", {"device": "cuda"}),
    ("torch", {"device": "cpu"}),
)

#: model file types each backend can read.
BACKEND_FORMATS: dict[str, tuple[str, ...]] = {
    "tensorrt": ("onnx", "engine"),
    "onnxruntime": ("onnx",),
    "torch": ("torch",),
}
#: precisions each backend can run (others are tried at fp32 by "auto").
BACKEND_PRECISIONS: dict[str, tuple[str, ...]] = {
    "tensorrt": ("fp32", "fp16", "int8"),
    "onnxruntime": ("fp32", "int8"),
    "torch": ("fp32", "fp16"),
}


def model_format(model_path: str | Path) -> str:
    """ "onnx", "engine" or "torch" from the file suffix; ConfigError for anything else."""
    suffix = Path(model_path).suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    if suffix in ENGINE_SUFFIXES:
        return "engine"
    if suffix in TORCH_SUFFIXES:
        return "torch"
    known = ONNX_SUFFIXES + ENGINE_SUFFIXES + TORCH_SUFFIXES
    raise ConfigError(f"cannot tell the model type of {Path(model_path).name}: use one of {', '.join(known)}")


def _label(name: str, opts: dict[str, Any]) -> str:
    dev = opts.get("device")
    return f"{name} ({dev})" if dev and name != "tensorrt" else name


def parse_auto_order(entries: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """``["tensorrt", "onnxruntime:cuda", "torch:cpu"]`` -> [(name, {"device": ...}), ...]."""
    out: list[tuple[str, dict[str, Any]]] = []
    for entry in entries:
        name, _, dev = str(entry).strip().partition(":")
        if name not in BACKEND_FORMATS:
            raise ConfigError(f"auto_order entry {entry!r}: unknown backend {name!r}; use {sorted(BACKEND_FORMATS)}")
        if name == "tensorrt" and dev not in ("", "cuda") and not dev.startswith("cuda"):
            raise ConfigError(f"auto_order entry {entry!r}: tensorrt runs on CUDA only")
        if dev and dev not in ("cpu", "cuda") and not dev.startswith("cuda:"):
            raise ConfigError(f"auto_order entry {entry!r}: device must be cpu, cuda or cuda:N")
        out.append((name, {"device": dev or ("cuda" if name == "tensorrt" else "cpu")}))
    if not out:
        raise ConfigError("auto_order is empty")
    return out


def auto_candidates(
    model_path: str | Path, auto_order: Sequence[str] | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(candidates to try in order, reasons for the ones skipped without trying)."""
    fmt = model_format(model_path)
    if auto_order:
        order = parse_auto_order(auto_order)
    else:
        order = list({"onnx": AUTO_ORDER, "engine": AUTO_ORDER_ENGINE, "torch": AUTO_ORDER_TORCH}[fmt])
    tried, skipped = [], []
    for name, opts in order:
        if fmt in BACKEND_FORMATS.get(name, ()):
            tried.append((name, dict(opts)))
        else:
            skipped.append(f"{_label(name, opts)}: cannot read {fmt} model files")
    return tried, skipped


@dataclass
class Selection:
    """The chosen backend and why the ones tried before it were skipped.

    Attributes:
        backend: the loaded backend.
        reasons: one "<backend>: <why>" per candidate skipped, in the order tried.
        notes: remarks on the chosen backend (e.g. precision lowered to fp32).
        requested: the backend name asked for ("auto" or an explicit name).
        precision: the precision the chosen backend runs ("auto" reports it in the summary).
    """

    backend: Backend
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    requested: str = "auto"
    precision: str = ""

    @property
    def summary(self) -> str:
        """One line for logs and diagnostics."""
        head = f"using {self.backend.description}"
        if self.precision:
            head += f", precision {self.precision}"
        if self.notes:
            head += f" [{'; '.join(self.notes)}]"
        if self.requested != "auto":
            return f"{head} (requested explicitly)"
        skipped = "; ".join(self.reasons) if self.reasons else "first choice"
        return f"{head} (skipped: {skipped})"


def select_backend(name: str, model_path: str | Path, **options: Any) -> Selection:
    """Create the backend ``name``; for "auto", the first candidate that loads (order: docs/backends.md).

    Options are passed to the backend factories (each ignores those it does not use),
    except ``auto_order``, read here. Raises ConfigError for an unknown name or
    precision, ModelError for a missing model (or one every backend rejects as
    corrupt), BackendUnavailable when nothing can run it.
    """
    auto_order = options.pop("auto_order", None)
    precision = options.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if name != "auto":
        try:
            backend = create_backend(name, model_path, **options)
        except BackendUnavailable as err:
            raise BackendUnavailable(
                f"backend '{name}' was requested but cannot run on this machine: {err}. "
                "Set backend to 'auto' to use the fastest backend that works here"
            ) from err
        selection = Selection(backend, requested=name)
        LOG.info("inference backend: %s", selection.summary)
        return selection

    check_model_path(model_path)
    candidates, reasons = auto_candidates(model_path, auto_order)
    errors: list[SegPerceptionError] = []
    for backend_name, extra in candidates:
        label = _label(backend_name, extra)
        opts = {**options, **extra}
        notes = []
        if precision not in BACKEND_PRECISIONS.get(backend_name, PRECISIONS):
            opts["precision"] = "fp32"
            notes.append(f"{backend_name} cannot run {precision}; running fp32")
        ran = str(opts.get("precision", "fp32"))
        try:
            backend = create_backend(backend_name, model_path, **opts)
        except ConfigError as err:
            if opts.get("precision", "fp32") == "fp32":
                reasons.append(f"{label}: {err}")
                errors.append(err)
                continue
            try:  # this backend cannot make the precision here (e.g. no int8 model): run it at fp32
                backend = create_backend(backend_name, model_path, **{**opts, "precision": "fp32"})
            except (BackendUnavailable, ConfigError, ModelError) as err2:
                reasons.append(f"{label}: {err2}")
                errors.append(err2)
                continue
            ran = "fp32"
            notes.append(f"{backend_name} cannot run {precision} here ({err}); running fp32")
        except (BackendUnavailable, ModelError) as err:
            reasons.append(f"{label}: {err}")
            errors.append(err)
            LOG.debug("backend auto: %s skipped", label, exc_info=True)
            continue
        except Exception as err:
            reasons.append(f"{label}: unexpected {type(err).__name__}: {err}")
            LOG.warning("backend auto: %s failed unexpectedly; trying the next backend", label, exc_info=True)
            continue
        selection = Selection(backend, reasons, notes, precision=str(getattr(backend, "precision", ran)))
        LOG.info("backend auto: %s", selection.summary)
        return selection
    message = "no backend could load the model: " + "; ".join(reasons)
    if errors and all(isinstance(e, ModelError) for e in errors):
        raise ModelError(message) from errors[-1]
    raise BackendUnavailable(message) from (errors[-1] if errors else None)
