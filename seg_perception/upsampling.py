"""Labels of bilinearly up-sampled logits, without up-sampling the logits.

Arg-max at the logits' size; where the 2x2 block a bilinear sample blends agrees, its label is
exact; only boundary pixels are interpolated (algorithm and proof: docs/backends.md).
"""

from __future__ import annotations

import cv2
import numpy as np

UNKNOWN_LABEL = 255


def linear_taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (i0, i1) and weight of i1 for each of ``n_out`` outputs from ``n_in`` inputs.

    Same sampling as ``cv2.resize(..., INTER_LINEAR)``: src = (dst + 0.5) * n_in / n_out - 0.5,
    clamped to the first and last input.
    """
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    i0 = np.floor(src).astype(np.int64)
    frac = src - i0
    low = i0 < 0
    i0[low], frac[low] = 0, 0.0
    high = i0 >= n_in - 1
    i0[high], frac[high] = n_in - 1, 0.0
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, frac.astype(np.float32)


def first_argmax(logits: np.ndarray, best: np.ndarray | None = None) -> np.ndarray:
    """(K, ...) float logits -> uint8 first maximum per pixel (255 where the logits are NaN).

    ``best`` is ``logits.max(axis=0)`` when the caller has it already.
    """
    k = logits.shape[0]
    if best is None:
        best = logits.max(axis=0)
    # First maximum without np.argmax over axis 0 (a strided scan, ~20x slower here): mark the
    # maxima, weight class c by K - c, and the largest weight is the first maximum.
    rank = np.arange(k, 0, -1, dtype=np.uint8).reshape((k,) + (1,) * (logits.ndim - 1))
    hits = np.equal(logits, best).view(np.uint8)
    np.multiply(hits, rank, out=hits)
    labels = np.subtract(k, hits.max(axis=0), dtype=np.int16)
    labels[labels == k] = UNKNOWN_LABEL
    return labels.astype(np.uint8)


def upsampled_labels(logits: np.ndarray, size: tuple[int, int], low_labels: np.ndarray | None = None) -> np.ndarray:
    """HxW uint8 labels of ``logits`` (K, h, w float32) bilinearly resized to ``size`` = (H, W).

    ``low_labels`` (the h x w arg-max) may be passed when already computed.
    """
    k, h, w = logits.shape
    out_h, out_w = size
    lab = first_argmax(logits) if low_labels is None else low_labels
    y0, y1, fy = linear_taps(out_h, h)
    x0, x1, fx = linear_taps(out_w, w)
    # Block (i, j) = logit pixels (i..i+1, j..j+1), the last row/column repeated at the edge.
    right = np.concatenate([lab[:, 1:], lab[:, -1:]], axis=1)
    same = lab == right
    uniform = same & np.concatenate([same[1:], same[-1:]], axis=0) & (lab == np.concatenate([lab[1:], lab[-1:]]))
    # Any corner of a uniform block carries its label; OpenCV's exact nearest neighbour
    # (source floor((dst + 0.5) * scale), clamped) always reads one of the block's corners.
    full = cv2.resize(lab, (out_w, out_h), interpolation=cv2.INTER_NEAREST_EXACT)
    idx, block, bi, bj = _mixed_pixels(~uniform, y0, x0, out_w)
    if idx.size:
        flat = logits.reshape(k, -1)
        bi1, bj1 = np.minimum(bi + 1, h - 1), np.minimum(bj + 1, w - 1)
        # (K, blocks) logits at the four corners of each mixed block, then per pixel.
        corners = [np.take(flat, r * w + c, axis=1) for r, c in ((bi, bj), (bi, bj1), (bi1, bj), (bi1, bj1))]
        ys = idx // out_w
        xs = idx - ys * out_w
        wy, wx = fy[ys], fx[xs]
        top = np.take(corners[0], block, axis=1)
        top += (np.take(corners[1], block, axis=1) - top) * wx
        bottom = np.take(corners[2], block, axis=1)
        bottom += (np.take(corners[3], block, axis=1) - bottom) * wx
        top += (bottom - top) * wy
        np.put(full, idx, first_argmax(top))
    return full


def _mixed_pixels(
    mixed: np.ndarray, y0: np.ndarray, x0: np.ndarray, out_w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels whose block is mixed: (flat output index, block number, block rows, block columns).

    Output rows reading block row i form one run (``y0`` is sorted), so each mixed block
    expands to a rectangle of output pixels; the work is proportional to those pixels only.
    """
    bi, bj = np.nonzero(mixed)
    h, w = mixed.shape
    r_start = np.searchsorted(y0, np.arange(h), "left")
    r_count = np.searchsorted(y0, np.arange(h), "right") - r_start
    c_start = np.searchsorted(x0, np.arange(w), "left")
    c_count = np.searchsorted(x0, np.arange(w), "right") - c_start
    nr, nc = r_count[bi], c_count[bj]
    size = nr * nc
    block = np.repeat(np.arange(bi.size), size)
    offset = np.arange(block.size) - np.repeat(np.cumsum(size) - size, size)
    cols = nc[block]
    rows = r_start[bi][block] + offset // cols
    return rows * out_w + c_start[bj][block] + offset % cols, block, bi, bj


#: The grid projects labels of at most this (height, width): the network's own 360 rows (a 10 cm
#: cell needs no finer detail than the network saw), with room for a 16:9 frame's width. The
#: lookup's memory (the node's peak RSS) and build time grow with the pixel count: at VGA,
#: 640x480 -> 480x360 lowers the build's peak from 48.9 to 32.5 MiB (docs/occupancy.md).
GRID_MAX_LABEL_HW = (360, 640)


def grid_label_shape(shape: tuple[int, int], max_hw: tuple[int, int] = GRID_MAX_LABEL_HW) -> tuple[int, int]:
    """(H, W) that :func:`labels_for_grid` gives an image of ``shape`` = (H, W)."""
    h, w = int(shape[0]), int(shape[1])
    scale = min(max_hw[0] / h, max_hw[1] / w)
    if scale >= 1.0:
        return h, w
    return max(1, round(h * scale)), max(1, round(w * scale))


def labels_for_grid(labels: np.ndarray, max_hw: tuple[int, int] = GRID_MAX_LABEL_HW) -> np.ndarray:
    """HxW uint8 labels shrunk by nearest neighbour to fit ``max_hw`` (aspect kept); unchanged when they fit."""
    h, w = grid_label_shape(labels.shape[:2], max_hw)
    if (h, w) == labels.shape[:2]:
        return labels
    return cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
