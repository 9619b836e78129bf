"""Confusion matrix and segmentation metrics (IoU, mIoU, pixel accuracy).

Conventions (the CamVid / SegNet protocol):

- One confusion matrix is accumulated over *all* evaluated images; mIoU is the mean of
  the per-class IoUs of that matrix (not an average of per-image mIoUs).
- Ground-truth pixels equal to ``ignore_index`` (void, 11 for CamVid) or outside
  ``0..num_classes-1`` are ignored: they count neither for nor against any class.
- A *prediction* outside ``0..num_classes-1`` (255 = unknown from the pipeline) on a
  valid ground-truth pixel is a miss for that ground-truth class (a false negative) and
  a false positive for no class. It is kept in an extra "unknown" column.
- IoU_c = TP_c / (TP_c + FP_c + FN_c). A class absent from both the ground truth and
  the predictions has IoU NaN (0/0) and is excluded from the mean; a class present in
  only one of them has IoU 0 and counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seg_perception.errors import DatasetError


class ConfusionMatrix:
    """Pixel confusion counts between ground truth (rows) and predictions (columns).

    Args:
        num_classes: K, the number of real classes (ids 0..K-1).
        ignore_index: ground-truth id to skip (void); ids >= K are skipped as well.
        class_names: optional K names for ``per_class_iou``; default "0".."K-1".

    ``counts`` is a K x (K+1) int64 array: entry [g, p] counts pixels of ground truth g
    predicted as p, column K counts predictions outside 0..K-1.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None, class_names: Sequence[str] | None = None):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        names = tuple(class_names) if class_names is not None else tuple(str(i) for i in range(num_classes))
        if len(names) != num_classes:
            raise ValueError(f"{len(names)} class names for {num_classes} classes")
        self.class_names = names
        self.counts = np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)

    def update(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add one image: ``gt`` and ``pred`` are HxW integer label arrays of the same shape."""
        gt = np.asarray(gt)
        pred = np.asarray(pred)
        if gt.shape != pred.shape:
            raise DatasetError(f"ground truth {gt.shape[::-1]} and prediction {pred.shape[::-1]} differ in size")
        k = self.num_classes
        g = gt.reshape(-1).astype(np.int64)
        p = pred.reshape(-1).astype(np.int64)
        valid = (g >= 0) & (g < k)
        if self.ignore_index is not None:
            valid &= g != self.ignore_index
        g, p = g[valid], p[valid]
        p = np.where((p >= 0) & (p < k), p, k)
        self.counts += np.bincount(g * (k + 1) + p, minlength=k * (k + 1)).reshape(k, k + 1)

    def merge(self, other: ConfusionMatrix) -> None:
        """Add the counts of another matrix over the same classes."""
        if other.counts.shape != self.counts.shape:
            raise ValueError("cannot merge confusion matrices of different class counts")
        self.counts += other.counts

    @property
    def matrix(self) -> np.ndarray:
        """K x K counts (ground truth rows, prediction columns), without the unknown column."""
        return self.counts[:, : self.num_classes]

    @property
    def total(self) -> int:
        """Number of evaluated (non-ignored) pixels."""
        return int(self.counts.sum())

    def iou(self) -> np.ndarray:
        """Per-class IoU, shape (K,) float64; NaN for classes absent from both GT and prediction."""
        m = self.matrix
        tp = np.diag(m).astype(np.float64)
        gt_total = self.counts.sum(axis=1).astype(np.float64)  # includes unknown predictions (FN)
        pred_total = m.sum(axis=0).astype(np.float64)
        union = gt_total + pred_total - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / np.where(union > 0, union, 1.0), np.nan)

    def miou(self) -> float:
        """Mean of the non-NaN per-class IoUs; NaN when no class has any pixel."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")

    def pixel_accuracy(self) -> float:
        """Correct pixels / evaluated pixels; NaN when nothing was evaluated."""
        total = self.total
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def class_accuracy(self) -> np.ndarray:
        """Per-class recall TP / (TP + FN), shape (K,), NaN for classes without ground truth."""
        gt_total = self.counts.sum(axis=1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(gt_total > 0, np.diag(self.matrix) / np.where(gt_total > 0, gt_total, 1.0), np.nan)

    def per_class_iou(self) -> dict[str, float | None]:
        """Class name -> IoU (None where NaN, so the mapping serializes to JSON null)."""
        return {n: (None if np.isnan(v) else float(v)) for n, v in zip(self.class_names, self.iou(), strict=True)}

    def summary(self) -> dict:
        """JSON-ready metrics: miou, per_class_iou, pixel_accuracy, mean_class_accuracy, pixels."""
        acc = self.class_accuracy()
        miou = self.miou()
        pa = self.pixel_accuracy()
        return {
            "miou": None if np.isnan(miou) else miou,
            "per_class_iou": self.per_class_iou(),
            "pixel_accuracy": None if np.isnan(pa) else pa,
            "mean_class_accuracy": float(np.nanmean(acc)) if np.any(~np.isnan(acc)) else None,
            "pixels": self.total,
            "unknown_predictions": int(self.counts[:, -1].sum()),
        }

    def report(self) -> dict:
        """``summary`` plus class_names, ignore_index and the K x (K+1) counts as ``confusion_matrix``."""
        return {
            **self.summary(),
            "class_names": list(self.class_names),
            "ignore_index": self.ignore_index,
            "confusion_matrix": self.counts.tolist(),
        }


def latency_summary(samples: dict[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """Stage -> {median, p95, mean, max} milliseconds over per-frame samples (stages without samples omitted)."""
    out: dict[str, dict[str, float]] = {}
    for stage, values in samples.items():
        v = np.asarray(values, dtype=np.float64)
        if v.size == 0:
            continue
        out[stage] = {
            "median": float(np.median(v)),
            "p95": float(np.percentile(v, 95)),
            "mean": float(v.mean()),
            "max": float(v.max()),
        }
    return out


def scalar_stats(values: dict[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """Name -> {mean, min, max} of per-frame scalar statistics (e.g. occupancy-grid cell fractions)."""
    out: dict[str, dict[str, float]] = {}
    for name, vals in values.items():
        v = np.asarray(vals, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size:
            out[name] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
    return out
