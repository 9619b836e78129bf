#!/usr/bin/env python3
"""Live-rate benchmark: the real node against the naive 50-line node, same model, frames and rate.

    python scripts/bench_stream.py                 # 20 s per cell, 640x480 and 1280x720 at 30 Hz
    python scripts/bench_stream.py --matrix        # transport matrix: profile x QoS x size

Each cell starts the node under test as its own process and a camera process that
publishes frames (header stamp = wall-clock publish time), publishes camera_info and
records what comes back: labels (and grid and scan in the "grid" cells) and
/diagnostics. Printed per node: frames sent, received by the node, labelled, labelled
fps, end-to-end latency (publish -> labels received) median and p95, node CPU seconds
per frame, peak RSS, and the ratios between the two nodes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seg_perception.ros.transport import PROFILE_ENV_VARS, default_profile_path  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ----------------------------------------------------------------- camera process
def run_camera(args: argparse.Namespace) -> int:
    """The camera side of one cell (a subprocess): stream, collect, print one JSON line."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import OccupancyGrid
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image, LaserScan

    from seg_perception.conversions.image import numpy_to_image_msg
    from seg_perception.ros.stream import PublishSchedule, image_qos, load_frames

    w, h = (int(v) for v in args.size.split("x"))
    frames = load_frames((w, h), args.data if args.data and args.data.is_dir() else None)
    rclpy.init()
    node = rclpy.create_node(f"bench_camera_{os.getpid()}")
    img_pub = node.create_publisher(Image, "/bench/image", image_qos(args.reliability))
    info_pub = node.create_publisher(CameraInfo, "/bench/camera_info", 10)
    lat: list[float] = []
    counts = {"grid": 0, "scan": 0, "node_received": -1}
    stages: dict[str, str] = {}  # the node's last diagnostics: per-stage medians (ms), drop count
    lock = threading.Lock()

    def on_labels(msg: Image) -> None:
        t = time.time_ns()
        counts.setdefault("first_label_ns", t)
        with lock:
            lat.append((t - (msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)) / 1e6)

    def on_diag(msg: DiagnosticArray) -> None:
        for st in msg.status:
            for kv in st.values:
                if kv.key == "frames_received":
                    counts["node_received"] = int(kv.value)
                elif kv.key.endswith("_median_ms") or kv.key in ("frames_dropped", "frames_processed"):
                    stages[kv.key] = kv.value

    node.create_subscription(Image, args.labels_topic, on_labels, 50)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    if args.grid:
        node.create_subscription(
            OccupancyGrid, args.grid_prefix + "occupancy_grid", lambda m: counts.update(grid=counts["grid"] + 1), 10
        )
        node.create_subscription(
            LaserScan, args.grid_prefix + "obstacle_scan", lambda m: counts.update(scan=counts["scan"] + 1), 10
        )
    # Single-threaded: rclpy's multi-threaded executor polls its futures in Python while a callback
    # runs and holds the GIL for so long that this process's publishing loop stalled for up to 2 s
    # (measured from the header stamps), sending frames in bursts that no camera driver sends.
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    end = time.monotonic() + 60
    while img_pub.get_subscription_count() < 1 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.2)
    info = CameraInfo(width=w, height=h, distortion_model="plumb_bob")
    f = 0.8 * w
    info.k = [f, 0.0, (w - 1) / 2, 0.0, f, (h - 1) / 2, 0.0, 0.0, 1.0]
    info.d = [0.0] * 5
    info.header.frame_id = "camera_optical_frame"
    msgs = [numpy_to_image_msg(fr, "rgb8", msg_cls=Image) for fr in frames]
    count = int(args.duration * args.rate)
    print("STREAMING", flush=True)
    period = 1.0 / args.rate
    sent_ns: list[int] = []
    stream_t0 = time.monotonic()
    schedule = PublishSchedule(tolerance_s=period)
    for i in range(count):
        schedule.wait(i * period)
        msg = msgs[i % len(msgs)]
        msg.header.frame_id = "camera_optical_frame"
        now_ns = time.time_ns()
        sent_ns.append(now_ns)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
        img_pub.publish(msg)
        if i % 10 == 0:
            info.header.stamp = msg.header.stamp
            info_pub.publish(info)
    stream_s = time.monotonic() - stream_t0
    gaps = np.diff(np.asarray(sent_ns, dtype=np.float64)) / 1e6
    time.sleep(1.5)  # drain, and one more diagnostics period
    print("DONE", flush=True)
    with lock:
        arr = np.asarray(lat)
    first = counts.pop("first_label_ns", None)
    out = {
        "first_labels_s": (first - args.t0_ns) / 1e9 if first and args.t0_ns else float("nan"),
        "sent": count,
        "stream_s": stream_s,
        "send_gap_p99_ms": float(np.percentile(gaps, 99)) if gaps.size else float("nan"),
        "send_gap_max_ms": float(gaps.max()) if gaps.size else float("nan"),
        "labelled": int(arr.size),
        "median_ms": float(np.median(arr)) if arr.size else float("nan"),
        "p95_ms": float(np.percentile(arr, 95)) if arr.size else float("nan"),
        **counts,
        "node_stages": stages,
    }
    print(json.dumps(out), flush=True)
    ex.shutdown()
    spinner.join(timeout=5)  # a spin thread still inside rclpy at exit aborts the process
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# ------------------------------------------------------------------- orchestrator
def cell_env(profile: bool, domain: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_ENV_VARS}
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(default_profile_path())
    else:  # an empty profile file: Fast DDS defaults, and the node's main does not apply ours
        empty = Path(tempfile.gettempdir()) / "seg_perception_bench_empty_profile.xml"
        # A default participant with nothing set: Fast DDS's built-in transports (512 KiB segment).
        empty.write_text(
            '<?xml version="1.0"?>\n<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">\n'
            '  <participant profile_name="fastdds_defaults" is_default_profile="true"><rtps/></participant>\n'
            "</profiles>\n"
        )
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(empty)
    return env


def run_cell(
    kind: str, size: str, args: argparse.Namespace, grid: bool, profile: bool = True, reliability: str = "best_effort"
) -> dict:
    domain = random.randint(151, 200)
    env = cell_env(profile, domain)
    model = str(args.model)
    if kind == "ours":
        cmd = [sys.executable, "-m", "seg_perception.ros.node", "--ros-args", "-p", f"model_path:={model}"]
        cmd += ["-p", f"qos.reliability:={reliability}", "-p", "diagnostics_period:=0.5"]
        cmd += ["-r", "image:=/bench/image", "-r", "camera_info:=/bench/camera_info"]
        for param in args.param or []:
            cmd += ["-p", param]
        labels, prefix = "/seg_perception/labels", "/seg_perception/"
    else:
        cmd = [
            sys.executable,
            str(ROOT / "scripts" / "naive_seg_node.py"),
            model,
            "--ros-args",
            "-r",
            "image:=/bench/image",
        ]
        labels, prefix = "/naive_seg/labels", "/naive_seg/"
    t0_ns = time.time_ns()
    log = tempfile.TemporaryFile("w+")  # a pipe nobody reads could fill and stall the node
    node = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    cam_cmd = [
        sys.executable,
        __file__,
        "--camera",
        "--size",
        size,
        "--rate",
        str(args.rate),
        "--duration",
        str(args.duration),
    ]
    cam_cmd += ["--reliability", reliability, "--labels-topic", labels, "--grid-prefix", prefix]
    cam_cmd += ["--data", str(args.data), "--t0-ns", str(t0_ns)] + (["--grid"] if grid else [])
    cam = subprocess.Popen(cam_cmd, env=env, stdout=subprocess.PIPE, text=True)
    cpu0 = None
    result: dict = {}
    assert cam.stdout is not None
    for line in cam.stdout:
        line = line.strip()
        if line == "STREAMING":
            cpu0 = cpu_seconds(node.pid)
        elif line == "DONE":
            cpu1 = cpu_seconds(node.pid)
            rss = peak_rss_mib(node.pid)
        elif line.startswith("{"):
            result = json.loads(line)
    cam.wait()
    node.send_signal(signal.SIGINT)
    try:
        node.wait(timeout=15)
    except subprocess.TimeoutExpired:
        node.kill()
        node.wait()
    log.seek(0)
    out = log.read()
    log.close()
    if kind == "naive":
        for line in out.splitlines()[::-1]:
            if line.startswith("{"):
                result["node_received"] = json.loads(line)["received"]
                break
    if cpu0 is None or not result:
        raise SystemExit(f"cell {kind} {size} failed:\n{out[-2000:]}")
    result.update(
        cpu_s_per_frame=(cpu1 - cpu0) / max(1, result["labelled"]),
        peak_rss_mib=rss,
        fps=result["labelled"] / result["stream_s"],
    )
    return result


def fmt(r: dict) -> str:
    return (
        f"sent {r['sent']:4d}  received {r['node_received']:4d}  labelled {r['labelled']:4d}  "
        f"{r['fps']:5.1f} fps  e2e {r['median_ms']:6.1f} / {r['p95_ms']:6.1f} ms  "
        f"cpu {r['cpu_s_per_frame'] * 1e3:5.1f} ms/frame  rss {r['peak_rss_mib']:5.0f} MiB  "
        f"first labels {r['first_labels_s']:.1f} s after start  "
        f"camera gaps p99 / max {r['send_gap_p99_ms']:.0f} / {r['send_gap_max_ms']:.0f} ms"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--camera", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", default="640x480")
    p.add_argument("--sizes", default="640x480,1280x720")
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--duration", type=float, default=20.0, help="seconds per cell")
    p.add_argument("--reliability", default="best_effort")
    p.add_argument("--labels-topic", default="/seg_perception/labels")
    p.add_argument("--grid-prefix", default="/seg_perception/")
    p.add_argument("--grid", action="store_true")
    p.add_argument("--t0-ns", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--matrix", action="store_true", help="transport matrix instead of the node comparison")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "camvid")
    p.add_argument("--model", type=Path, default=ROOT / "models" / "camvid.onnx")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--param", action="append", metavar="NAME:=VALUE", help="extra parameter for our node (repeatable)")
    args = p.parse_args()
    if args.camera:
        return run_camera(args)
    results: dict = {}
    if args.matrix:
        print(
            f"transport matrix: our node, {args.rate:g} Hz, {args.duration:g} s per cell (received / labelled of sent)"
        )
        for size in ("480x360", "640x480", "1280x720"):
            for reliability in ("best_effort", "reliable"):
                for profile in (False, True):
                    r = run_cell("ours", size, args, grid=False, profile=profile, reliability=reliability)
                    key = f"{size} {reliability} {'profile' if profile else 'default'}"
                    results[key] = r
                    print(
                        f"  {key:34s} received {r['node_received']:4d}/{r['sent']}  labelled {r['labelled']:4d}",
                        flush=True,
                    )
    else:
        for size in args.sizes.split(","):
            for grid in (False, True):
                name = f"{size} {'labels+grid+scan' if grid else 'labels only'}"
                print(f"{name}, {args.rate:g} Hz, {args.duration:g} s, shipped profile:", flush=True)
                pair = {k: run_cell(k, size, args, grid) for k in ("ours", "naive")}
                for k, r in pair.items():
                    print(f"  {k:5s} {fmt(r)}", flush=True)
                o, n = pair["ours"], pair["naive"]
                ratios = {
                    "fps": o["fps"] / max(n["fps"], 1e-9),
                    "median": o["median_ms"] / n["median_ms"],
                    "cpu/frame": o["cpu_s_per_frame"] / n["cpu_s_per_frame"],
                    "rss": o["peak_rss_mib"] / n["peak_rss_mib"],
                }
                extra = f"  grids {o['grid']} scans {o['scan']}" if grid else ""
                print("  ours/naive: " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()) + extra, flush=True)
                results[name] = pair
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
