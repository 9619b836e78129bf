"""``eval``: run the node's Segmenter over a CamVid-layout dataset split and score it.

Predictions are made at each image's own resolution (the Segmenter maps the network
output back to the input size) and compared with the label image, which must have the
image's size (CamVid: 360x480). Scoring follows ``metrics`` (one confusion matrix over
all images; void and ids >= num_classes ignored; classes absent from both ground truth
and prediction are NaN and left out of the mean).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from seg_perception.evaluation.datasets import SegmentationDataset
from seg_perception.evaluation.metrics import ConfusionMatrix, latency_summary
from seg_perception.pipeline import Segmenter

STAGES = ("decode", "preprocess", "inference", "postprocess")


@dataclass
class DatasetEvalResult:
    """Outcome of ``evaluate_dataset``.

    ``latency`` holds per-frame milliseconds per stage ("decode" = reading and decoding
    the image file, then the Segmenter's stages); ``segment_s`` is the summed Segmenter
    time (preprocess + inference + postprocess) and ``wall_s`` the whole loop's.
    """

    confusion: ConfusionMatrix
    frames: int
    latency: dict[str, list[float]] = field(default_factory=dict)
    segment_s: float = 0.0
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: miou, per_class_iou, pixel_accuracy, frames, fps, latency_ms, confusion_matrix."""
        out: dict[str, Any] = dict(self.confusion.summary())
        out["frames"] = self.frames
        # fps counts the Segmenter only (what the node would sustain); wall_fps adds file I/O and scoring.
        out["fps"] = self.frames / self.segment_s if self.segment_s > 0 else None
        out["wall_fps"] = self.frames / self.wall_s if self.wall_s > 0 else None
        out["latency_ms"] = latency_summary(self.latency)
        out["class_names"] = list(self.confusion.class_names)
        out["ignore_index"] = self.confusion.ignore_index
        out["confusion_matrix"] = self.confusion.counts.tolist()
        return out


def evaluate_dataset(dataset: SegmentationDataset, segmenter: Segmenter, progress: bool = True) -> DatasetEvalResult:
    """Segment every sample of ``dataset`` and accumulate one confusion matrix.

    Raises DatasetError for unreadable files or a label whose size differs from its image.
    """
    spec = segmenter.spec
    cm = ConfusionMatrix(spec.num_classes, spec.ignore_index, spec.class_names)
    latency: dict[str, list[float]] = {s: [] for s in STAGES}
    segment_s = 0.0
    start = time.perf_counter()
    with tqdm(total=len(dataset), desc=f"eval {dataset.split}", unit="frame", disable=not progress) as bar:
        for i in range(len(dataset)):
            t0 = time.perf_counter()
            rgb, gt = dataset.load(i)
            latency["decode"].append((time.perf_counter() - t0) * 1e3)
            seg = segmenter.segment(rgb, want_confidence=False)
            for stage in ("preprocess", "inference", "postprocess"):
                latency[stage].append(seg.timings[stage])
            segment_s += sum(seg.timings.values()) / 1e3
            cm.update(gt, seg.labels)
            bar.update(1)
    return DatasetEvalResult(cm, len(dataset), latency, segment_s, time.perf_counter() - start)
