"""``eval-bag --live``: the real node, fed a bag over ROS at the recorded rate, judged on what it publishes.

The ROS side of the live replay (rclpy is imported inside ``evaluate_bag_live`` only);
the scoring is ``evaluation.live_result``. Steps:

1. Start the node as a subprocess:
   ``python -m seg_perception.ros.node --ros-args -p model_path:=M -p backend:=B
   -r image:=<image topic> -r camera_info:=<camera_info topic>`` (for a CompressedImage
   topic: ``-p image_transport:=compressed -r image/compressed:=<topic>``), plus any
   ``--node-arg name:=value``.
2. Wait until it subscribes to the image topic and advertises ``/seg_perception/labels``.
3. Play the image and camera_info messages of the bag (their raw CDR bytes, as ``ros2
   bag play`` does) on their original topics, paced by receive time divided by
   ``rate_scale``; ground truth is not played, it is matched to received labels by stamp.
4. Record every ``/seg_perception/labels`` message; end-to-end latency = receipt time -
   publish time of the image with the same header stamp (one monotonic clock, this process).
5. After the last image, wait until all labels arrived or none came for ``drain_s``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from seg_perception.conversions.image import any_image_msg_to_rgb
from seg_perception.errors import BagError, ImageError
from seg_perception.evaluation.bag_topics import BagTopics, select_topics
from seg_perception.evaluation.bags import COMPRESSED, BagReader, stamp_ns
from seg_perception.evaluation.live_result import LiveEvalError, LiveEvalResult, score_labels
from seg_perception.evaluation.matching import GroundTruth, strip_indices
from seg_perception.evaluation.metrics import ConfusionMatrix
from seg_perception.model_spec import ModelSpec
from seg_perception.ros.stream import PublishSchedule
from seg_perception.ros.transport import apply_default_profile

log = logging.getLogger(__name__)

LABELS_TOPIC = "/seg_perception/labels"
NODE_MODULE = "seg_perception.ros.node"
#: Later than this behind the replay schedule (seconds), the schedule shifts rather than catching up.
_LATE_S = 0.02


class _NodeProcess:
    """The segmentation node in a subprocess, its output kept for error messages."""

    def __init__(self, cmd: list[str]) -> None:
        self.cmd = cmd
        self.lines: list[str] = []
        try:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except OSError as err:
            raise LiveEvalError(f"cannot start the node ({' '.join(cmd)}): {err}") from err
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout or ():
            self.lines.append(line.rstrip())

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.lines[-n:]) or "(no output)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: rclpy shuts down cleanly
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)


def _node_loading(diagnostics: list[Any]) -> bool:
    """True until the node's diagnostics say it is not loading anything in the background any more."""
    for arr in reversed(diagnostics):
        for status in arr.status:
            if status.name.startswith("seg_perception"):
                values = {kv.key: kv.value for kv in status.values}
                return values.get("query_embeddings", "").startswith("loading")
    return True


def node_command(
    model_path: Path,
    backend: str,
    topics: BagTopics,
    node_args: list[str] | None = None,
    params_file: str | Path | None = None,
) -> list[str]:
    """The command line that starts the node on ``topics`` of a bag (``params_file`` first, then overrides)."""
    cmd = [sys.executable, "-m", NODE_MODULE, "--ros-args"]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    cmd += ["-p", f"model_path:={model_path}"]
    cmd += ["-p", f"backend:={backend}"]
    if topics.image_type == COMPRESSED:
        cmd += ["-p", "image_transport:=compressed", "-r", f"image/compressed:={topics.image}"]
    else:
        cmd += ["-r", f"image:={topics.image}"]
    if topics.camera_info:
        cmd += ["-r", f"camera_info:={topics.camera_info}"]
    for arg in node_args or []:
        if ":=" not in arg:
            raise LiveEvalError(f"--node-arg must be name:=value, got {arg!r}")
        cmd += ["-p", arg]
    return cmd


def evaluate_bag_live(
    bag: str | Path,
    model_path: Path,
    *,
    backend: str = "auto",
    image_topic: str | None = None,
    gt_topic: str | None = None,
    camera_info_topic: str | None = None,
    rate_scale: float = 1.0,
    startup_timeout: float = 60.0,
    drain_s: float = 3.0,
    node_args: list[str] | None = None,
    strip_frames: int = 4,
    progress: bool = True,
    record: dict[str, type] | None = None,
    after_play: Any = None,
    params_file: str | Path | None = None,
    strict: bool = False,
) -> LiveEvalResult:
    """Play ``bag`` into a freshly started node and score its labels (see the module docstring).

    ``record`` maps extra topics (e.g. ``/seg_perception/overlay``) to message types to
    subscribe to and keep in ``result.recorded``; subscribing is what makes the node
    compute on-demand outputs. ``after_play(client_node)`` runs after the last label
    arrived while the node is still up (e.g. to call its services); its return value
    is kept in ``result.after_play_result``. ``strict`` refuses a truncated bag.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    if not rate_scale > 0:
        raise LiveEvalError(f"--rate-scale must be > 0, got {rate_scale}")
    spec = ModelSpec.for_model(model_path)
    bag = Path(bag)
    with BagReader(bag, strict=strict) as reader:
        if not reader.is_ros2:
            raise BagError("--live plays raw CDR messages and needs a ROS 2 bag (this one is ROS 1)")
        topics = select_topics(reader, image_topic, gt_topic, camera_info_topic)
        truth = GroundTruth(reader, topics.gt) if topics.gt else None
        result = LiveEvalResult(bag, topics, rate_scale=rate_scale)
        if truth is not None:
            result.confusion = ConfusionMatrix(spec.num_classes, spec.ignore_index, spec.class_names)

        # The node subprocess inherits it; both ends need it for frames above 512 KiB.
        apply_default_profile()
        context = rclpy.Context()
        rclpy.init(context=context)
        node_proc: _NodeProcess | None = None
        executor = None
        try:
            node = rclpy.create_node(f"seg_perception_eval_{os.getpid()}", context=context)
            reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
            image_pub = node.create_publisher(
                CompressedImage if topics.image_type == COMPRESSED else Image, topics.image, reliable
            )
            info_pub = node.create_publisher(CameraInfo, topics.camera_info, reliable) if topics.camera_info else None
            received: list[tuple[float, Any]] = []
            lock = threading.Lock()

            def on_labels(msg: Image) -> None:
                t = time.perf_counter()
                with lock:
                    received.append((t, msg))

            labels_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
            labels_sub = node.create_subscription(Image, LABELS_TOPIC, on_labels, labels_qos)
            from diagnostic_msgs.msg import DiagnosticArray

            diagnostics: list[Any] = []
            node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
            for topic, msg_type in (record or {}).items():
                store = result.recorded.setdefault(topic, [])
                node.create_subscription(msg_type, topic, store.append, labels_qos)
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            spin = threading.Thread(target=executor.spin, daemon=True)
            spin.start()

            node_proc = _NodeProcess(node_command(model_path, backend, topics, node_args, params_file))
            deadline = time.monotonic() + startup_timeout
            while not (image_pub.get_subscription_count() > 0 and labels_sub.get_publisher_count() > 0):
                if node_proc.proc.poll() is not None:
                    raise LiveEvalError(
                        f"the node exited with code {node_proc.proc.returncode} before it was ready:\n"
                        + node_proc.tail()
                    )
                if time.monotonic() > deadline:
                    raise LiveEvalError(
                        f"the node did not subscribe to {topics.image} and advertise {LABELS_TOPIC} within "
                        f"{startup_timeout:g} s (is ROS_DOMAIN_ID shared with this process?):\n{node_proc.tail()}"
                    )
                time.sleep(0.05)
            time.sleep(0.3)  # let discovery settle in both directions
            # A node still loading its query embedding model in the background is not in its steady
            # state (the load competes for the CPU and the GIL): wait for it, as a robot would.
            while time.monotonic() < deadline and _node_loading(diagnostics):
                if node_proc.proc.poll() is not None:
                    break
                time.sleep(0.1)

            published: dict[int, float] = {}
            keep = strip_indices(topics.count, strip_frames)
            strip_rgb: dict[int, np.ndarray] = {}
            play_topics = [topics.image] + ([topics.camera_info] if topics.camera_info else [])
            first_log: int | None = None
            schedule = PublishSchedule(_LATE_S, clock=time.perf_counter)
            index = -1
            with tqdm(total=topics.count, desc="eval-bag --live", unit="frame", disable=not progress) as bar:
                for m in reader.messages(play_topics):
                    if first_log is None:
                        first_log = m.log_ns
                    schedule.wait((m.log_ns - first_log) / 1e9 / rate_scale)
                    if m.topic == topics.camera_info and info_pub is not None:
                        info_pub.publish(bytes(m.raw))
                        continue
                    index += 1
                    msg = m.decode()
                    ns = stamp_ns(msg.header)
                    if index in keep:
                        try:
                            strip_rgb[ns] = any_image_msg_to_rgb(msg)
                        except ImageError:
                            pass
                    published[ns] = time.perf_counter()
                    image_pub.publish(bytes(m.raw))
                    bar.update(1)
            if node_proc.proc.poll() is not None:
                raise LiveEvalError(
                    f"the node exited during playback (code {node_proc.proc.returncode}):\n{node_proc.tail()}"
                )
            last_count, last_change = -1, time.perf_counter()
            while True:
                with lock:
                    n = len(received)
                now = time.perf_counter()
                if n != last_count:
                    last_count, last_change = n, now
                if n >= len(published) or now - last_change > drain_s:
                    break
                time.sleep(0.02)
            if after_play is not None:
                time.sleep(0.2)  # the last outputs of the extra topics follow the labels
                result.after_play_result = after_play(node)
        finally:
            if node_proc is not None:
                node_proc.stop()
            if executor is not None:
                executor.shutdown()
            rclpy.try_shutdown(context=context)

        with lock:
            got = list(received)
        if got:  # first image sent .. last label received
            result.play_s = max(t for t, _ in got) - schedule.start
        try:
            score_labels(result, got, published, truth, strip_rgb)
        except LiveEvalError as err:
            raise LiveEvalError(f"{err}:\n{node_proc.tail() if node_proc else ''}") from err
    if reader.damage is not None:
        result.damage = reader.damage.to_dict()
        result.warnings.append(reader.damage.describe())
    for w in result.warnings:
        log.warning("%s", w)
    return result
