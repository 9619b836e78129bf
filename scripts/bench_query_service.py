#!/usr/bin/env python3
"""~/segment_query latency over DDS while the node streams at 15 Hz, and image throughput with and without queries.

For each mode (lexicon only: query.embeddings=disabled; embeddings: query.embeddings=auto,
waiting until the model is loaded) the real node is started, CamVid test frames (or
synthetic ones) are published at 15 Hz for --seconds without queries (baseline label
rate), then again while a client calls the service back to back. Prints median/p95
client-call-to-response latency and the label rate ratio (with / without queries).

    python scripts/bench_query_service.py [--seconds 20] [--model models/camvid.onnx]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LEXICON = ["car", "the car on the left", "all pedestrians", "road", "the red car", "the nearest person", "sidewalk"]
EMBEDDING = ["cabriolet", "the sedan on the left", "tarmac", "lamppost", "passers-by", "foliage", "hatchback"]


def frames(n: int) -> list[np.ndarray]:
    import cv2

    data = ROOT.parent / "shared" / "datasets" / "camvid"
    if (data / "test.txt").exists():
        names = sorted(line.split()[0] for line in (data / "test.txt").read_text().splitlines() if line.strip())
        return [cv2.cvtColor(cv2.imread(str(data / n.lstrip("/"))), cv2.COLOR_BGR2RGB) for n in names[:n]]
    from seg_perception.synthetic.street import street_sequence

    return [s.rgb for s in street_sequence(1, n)]


def run_mode(
    name: str,
    embeddings: str,
    queries: list[str],
    imgs: list[np.ndarray],
    args: argparse.Namespace,
    period: float = 0.05,
) -> dict:
    """Start the node; stream ``imgs`` at 15 Hz without, then with a client asking every ``period`` s."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from seg_perception.conversions.image import numpy_to_image_msg
    from seg_perception.srv import SegmentQuery

    exe = ROOT / "install" / "seg_perception" / "lib" / "seg_perception" / "segmentation_node"
    node_proc = subprocess.Popen(
        [str(exe), "--ros-args", "-p", f"model_path:={args.model}", "-p", f"query.embeddings:={embeddings}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    threading.Thread(target=lambda: [log.append(ln) for ln in node_proc.stdout], daemon=True).start()
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node(f"bench_query_{os.getpid()}", context=ctx)
    got: list[float] = []
    node.create_subscription(Image, "/seg_perception/labels", lambda m: got.append(time.monotonic()), 10)
    pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
    client = node.create_client(SegmentQuery, "/seg_perception/segment_query")
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    try:
        if not client.wait_for_service(timeout_sec=60):
            raise SystemExit("service did not come up:\n" + "\n".join(log[-10:]))
        if embeddings == "auto":
            end = time.monotonic() + 120
            while not any("embeddings: active" in ln for ln in log) and time.monotonic() < end:
                time.sleep(0.2)
        msgs = [numpy_to_image_msg(im, "rgb8", msg_cls=Image) for im in imgs]

        def stream(seconds: float) -> float:
            start_n, t0, k = len(got), time.monotonic(), 0
            while time.monotonic() - t0 < seconds:
                m = msgs[k % len(msgs)]
                m.header.stamp.sec, m.header.stamp.nanosec = k // 15, (k % 15) * 66_000_000
                pub.publish(m)
                k += 1
                time.sleep(max(0.0, t0 + k / 15.0 - time.monotonic()))
            time.sleep(0.5)
            return (len(got) - start_n) / seconds

        stream(3.0)  # warm-up: first frames, lazy allocations
        base_rate = stream(args.seconds)
        lat: list[float] = []
        stop = threading.Event()

        def hammer() -> None:
            rng = random.Random(0)
            while not stop.is_set():
                t = time.perf_counter()
                fut = client.call_async(SegmentQuery.Request(query=rng.choice(queries)))
                while not fut.done():
                    time.sleep(0.0005)
                lat.append((time.perf_counter() - t) * 1e3)
                time.sleep(period)  # 0.05 s: a busy manipulation stack, ~15 queries/s

        th = threading.Thread(target=hammer)
        th.start()
        q_rate = stream(args.seconds)
        stop.set()
        th.join()
        return {
            "mode": name,
            "queries": len(lat),
            "median_ms": statistics.median(lat),
            "p95_ms": float(np.percentile(lat, 95)),
            "rate_without": base_rate,
            "rate_with": q_rate,
        }
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        node_proc.send_signal(2)
        node_proc.wait(timeout=15)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "camvid.onnx"))
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(101, 150)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    imgs = frames(args.frames)
    rows = [
        run_mode("lexicon (embeddings disabled)", "disabled", LEXICON, imgs, args),
        run_mode("embeddings (all-MiniLM-L6-v2)", "auto", LEXICON + EMBEDDING, imgs, args),
    ]
    print(
        f"\n~/segment_query at {imgs[0].shape[0]}x{imgs[0].shape[1]}, node streaming at 15 Hz ({args.seconds:g} s each)"
    )
    print(f"{'mode':<34}{'queries':>8}{'median ms':>11}{'p95 ms':>9}{'Hz w/o q':>10}{'Hz with q':>11}{'ratio':>7}")
    for r in rows:
        print(
            f"{r['mode']:<34}{r['queries']:>8}{r['median_ms']:>11.1f}{r['p95_ms']:>9.1f}{r['rate_without']:>10.2f}"
            f"{r['rate_with']:>11.2f}{r['rate_with'] / max(r['rate_without'], 1e-9):>7.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
