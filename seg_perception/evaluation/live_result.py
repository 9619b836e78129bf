"""The score of a live replay (``eval-bag --live``): received labels matched to sent images by stamp.

ROS-free: ``ros.live_eval`` plays the bag and collects the node's labels; the matching,
the confusion matrix, latencies and drop counts are computed here. Every image sent is
either labelled (a label with its header stamp came back) or dropped: the node keeps
only the newest frame by design, so drops measure how far it falls behind the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seg_perception.conversions.image import image_msg_to_numpy
from seg_perception.errors import SegPerceptionError
from seg_perception.evaluation.bag_score import BagScore
from seg_perception.evaluation.bags import stamp_ns
from seg_perception.evaluation.matching import GroundTruth, StripFrame
from seg_perception.evaluation.metrics import latency_summary


class LiveEvalError(SegPerceptionError):
    """The node could not be started or never answered."""


@dataclass
class LiveEvalResult(BagScore):
    """Outcome of ``evaluate_bag_live``; attribute names match BagEvalResult where they mean the same."""

    published: int = 0
    received: int = 0
    latency: dict[str, list[float]] = field(default_factory=lambda: {"end_to_end": []})
    #: seconds from the first image sent to the last label received
    play_s: float = 0.0
    rate_scale: float = 1.0
    received_labels: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    #: messages of the extra ``record`` topics, in arrival order
    recorded: dict[str, list[Any]] = field(default_factory=dict, repr=False)
    #: return value of the ``after_play`` hook
    after_play_result: Any = None

    def to_dict(self) -> dict[str, Any]:
        dropped = self.published - self.received
        counts = {
            "rate_scale": self.rate_scale,
            "frames": self.received,
            "published_frames": self.published,
            "received_frames": self.received,
            "dropped_frames": dropped,
            "drop_rate": dropped / self.published if self.published else None,
            "frames_with_gt": self.frames_with_gt,
        }
        # fps: labels received per second of playback, the node's sustained output rate on this stream
        measures = {
            "latency_ms": latency_summary(self.latency),
            "fps": self.received / self.play_s if self.play_s > 0 else None,
        }
        return self._report(counts, measures)


def score_labels(
    result: LiveEvalResult,
    received: Sequence[tuple[float, Any]],
    published: dict[int, float],
    truth: GroundTruth | None,
    strip_rgb: dict[int, np.ndarray],
) -> None:
    """Fill ``result`` from the labels received.

    Args:
        received: (receipt time s, sensor_msgs/Image mono8 labels) in arrival order.
        published: header stamp (ns) -> publish time (s, the same clock) of every image sent.
        truth: ground truth of the bag, or None.
        strip_rgb: stamp -> HxWx3 uint8 RGB of the images kept for the report strip.

    A label whose stamp was not sent (another publisher) or came twice is ignored.
    Raises LiveEvalError when no image was labelled.
    """
    result.published = len(published)
    for t, msg in received:
        ns = stamp_ns(msg.header)
        if ns not in published or ns in result.received_labels:
            continue
        labels = np.array(image_msg_to_numpy(msg), copy=True)
        result.received_labels[ns] = labels
        result.received += 1
        result.latency["end_to_end"].append((t - published[ns]) * 1e3)
        gt = truth.get(ns, labels.shape) if truth is not None else None
        if gt is not None and result.confusion is not None:
            result.confusion.update(gt, labels)
            result.frames_with_gt += 1
        if ns in strip_rgb and strip_rgb[ns].shape[:2] == labels.shape:
            result.strip.append(StripFrame(ns, strip_rgb[ns], labels, gt))
    if result.received == 0:
        raise LiveEvalError(f"the node published no labels for {result.published} images")
    if result.published > result.received:
        result.warnings.append(
            f"{result.published - result.received} of {result.published} frames dropped (no labels received)"
        )
    if truth is not None and result.frames_with_gt == 0:
        result.warnings.append(f"no received labels have the stamp of ground truth on {result.topics.gt}")
