"""Optional sentence embeddings (all-MiniLM-L6-v2, L2-normalised) for phrases the lexicon does not know.

Nothing imports torch or sentence-transformers at module import; ``SentenceEmbedder.load``
loads the model offline, on ONNX Runtime on CPU (``text_encoder_onnx``) with
sentence-transformers as the fallback. Loading, sharing and threads: docs/query.md.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seg_perception.errors import ModelError
from seg_perception.query.minilm import bundled_model_path
from seg_perception.query.text_encoder_onnx import OnnxSentenceModel

_LOG = logging.getLogger(__name__)

# Process-wide: engines for several models (or re-created engines) share one loaded model
# and the embeddings of texts they have in common (class names, anchor words).
_SHARED_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str], object] = {}
_TEXT_CACHE: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()
_TEXT_CACHE_SIZE = 8192  # x 384 float32 = 12 MB at most


class SentenceEmbedder:
    """A sentence embedding model behind a lock, with a process-wide LRU cache of text embeddings.

    Args:
        model_path: a sentence-transformers model folder; None means the bundled all-MiniLM-L6-v2.
        device: torch device string; "cpu" (default) runs on ONNX Runtime when it can.
        torch_threads: process-wide thread count set at load (ONNX intra-op threads, or
            ``torch.set_num_threads``); None leaves it (ONNX then uses 1).

    Loaded models and text embeddings are shared by all instances in the process (keyed by
    model folder and device).
    """

    def __init__(
        self, model_path: str | Path | None = None, device: str = "cpu", torch_threads: int | None = None
    ) -> None:
        self._model_path = Path(model_path) if model_path is not None else None
        self._device = device
        self._torch_threads = torch_threads
        self._model = None
        self.load_seconds: float | None = None

    @property
    def model_path(self) -> Path | None:
        """Folder the model is (or will be) loaded from."""
        return self._model_path

    @property
    def loaded(self) -> bool:
        """True once ``load`` succeeded."""
        return self._model is not None

    def _key(self) -> tuple[str, str]:
        return str(self._model_path), self._device

    def load(self) -> None:
        """Import sentence-transformers and load the model (offline); a no-op when already loaded.

        Raises:
            ModelError: the packages or the model files are missing, or loading failed.
        """
        if self._model is not None:
            return
        t0 = time.perf_counter()
        if self._model_path is None:
            self._model_path = bundled_model_path()
        with _SHARED_LOCK:
            model = _MODELS.get(self._key())
        if model is None:
            model = self._load_model()
            with _SHARED_LOCK:
                model = _MODELS.setdefault(self._key(), model)
        self._model = model
        self.load_seconds = time.perf_counter() - t0

    def _load_model(self) -> object:
        if not Path(self._model_path).is_dir():  # type: ignore[arg-type]
            raise ModelError(f"sentence embedding model folder {self._model_path} does not exist")
        if self._device == "cpu":
            # ONNX Runtime first: the same embeddings (max |diff| ~1e-7) without torch in this process.
            try:
                return OnnxSentenceModel(Path(self._model_path), threads=self._torch_threads or 1)  # type: ignore[arg-type]
            except ModelError as err:
                _LOG.warning("ONNX text encoder unavailable (%s); falling back to sentence-transformers", err)
        # The model is local; never let the hub client try the network (air-gapped robots hang on DNS).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise ModelError(f"sentence-transformers is not importable: {err}") from err
        if self._torch_threads:
            import torch

            torch.set_num_threads(int(self._torch_threads))
        try:
            return SentenceTransformer(str(self._model_path), device=self._device)
        except Exception as err:  # any loader failure means "no embeddings", reported once
            raise ModelError(f"cannot load sentence embedding model {self._model_path}: {err}") from err

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings, float32 array (len(texts), dim); loads the model if needed.

        Texts seen before (by any instance on the same model) come from the cache.
        """
        self.load()
        path, device = self._key()
        out: list[np.ndarray | None] = []
        missing: list[str] = []
        with _SHARED_LOCK:
            for t in texts:
                hit = _TEXT_CACHE.get((path, device, t))
                if hit is not None:
                    _TEXT_CACHE.move_to_end((path, device, t))
                else:
                    missing.append(t)
                out.append(hit)
        if missing:
            unique = list(dict.fromkeys(missing))
            with _SHARED_LOCK:  # torch modules are not safe to call from several threads at once
                vecs = self._model.encode(  # type: ignore[union-attr]
                    unique, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
                )
                fresh = {t: np.asarray(v, dtype=np.float32) for t, v in zip(unique, vecs, strict=True)}
                for t, v in fresh.items():
                    _TEXT_CACHE[(path, device, t)] = v
                while len(_TEXT_CACHE) > _TEXT_CACHE_SIZE:
                    _TEXT_CACHE.popitem(last=False)
            out = [fresh[t] if v is None else v for t, v in zip(texts, out, strict=True)]
        if not out:
            return np.zeros((0, 0), np.float32)
        return np.stack(out)  # type: ignore[arg-type]

    def encode_one(self, text: str) -> np.ndarray:
        """Embedding (dim,) float32 of one phrase (cached)."""
        return self.encode([text])[0]
