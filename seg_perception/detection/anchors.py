"""SSD anchors of the TF Object Detection API multiscale grid generator, in numpy.

Matches MediaPipe's ``SsdAnchorsCalculator`` for the Objectron detector: 6 layers,
strides 16..512 on a 300x300 input, scales 0.2..0.95, aspect ratios 1, 2, 0.5, 3, 1/3
plus one interpolated scale per cell, the lowest layer reduced to 3 boxes -> 1917 anchors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

STRIDES = (16, 32, 64, 128, 256, 512)
ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * index / (count - 1.0)


def ssd_anchors(
    input_size: int = 300,
    strides: Sequence[int] = STRIDES,
    min_scale: float = 0.2,
    max_scale: float = 0.95,
    aspect_ratios: Sequence[float] = ASPECT_RATIOS,
    reduce_lowest: bool = True,
) -> np.ndarray:
    """Anchors as an (N, 4) float32 array of (y_center, x_center, height, width), normalised 0..1.

    Order: layer, then row, then column, then box within the cell (the model's output order).
    """
    n_layers = len(strides)
    rows: list[tuple[float, float, float, float]] = []
    for layer, stride in enumerate(strides):
        scale = _scale(min_scale, max_scale, layer, n_layers)
        if layer == 0 and reduce_lowest:
            shapes = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
        else:
            shapes = [(scale, r) for r in aspect_ratios]
            nxt = 1.0 if layer == n_layers - 1 else _scale(min_scale, max_scale, layer + 1, n_layers)
            shapes.append((math.sqrt(scale * nxt), 1.0))
        size = math.ceil(input_size / stride)
        for y in range(size):
            for x in range(size):
                yc, xc = (y + 0.5) / size, (x + 0.5) / size
                for s, r in shapes:
                    root = math.sqrt(r)
                    rows.append((yc, xc, s / root, s * root))
    return np.asarray(rows, dtype=np.float32)
