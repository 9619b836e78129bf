"""Depth images to metres (REP-118) and to the colour image's size."""

from __future__ import annotations

import cv2
import numpy as np

from seg_perception.errors import ImageError

__all__ = ["DEPTH_ENCODINGS", "DepthImage", "depth_to_metres", "match_size"]

#: depth encodings accepted and their scale to metres (REP-118: 16UC1 millimetres, 32FC1 metres)
DEPTH_ENCODINGS: dict[str, tuple[type, float]] = {
    "16UC1": (np.uint16, 1e-3),
    "mono16": (np.uint16, 1e-3),
    "32FC1": (np.float32, 1.0),
}


class DepthImage:
    """Depth in metres registered to a colour image.

    Attributes:
        metres: float32 H x W, NaN where there is no reading.
        invalid: pixels without a reading (0, NaN, +-inf or negative in the input).
        resized: the input had another size and was scaled with nearest neighbour.
    """

    __slots__ = ("metres", "invalid", "resized")

    def __init__(self, metres: np.ndarray, invalid: int, resized: bool = False) -> None:
        self.metres, self.invalid, self.resized = metres, int(invalid), bool(resized)


def depth_to_metres(arr: np.ndarray, encoding: str) -> DepthImage:
    """Decode an H x W depth array in ``encoding`` to float32 metres.

    ``16UC1``/``mono16``: uint16 millimetres, 0 = no reading. ``32FC1``: float32 metres,
    0, NaN, inf or negative = no reading (REP-118).

    Raises:
        ImageError: another encoding (e.g. ``mono8`` on the depth topic), or a dtype/shape mismatch.
    """
    if encoding not in DEPTH_ENCODINGS:
        raise ImageError(f"depth encoding {encoding!r} not supported (use 16UC1 millimetres or 32FC1 metres)")
    dtype, scale = DEPTH_ENCODINGS[encoding]
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2 or a.dtype != np.dtype(dtype):
        raise ImageError(f"{encoding} depth must be H x W {np.dtype(dtype).name}, got {a.shape} {a.dtype}")
    metres = a.astype(np.float32) * np.float32(scale)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(metres) | (metres <= 0)
    metres[bad] = np.nan
    return DepthImage(metres, int(bad.sum()))


def match_size(depth: DepthImage, shape: tuple[int, int]) -> DepthImage:
    """``depth`` at ``shape`` = (H, W) of the colour image; nearest neighbour (never blends depths)."""
    h, w = int(shape[0]), int(shape[1])
    if depth.metres.shape == (h, w):
        return depth
    scaled = cv2.resize(depth.metres, (w, h), interpolation=cv2.INTER_NEAREST)
    return DepthImage(scaled, int(np.isnan(scaled).sum()), resized=True)
