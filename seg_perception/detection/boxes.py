"""Box decoding (TF center-size coder) and greedy non-maximum suppression, in numpy.

Boxes are (N, 4) float arrays of (ymin, xmin, ymax, xmax), normalised 0..1 unless stated.
"""

from __future__ import annotations

import numpy as np

BOX_CODER_SCALES = (10.0, 10.0, 5.0, 5.0)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, scales: tuple[float, ...] = BOX_CODER_SCALES) -> np.ndarray:
    """Decode (N, 4) raw encodings (ty, tx, th, tw) against (N, 4) anchors (yc, xc, h, w).

    Returns (N, 4) float32 boxes (ymin, xmin, ymax, xmax), not clipped.
    """
    raw = np.asarray(raw, np.float32).reshape(-1, 4)
    a = np.asarray(anchors, np.float32).reshape(-1, 4)
    yc = raw[:, 0] / scales[0] * a[:, 2] + a[:, 0]
    xc = raw[:, 1] / scales[1] * a[:, 3] + a[:, 1]
    h = np.exp(raw[:, 2] / scales[2]) * a[:, 2]
    w = np.exp(raw[:, 3] / scales[3]) * a[:, 3]
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=1).astype(np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of two box sets (ymin, xmin, ymax, xmax)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    y0 = np.maximum(a[:, None, 0], b[None, :, 0])
    x0 = np.maximum(a[:, None, 1], b[None, :, 1])
    y1 = np.minimum(a[:, None, 2], b[None, :, 2])
    x1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(y1 - y0, 0, None) * np.clip(x1 - x0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5, max_out: int = 100) -> np.ndarray:
    """Greedy NMS: indices (int64, best score first) of boxes kept, dropping any with IoU > threshold to a kept one."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    while order.size and len(keep) < max_out:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        ious = iou_matrix(boxes[best : best + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
