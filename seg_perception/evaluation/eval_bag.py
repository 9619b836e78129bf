"""``eval-bag`` (offline): replay a recorded camera stream through the node's Segmenter.

No ROS runtime: the bag is read with ``rosbags``. Every message on the image topic
(sensor_msgs/Image rgb8/bgr8/rgba8/bgra8/mono8, or CompressedImage jpeg/png) is
decoded with the node's conversions and segmented by the same ``Segmenter``. Ground
truth (mono8 class ids on another topic) is matched to images by *header stamp*; topic
choice is ``bag_topics.select_topics``. A truncated bag gives the score of its intact
frames and a ``damage`` entry (see ``bag_salvage``).

Occupancy grid hook: ``grid_fn(labels, camera_info_msg) -> (grid, stats)`` with
``labels`` HxW uint8 class ids, ``camera_info_msg`` a sensor_msgs/CameraInfo (rosbags
dataclass: fields width, height, k, d, header), ``grid`` an int8 (rows, cols) array in
nav_msgs/OccupancyGrid data order (0 free, 100 occupied, -1 unknown) and ``stats`` a
dict of numbers per frame (aggregated as mean/min/max). Optional non-aggregated stats
keys describe the grid for ``--write-bag``: ``resolution`` (m/cell), ``origin_x``,
``origin_y`` (m, corner of cell (0, 0)) and ``frame_id`` (default ``base_link``).

Depth: with an ``rgbd`` evaluator and a depth topic in the bag, each frame's grid is the
depth-aware one (as the node publishes it) and the report gains an ``rgbd`` section
(``rgbd_eval``); a bag without depth evaluates as before.
"""

from __future__ import annotations

import bisect
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from seg_perception.conversions.image import any_image_msg_to_rgb
from seg_perception.errors import BagError, ImageError
from seg_perception.evaluation.bag_score import BagScore
from seg_perception.evaluation.bag_topics import select_topics
from seg_perception.evaluation.bag_writer import BagWriter, Messages
from seg_perception.evaluation.bags import IMAGE, OCCUPANCY_GRID, BagReader, stamp_ns
from seg_perception.evaluation.camera_config import camera_for_image
from seg_perception.evaluation.matching import GroundTruth, StripFrame, strip_indices
from seg_perception.evaluation.metrics import ConfusionMatrix, latency_summary, scalar_stats
from seg_perception.evaluation.rgbd_eval import RgbdEvaluator
from seg_perception.pipeline import Segmenter, overlay

log = logging.getLogger(__name__)

GridFn = Callable[[np.ndarray, Any], tuple[np.ndarray, dict[str, Any]]]

LABELS_TOPIC = "/seg_perception/labels"
OVERLAY_TOPIC = "/seg_perception/overlay"
GRID_TOPIC = "/seg_perception/occupancy_grid"
OUTPUT_TOPICS = (LABELS_TOPIC, OVERLAY_TOPIC, GRID_TOPIC)
STAGES = ("decode", "preprocess", "inference", "postprocess", "grid")
GRID_INFO_KEYS = ("resolution", "origin_x", "origin_y", "frame_id")


@dataclass
class BagEvalResult(BagScore):
    """Outcome of ``evaluate_bag``; ``to_dict`` gives the JSON report body."""

    frames: int = 0
    rejected: int = 0
    total_ms: list[float] = field(default_factory=list)
    grid_stats: dict[str, list[float]] = field(default_factory=dict)
    grid_frames: int = 0
    wall_s: float = 0.0
    written_bag: Path | None = None
    #: the RGB-D section (``RgbdEvaluator.to_dict``); None without depth
    rgbd: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        counts = {"frames": self.frames, "frames_with_gt": self.frames_with_gt, "rejected_frames": self.rejected}
        out: dict[str, Any] = {"latency_ms": latency_summary({**self.latency, "total": self.total_ms})}
        # fps: frames per second of pipeline time (decode..grid), what a node on this machine sustains
        # serially; wall_fps also counts bag reading, scoring and writing.
        busy = float(np.sum(self.total_ms)) / 1e3
        out["fps"] = self.frames / busy if busy > 0 else None
        out["wall_fps"] = self.frames / self.wall_s if self.wall_s > 0 else None
        if self.grid_frames:
            out["grid"] = {"frames": self.grid_frames, **scalar_stats(self.grid_stats)}
        if self.rgbd is not None:
            out["rgbd"] = self.rgbd
        if self.written_bag is not None:
            out["written_bag"] = str(self.written_bag)
        if self.damage is not None:
            out["lost_frames"] = self.damage["lost_by_topic"].get(self.topics.image)  # None: unknown
        return self._report(counts, out)


def evaluate_bag(
    bag: str | Path,
    segmenter: Segmenter,
    *,
    image_topic: str | None = None,
    gt_topic: str | None = None,
    camera_info_topic: str | None = None,
    grid_fn: GridFn | None = None,
    camera_config: str | Path | None = None,
    write_bag: str | Path | None = None,
    write_storage: str = "mcap",
    strip_frames: int = 4,
    progress: bool = True,
    strict: bool = False,
    rgbd: RgbdEvaluator | None = None,
) -> BagEvalResult:
    """Segment every image of ``bag`` and score it against ground truth matched by stamp.

    Args:
        bag: rosbag2 folder, ``.mcap``/``.db3`` file or ROS 1 ``.bag``.
        segmenter: the node's Segmenter with a loaded model.
        image_topic, gt_topic, camera_info_topic: override topic detection ("none" disables gt/info).
        grid_fn: occupancy-grid hook (module docstring); called per frame with the camera_info
            stamped like the image (else the newest before it; or one built from ``camera_config``
            when the bag has none).
        camera_config: node params file with camera_info, used only when the bag lacks camera_info.
        write_bag: also write a bag with the input topics plus labels, overlay (and grid).
        write_storage: "mcap" or "sqlite3" for ``write_bag``.
        strip_frames: how many evenly spaced frames to keep for the report strip.
        progress: show a tqdm progress bar on stderr.
        strict: refuse a truncated bag (BagError) instead of scoring its intact frames.
        rgbd: depth grid and RGB-D scores when the bag has depth (needs ``grid_fn`` and camera_info).

    Raises BagError for missing/corrupt bags, missing topics, no decodable images, ground
    truth of another size than its image, or a ground-truth topic that matches no image.
    """
    spec = segmenter.spec
    bag = Path(bag)
    start = time.perf_counter()
    with BagReader(bag, strict=strict) as reader:
        topics = select_topics(reader, image_topic, gt_topic, camera_info_topic)
        result = BagEvalResult(bag, topics)
        result.latency = {s: [] for s in STAGES if s != "grid" or grid_fn is not None}
        if write_bag is not None and not reader.is_ros2:
            raise BagError("--write-bag needs a ROS 2 input bag (this one is ROS 1)")

        truth = GroundTruth(reader, topics.gt) if topics.gt is not None else None
        if rgbd is not None and (grid_fn is None or not rgbd.attach(reader)):
            rgbd = None
        if truth is not None:
            result.confusion = ConfusionMatrix(spec.num_classes, spec.ignore_index, spec.class_names)
        # CameraInfo is tiny: index it all so each image gets the one with its stamp (or the newest
        # before it) whatever order the recorder stored them in.
        infos: list[tuple[int, Any]] = []
        if grid_fn is not None and topics.camera_info is not None:
            infos = sorted(
                ((stamp_ns(msg.header), msg) for msg in (m.decode() for m in reader.messages([topics.camera_info]))),
                key=lambda x: x[0],
            )
        if grid_fn is not None and topics.camera_info is None and camera_config is None:
            result.warnings.append("no camera_info topic and no --camera-config: occupancy grid skipped")
            grid_fn = None
            result.latency.pop("grid", None)

        keep = strip_indices(topics.count, strip_frames)
        writer = BagWriter(write_bag, write_storage) if write_bag is not None else None
        read_topics = [topics.image]
        info_msg: Any = None
        rejected_reasons: dict[str, int] = {}
        try:
            if writer is not None:
                writer.__enter__()
                # Outputs of an earlier run in the input are replaced, not duplicated.
                copied = [t for t in reader.topics if t not in OUTPUT_TOPICS]
                for name in copied:
                    writer.add_topic(name, reader.topics[name].msgtype, typestore=reader.typestore)
                writer.add_topic(LABELS_TOPIC, IMAGE)
                writer.add_topic(OVERLAY_TOPIC, IMAGE)
                if grid_fn is not None:
                    writer.add_topic(GRID_TOPIC, OCCUPANCY_GRID)
                read_topics = copied
            with tqdm(total=topics.count, desc="eval-bag", unit="frame", disable=not progress) as bar:
                index = -1
                for m in reader.messages(read_topics):
                    if writer is not None:
                        writer.write_raw(m.topic, m.raw, m.log_ns)
                    if m.topic != topics.image:
                        continue
                    index += 1
                    bar.update(1)
                    t0 = time.perf_counter()
                    msg = m.decode()
                    try:
                        rgb = any_image_msg_to_rgb(msg)
                    except ImageError as err:
                        result.rejected += 1
                        rejected_reasons[str(err)] = rejected_reasons.get(str(err), 0) + 1
                        continue
                    t_decode = (time.perf_counter() - t0) * 1e3
                    seg = segmenter.segment(rgb, want_confidence=False)
                    result.frames += 1
                    result.latency["decode"].append(t_decode)
                    frame_ms = t_decode
                    for stage in ("preprocess", "inference", "postprocess"):
                        result.latency[stage].append(seg.timings[stage])
                        frame_ms += seg.timings[stage]
                    ns = stamp_ns(msg.header)
                    gt = truth.get(ns, seg.labels.shape) if truth is not None else None
                    if gt is not None:
                        result.confusion.update(gt, seg.labels)  # type: ignore[union-attr]
                        result.frames_with_gt += 1
                    grid = None
                    grid_info: dict[str, Any] = {}
                    if grid_fn is not None:
                        if infos:
                            info_msg = _camera_info_at(infos, ns)
                        elif info_msg is None and topics.camera_info is None and camera_config is not None:
                            cam, _ = camera_for_image(rgb.shape[1], rgb.shape[0], camera_config)
                            info_msg = (writer.msgs if writer else Messages()).camera_info(cam, msg.header)
                        if info_msg is not None:
                            tg = time.perf_counter()
                            grid, stats = grid_fn(seg.labels, info_msg)
                            grid_ms = (time.perf_counter() - tg) * 1e3
                            result.latency["grid"].append(grid_ms)
                            frame_ms += grid_ms
                            result.grid_frames += 1
                            for key, val in stats.items():
                                if key in GRID_INFO_KEYS:
                                    grid_info[key] = val
                                elif isinstance(val, (int, float, np.number)) and not isinstance(val, bool):
                                    result.grid_stats.setdefault(key, []).append(float(val))
                        if rgbd is not None and info_msg is not None:
                            depth_grid = rgbd.frame(ns, seg.labels, info_msg)
                            grid = depth_grid if depth_grid is not None else grid  # what the node publishes
                    result.total_ms.append(frame_ms)
                    if index in keep:
                        result.strip.append(
                            StripFrame(ns, rgb.copy(), seg.labels.copy(), None if gt is None else gt.copy(), grid)
                        )
                    if writer is not None:
                        _write_outputs(writer, msg.header, m.log_ns, rgb, seg.labels, spec.colors, grid, grid_info)
        except BaseException:
            if writer is not None:
                writer.__exit__(None, None, None)
                if writer.created:  # a partial output bag would pass for a complete one
                    shutil.rmtree(writer.path, ignore_errors=True)
            raise
        if writer is not None:
            writer.__exit__(None, None, None)
        if writer is not None:
            result.written_bag = Path(write_bag)  # type: ignore[arg-type]
    if rgbd is not None:
        result.rgbd = rgbd.to_dict()
    if reader.damage is not None:
        result.damage = reader.damage.to_dict()
        result.warnings.append(reader.damage.describe())
    for reason, n in rejected_reasons.items():
        result.warnings.append(f"{n} image(s) rejected: {reason}")
    if result.frames == 0:
        raise BagError(
            f"no image on {topics.image} could be decoded"
            + (f": {next(iter(rejected_reasons))}" if rejected_reasons else "")
        )
    if topics.gt is not None and result.frames_with_gt == 0:
        msg = f"no ground truth on {topics.gt} has the header stamp of an image on {topics.image}"
        if gt_topic is not None:
            raise BagError(msg)
        result.warnings.append(msg)
    elif topics.gt is not None and result.frames_with_gt < result.frames:
        result.warnings.append(f"{result.frames - result.frames_with_gt} frame(s) have no ground truth")
    result.wall_s = time.perf_counter() - start
    for w in result.warnings:
        log.warning("%s", w)
    return result


def _camera_info_at(infos: list[tuple[int, Any]], ns: int) -> Any:
    """The CameraInfo stamped ``ns``, else the newest before it, else the first (infos sorted by stamp)."""
    i = bisect.bisect_right([s for s, _ in infos], ns)
    return infos[i - 1][1] if i > 0 else infos[0][1]


def _write_outputs(
    writer: BagWriter,
    header: Any,
    log_ns: int,
    rgb: np.ndarray,
    labels: np.ndarray,
    colors: np.ndarray,
    grid: np.ndarray | None,
    grid_info: dict[str, Any],
) -> None:
    """Write labels (mono8), overlay (rgb8) and grid with the input image's header and receive time."""
    msgs = writer.msgs
    hdr = msgs.copy_header(header)
    writer.write(LABELS_TOPIC, msgs.image(labels, "mono8", hdr), log_ns)
    writer.write(OVERLAY_TOPIC, msgs.image(overlay(rgb, labels, colors), "rgb8", hdr), log_ns)
    if grid is not None:
        grid_hdr = msgs.header(stamp_ns(header), str(grid_info.get("frame_id", "base_link")))
        origin = (float(grid_info.get("origin_x", 0.0)), float(grid_info.get("origin_y", 0.0)))
        msg = msgs.occupancy_grid(grid, grid_hdr, float(grid_info.get("resolution", 0.1)), origin)
        writer.write(GRID_TOPIC, msg, log_ns)


__all__ = [
    "GRID_TOPIC",
    "LABELS_TOPIC",
    "OVERLAY_TOPIC",
    "BagEvalResult",
    "GridFn",
    "evaluate_bag",
]
