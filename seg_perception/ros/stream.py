"""A camera stand-in: publishes real frames as sensor_msgs/Image at a fixed rate.

Used by ``scripts/bench_stream.py`` and the transport tests, and handy on a robot to
check the image path without a camera:

    python -m seg_perception.ros.stream --topic image --size 640x480 --rate 30 --count 600

Frames come from a CamVid-layout folder (``--data``, resized to ``--size``) or, without
one, from the synthetic street renderer. Each header stamp is the wall-clock publish
time (``time.time_ns()``), so a receiver on the same host measures end-to-end latency
as ``receipt wall time - stamp``. At the end it prints one JSON line with the count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from seg_perception.ros.transport import apply_default_profile


def load_frames(size: tuple[int, int], data: Path | None = None, count: int = 30) -> list[np.ndarray]:
    """``count`` HxWx3 uint8 RGB frames of ``size`` = (width, height)."""
    w, h = size
    frames: list[np.ndarray] = []
    if data is not None:
        from seg_perception.evaluation.datasets import SegmentationDataset

        ds = SegmentationDataset(data, "val")
        for i in range(min(count, len(ds))):
            frames.append(cv2.resize(ds.load(i)[0], (w, h), interpolation=cv2.INTER_LINEAR))
    if not frames:
        from seg_perception.synthetic.street import render_street

        for seed in range(min(count, 8)):
            frames.append(cv2.resize(render_street(seed).rgb, (w, h), interpolation=cv2.INTER_LINEAR))
    return frames


class PublishSchedule:
    """Wall-clock pacing of a publisher: ``wait(offset_s)`` sleeps until ``offset_s`` after the start.

    A caller more than ``tolerance_s`` behind (its process stalled) shifts the rest of the
    schedule by its lateness instead of catching up: a camera skips ahead, it never sends the
    frames it owes in a burst (a burst overflows the node's queue). ``clock`` and ``sleep``
    are ``time.monotonic``-like seconds and ``time.sleep`` (tests pass their own).
    """

    def __init__(
        self,
        tolerance_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.tolerance_s = float(tolerance_s)
        self._clock, self._sleep = clock, sleep
        self.start = clock()  # moves later by each shift

    def wait(self, offset_s: float) -> None:
        delay = self.start + offset_s - self._clock()
        if delay > 0:
            self._sleep(delay)
        elif delay < -self.tolerance_s:
            self.start -= delay


def image_qos(reliability: str, depth: int = 5):
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    rel = ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=rel)


def stream(
    topic: str,
    frames: list[np.ndarray],
    rate: float,
    count: int,
    reliability: str = "best_effort",
    wait_subscribers: int = 1,
    wait_s: float = 20.0,
    frame_id: str = "camera_optical_frame",
) -> int:
    """Publish ``count`` frames at ``rate`` Hz on ``topic``; returns how many were published.

    Waits up to ``wait_s`` for ``wait_subscribers`` matched subscriptions first, and
    then 0.5 s more so discovery settles on every endpoint.
    """
    import rclpy
    from sensor_msgs.msg import Image

    from seg_perception.conversions.image import numpy_to_image_msg

    apply_default_profile()
    rclpy.init()
    node = rclpy.create_node("seg_perception_stream")
    try:
        pub = node.create_publisher(Image, topic, image_qos(reliability))
        end = time.monotonic() + wait_s
        while pub.get_subscription_count() < wait_subscribers and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.5)
        msgs = [numpy_to_image_msg(f, "rgb8", msg_cls=Image) for f in frames]
        for m in msgs:
            m.header.frame_id = frame_id
        period = 1.0 / rate
        schedule = PublishSchedule(tolerance_s=period)
        for i in range(count):
            schedule.wait(i * period)
            msg = msgs[i % len(msgs)]
            now = time.time_ns()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
            pub.publish(msg)
        time.sleep(0.3)  # let the last samples leave before the participant goes
        return count
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--topic", default="image")
    p.add_argument("--size", default="640x480", help="WIDTHxHEIGHT")
    p.add_argument("--rate", type=float, default=30.0, help="frames per second")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--reliability", choices=("best_effort", "reliable"), default="best_effort")
    p.add_argument("--data", type=Path, default=None, help="CamVid-layout folder (val frames are used)")
    p.add_argument("--wait-subscribers", type=int, default=1)
    args = p.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f"--size must be WIDTHxHEIGHT, got {args.size!r}")
    frames = load_frames((w, h), args.data)
    sent = stream(args.topic, frames, args.rate, args.count, args.reliability, args.wait_subscribers)
    print(json.dumps({"sent": sent, "size": [w, h], "rate": args.rate}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
