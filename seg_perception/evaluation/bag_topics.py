"""Which topics of a bag an evaluation reads: image, ground truth and camera_info.

When not given:

- ground truth: ``/camera/labels_gt`` when present, else the one Image topic whose name
  ends in ``_gt``/``/gt`` or contains ``ground_truth``; "none" disables it.
- image: the Image/CompressedImage topics minus ground truth, this project's outputs
  (``/seg_perception/...``) and topics whose last name part mentions labels, overlay,
  confidence or mask, and depth topics (``is_depth_name``); ``X/compressed`` is dropped
  when ``X`` is a candidate too. One left: used; several: BagError listing them.
- camera_info: ``<image namespace>/camera_info``, else the bag's only CameraInfo topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from seg_perception.errors import BagError
from seg_perception.evaluation.bags import CAMERA_INFO, GT_TOPIC, IMAGE, IMAGE_TYPES, BagReader

_NOT_CAMERA = ("label", "overlay", "confidence", "mask")


@dataclass(frozen=True)
class BagTopics:
    """The topics an evaluation reads: image (required), ground truth and camera_info (optional)."""

    image: str
    image_type: str
    count: int
    gt: str | None = None
    camera_info: str | None = None


def is_depth_name(topic: str) -> bool:
    """Whether a topic name is a depth camera's (``.../depth/...``, ``..._depth...``, ``aligned_depth_to_color``)."""
    parts = topic.split("/")
    return "depth" in parts or any(p.startswith("aligned_depth") or p.endswith("_depth") for p in parts)


def _is_gt_name(topic: str) -> bool:
    return topic.endswith("_gt") or topic.endswith("/gt") or "ground_truth" in topic


def select_topics(
    reader: BagReader,
    image_topic: str | None = None,
    gt_topic: str | None = None,
    camera_info_topic: str | None = None,
) -> BagTopics:
    """Resolve the topics to use (see the module docstring); BagError naming the alternatives otherwise."""
    topics = reader.topics
    image_topics = reader.image_topics()
    listing = ", ".join(f"{t} ({topics[t].msgtype}, {topics[t].count} msgs)" for t in image_topics) or "none"

    gt: str | None
    if gt_topic is not None and gt_topic.lower() in ("", "none"):
        gt = None
    elif gt_topic is not None:
        if gt_topic not in topics:
            raise BagError(f"ground-truth topic {gt_topic} is not in the bag; image topics: {listing}")
        if topics[gt_topic].msgtype != IMAGE:
            raise BagError(f"ground-truth topic {gt_topic} is {topics[gt_topic].msgtype}; expected {IMAGE} mono8")
        gt = gt_topic
    elif GT_TOPIC in topics and topics[GT_TOPIC].msgtype == IMAGE:
        gt = GT_TOPIC
    else:
        named = [t for t in image_topics if topics[t].msgtype == IMAGE and _is_gt_name(t)]
        gt = named[0] if len(named) == 1 else None

    if image_topic is not None:
        if image_topic not in topics:
            raise BagError(f"image topic {image_topic} is not in the bag; image topics: {listing}")
        if topics[image_topic].msgtype not in IMAGE_TYPES:
            raise BagError(
                f"topic {image_topic} is {topics[image_topic].msgtype}, not an image; image topics: {listing}"
            )
        image = image_topic
    else:
        cands = [
            t
            for t in image_topics
            if t != gt
            and not t.startswith("/seg_perception/")
            and not any(w in t.rsplit("/", 1)[-1] for w in _NOT_CAMERA)
            and not _is_gt_name(t)
            and not is_depth_name(t)
        ]
        cands = [t for t in cands if not (t.endswith("/compressed") and t[: -len("/compressed")] in cands)]
        if not cands:
            raise BagError(f"bag {reader.path} has no camera image topic (image topics: {listing})")
        if len(cands) > 1:
            raise BagError(
                f"bag {reader.path} has several image topics: {', '.join(cands)}; choose one with --image-topic"
            )
        image = cands[0]
    if topics[image].count == 0:
        raise BagError(f"image topic {image} has no messages")

    info: str | None
    if camera_info_topic is not None and camera_info_topic.lower() in ("", "none"):
        info = None
    elif camera_info_topic is not None:
        if camera_info_topic not in topics or topics[camera_info_topic].msgtype != CAMERA_INFO:
            raise BagError(f"camera_info topic {camera_info_topic} is not a {CAMERA_INFO} topic of the bag")
        info = camera_info_topic
    else:
        base = image[: -len("/compressed")] if image.endswith("/compressed") else image
        sibling = base.rsplit("/", 1)[0] + "/camera_info"
        infos = reader.topics_of_type([CAMERA_INFO])
        info = sibling if sibling in infos else (infos[0] if len(infos) == 1 else None)
    return BagTopics(image, topics[image].msgtype, topics[image].count, gt, info)
