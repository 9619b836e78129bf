"""Backend selection: ``auto`` tries the fastest backend that works here, with reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg_perception.backends.base import Backend, check_model_path, create_backend
from seg_perception.errors import BackendUnavailable, ConfigError

# (backend name, options) in order of preference for "auto".
AUTO_ORDER: tuple[tuple[str, dict[str, Any]], ...] = (
    ("tensorrt", {}),
    ("onnxruntime", {"device": "cuda"}),
    ("onnxruntime", {"device": "cpu"}),
)


@dataclass
class Selection:
    """The chosen backend and why the ones tried before it were skipped."""

    backend: Backend
    reasons: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        skipped = "; ".join(self.reasons) if self.reasons else "first choice"
        return f"using {self.backend.description} (skipped: {skipped})"


def select_backend(name: str, model_path: str | Path, **options: Any) -> Selection:
    """Create the backend ``name``; for "auto", the first of AUTO_ORDER that loads.

    An explicitly named backend that cannot run raises BackendUnavailable: no silent
    fallback when the user asked for one.
    """
    if name != "auto":
        return Selection(create_backend(name, model_path, **options))
    check_model_path(model_path)
    reasons: list[str] = []
    for backend_name, extra in AUTO_ORDER:
        label = backend_name + (f"/{extra['device']}" if "device" in extra else "")
        try:
            return Selection(create_backend(backend_name, model_path, **{**options, **extra}), reasons)
        except (BackendUnavailable, ConfigError) as err:
            reasons.append(f"{label}: {err}")
    raise BackendUnavailable("no backend could load the model: " + "; ".join(reasons))
