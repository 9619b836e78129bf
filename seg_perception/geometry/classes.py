"""Class-id sets of the occupancy grid: model class names -> ids, and the 256-entry label lookup."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from seg_perception.errors import ConfigError

try:  # optional speed-up of the per-frame class lookup
    import cv2 as _cv2
except ImportError:  # pragma: no cover - OpenCV is in the pinned environment
    _cv2 = None


def class_ids(names: Iterable[str], class_names: Sequence[str]) -> frozenset[int]:
    """Class ids of ``names`` in the model's ``class_names`` (exact, then case-insensitive match).

    Raises:
        ConfigError: a name is not a class of the model.
    """
    lookup = {n: i for i, n in enumerate(class_names)}
    lower = {n.lower(): i for i, n in enumerate(class_names)}
    ids = set()
    for name in names:
        if name in lookup:
            ids.add(lookup[name])
        elif str(name).lower() in lower:
            ids.add(lower[str(name).lower()])
        else:
            raise ConfigError(f"unknown class {name!r}; the model's classes are {list(class_names)}")
    return frozenset(ids)


def class_lut(ids: Iterable[int], what: str) -> np.ndarray:
    """(256,) bool lookup, True at ``ids``.

    Raises:
        ConfigError: an id is not an integer in 0..255 (``what`` names the parameter).
    """
    lut = np.zeros(256, dtype=bool)
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= int(i) <= 255:
            raise ConfigError(f"{what} must be class ids in 0..255, got {i!r}")
        lut[int(i)] = True
    return lut


def apply_lut(lut: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """lut[labels] for a uint8 image (cv2.LUT when OpenCV is importable: about twice as fast as numpy)."""
    if _cv2 is not None and labels.flags.c_contiguous and labels.size:
        return _cv2.LUT(labels, lut)
    return np.take(lut, labels)


__all__ = ["apply_lut", "class_ids", "class_lut"]
