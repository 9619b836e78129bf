"""Confusion matrix, mIoU and full-resolution evaluation of a network on a dataset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from seg_perception.training.data import NUM_CLASSES, SegArrays, to_tensor_batch

__all__ = ["confusion_matrix", "evaluate", "miou_from_confusion"]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """pred, target: int64 N x H x W -> int64 K x K confusion (rows = truth); ids >= K ignored."""
    valid = target < num_classes
    idx = target[valid] * num_classes + pred[valid]
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def miou_from_confusion(conf: torch.Tensor | np.ndarray) -> tuple[float, list[float]]:
    """Mean IoU over classes and the per-class IoU list (NaN-free: absent classes count 0)."""
    c = np.asarray(conf, dtype=np.float64)
    inter = np.diag(c)
    union = c.sum(0) + c.sum(1) - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return float(iou.mean()), [float(v) for v in iou]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: SegArrays,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 4,
    num_classes: int = NUM_CLASSES,
    device: torch.device | str = "cpu",
) -> tuple[float, list[float]]:
    """Full-resolution evaluation (images as stored, e.g. 360 x 480) on ``device``: (mIoU, per-class IoU)."""
    was_training = model.training
    model.eval()
    conf = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for b0 in range(0, len(data), batch_size):
        x, y = to_tensor_batch(data.images[b0 : b0 + batch_size], data.labels[b0 : b0 + batch_size], mean, std)
        pred = model(x.to(device)).argmax(1).cpu()
        conf += confusion_matrix(pred, y, num_classes)
    model.train(was_training)
    return miou_from_confusion(conf)
