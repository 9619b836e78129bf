"""What scoring one bag measured, offline (``eval_bag``) or live (``live_result``): the fields both share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg_perception.evaluation.bag_topics import BagTopics
from seg_perception.evaluation.matching import StripFrame
from seg_perception.evaluation.metrics import ConfusionMatrix


@dataclass
class BagScore:
    """The bag, its topics, the confusion over frames with ground truth, latencies (ms per stage) and notes."""

    bag: Path
    topics: BagTopics
    frames_with_gt: int = 0
    confusion: ConfusionMatrix | None = None
    latency: dict[str, list[float]] = field(default_factory=dict)
    strip: list[StripFrame] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: what a truncated bag lost (``BagDamage.to_dict``); None when it read as recorded
    damage: dict[str, Any] | None = None

    def _report(self, counts: dict[str, Any], measures: dict[str, Any]) -> dict[str, Any]:
        """The JSON report body: bag and topics, ``counts``, the accuracy, ``measures``, damage, warnings."""
        out: dict[str, Any] = {
            "bag": str(self.bag),
            "image_topic": self.topics.image,
            "gt_topic": self.topics.gt,
            "camera_info_topic": self.topics.camera_info,
            **counts,
        }
        if self.confusion is not None and self.frames_with_gt:
            out.update(self.confusion.report())
        out.update(measures)
        if self.damage is not None:
            out["damage"] = self.damage
        out["warnings"] = list(self.warnings)
        return out
