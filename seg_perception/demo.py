"""``seg-perception demo``: the main job, end to end, on any machine.

1. Input: the CamVid test split from ``--data`` in time order (or, when it is absent,
   the project's synthetic street sequence with exact labels).
2. ``make-bag``: the frames become a ROS 2 bag (image, camera_info, ground truth) at
   camera rate.
3. ``eval-bag --live``: the real node is started, the bag is played into it over DDS,
   and labels, overlays, occupancy grids and diagnostics are recorded; while the node
   is still up, a few language queries are sent to ``~/segment_query``.
4. ``demo_output/``: overlay, label-colour and grid images per frame, query masks, the
   eval report (Markdown + plots + JSON) and a summary printed to the terminal.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from seg_perception.errors import SegPerceptionError

DEFAULT_QUERIES = ("car", "the car on the left", "all pedestrians", "road", "the red car", "cup")
GRID_TOPIC = "/seg_perception/occupancy_grid"
OVERLAY_TOPIC = "/seg_perception/overlay"


def _synthetic_frames(n: int, height: int = 360, width: int = 480) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    from seg_perception.synthetic.street import street_sequence

    for scene in street_sequence(seed=7, n_frames=n, height=height, width=width):
        yield scene.rgb, scene.labels


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "query"


def _call_queries(node: Any, queries: tuple[str, ...], out: Path) -> list[dict[str, Any]]:
    """Call ~/segment_query for each phrase; save masks; return the answers (runs inside the live session)."""
    try:
        from seg_perception.srv import SegmentQuery
    except ImportError:
        return [{"query": q, "error": "SegmentQuery service type not built (run make setup)"} for q in queries]
    from seg_perception.conversions.image import image_msg_to_numpy

    client = node.create_client(SegmentQuery, "/seg_perception/segment_query")
    if not client.wait_for_service(timeout_sec=10.0):
        return [{"query": q, "error": "service /seg_perception/segment_query not available"} for q in queries]
    answers = []
    qdir = out / "queries"
    qdir.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(queries):
        t0 = time.perf_counter()
        future = client.call_async(SegmentQuery.Request(query=text))
        end = time.monotonic() + 10.0
        while not future.done() and time.monotonic() < end:
            time.sleep(0.005)
        ms = (time.perf_counter() - t0) * 1e3
        res = future.result() if future.done() else None
        if res is None:
            answers.append({"query": text, "error": "no answer within 10 s"})
            continue
        entry = {
            "query": text,
            "found": bool(res.found),
            "matched_class": res.matched_class,
            "score": round(float(res.score), 3),
            "pixel_count": int(res.pixel_count),
            "roi": [res.roi.x_offset, res.roi.y_offset, res.roi.width, res.roi.height],
            "message": res.message,
            "latency_ms": round(ms, 1),
        }
        if res.found and res.mask.height > 0:
            path = qdir / f"{i:02d}_{_slug(text)}.png"
            cv2.imwrite(str(path), np.ascontiguousarray(image_msg_to_numpy(res.mask)))
            entry["mask"] = str(path)
        answers.append(entry)
    return answers


def _stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def _write_frames(result: Any, colors: np.ndarray, out: Path) -> dict[str, int]:
    """Overlay / label-colour / grid PNGs per frame, named by frame index."""
    from seg_perception.conversions.image import image_msg_to_numpy
    from seg_perception.evaluation.report import grid_to_rgb
    from seg_perception.pipeline import colorize

    order = {ns: i for i, ns in enumerate(sorted(result.received_labels))}
    counts = {"labels": 0, "overlay": 0, "grid": 0}
    for sub in counts:
        (out / sub).mkdir(parents=True, exist_ok=True)
    for ns, labels in result.received_labels.items():
        cv2.imwrite(str(out / "labels" / f"{order[ns]:05d}.png"), colorize(labels, colors)[..., ::-1])
        counts["labels"] += 1
    for msg in result.recorded.get(OVERLAY_TOPIC, []):
        ns = _stamp_ns(msg)
        if ns in order:
            cv2.imwrite(str(out / "overlay" / f"{order[ns]:05d}.png"), image_msg_to_numpy(msg)[..., ::-1])
            counts["overlay"] += 1
    for msg in result.recorded.get(GRID_TOPIC, []):
        ns = _stamp_ns(msg)
        if ns in order:
            grid = np.asarray(msg.data, dtype=np.int8).reshape(msg.info.height, msg.info.width)
            # Grid rows are y (left), columns x (forward): show forward up and left on the left.
            img = np.ascontiguousarray(grid_to_rgb(grid[::-1, ::-1].T))
            res, ox, oy = msg.info.resolution, msg.info.origin.position.x, msg.info.origin.position.y
            i = int(msg.info.width - 1 - (0.0 - ox) / res)
            j = int(msg.info.height - 1 - (0.0 - oy) / res)
            if 0 <= i < img.shape[0] and 0 <= j < img.shape[1]:  # the robot (grid origin) as a red marker
                cv2.circle(img, (j, i), 3, (255, 0, 0), -1)
            img = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(out / "grid" / f"{order[ns]:05d}.png"), img[..., ::-1])
            counts["grid"] += 1
    return counts


def _backend_from_diagnostics(msgs: list[Any]) -> str:
    for arr in reversed(msgs):
        for st in arr.status:
            for kv in st.values:
                if kv.key == "backend":
                    return kv.value
    return "unknown"


def run_demo(args: argparse.Namespace) -> int:
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import OccupancyGrid
    from sensor_msgs.msg import Image

    from seg_perception.evaluation.bags import make_bag
    from seg_perception.evaluation.cli import resolve_model_path, write_bag_report
    from seg_perception.evaluation.datasets import SegmentationDataset
    from seg_perception.evaluation.live import evaluate_bag_live
    from seg_perception.model_spec import ModelSpec

    out = Path(args.out)
    for sub in ("overlay", "labels", "grid", "queries"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    model = resolve_model_path(args.model).resolve()
    spec = ModelSpec.for_model(model)

    data = Path(args.data) if args.data else None
    if data is not None and (data / f"{args.split}.txt").exists():
        dataset = SegmentationDataset(data, args.split, limit=args.frames, sort=True)
        frames: Any = (dataset.load(i) for i in range(len(dataset)))
        source = f"CamVid {args.split} split at {data} ({len(dataset)} frames)"
    else:
        n = args.frames or 60
        frames = _synthetic_frames(n)
        source = f"synthetic street sequence ({n} frames; CamVid not found at {data})"
    print(f"demo input: {source}")

    from seg_perception.evaluation.bags import default_camera_config_path

    camera_config = Path(args.camera_config) if args.camera_config else default_camera_config_path()
    camera_config = camera_config if camera_config.exists() else None
    bag = out / "demo_bag"
    shutil.rmtree(bag, ignore_errors=True)
    made = make_bag(frames, bag, rate_hz=args.rate, camera_config=camera_config)
    print(f"bag: {made.path} ({made.frames} frames at {args.rate:g} Hz; camera_info from {made.camera_source})")

    queries = tuple(args.query) if args.query else DEFAULT_QUERIES
    result = evaluate_bag_live(
        bag,
        model,
        backend=args.backend,
        rate_scale=1.0,
        progress=not args.no_progress,
        node_args=list(args.node_arg or []),
        record={OVERLAY_TOPIC: Image, GRID_TOPIC: OccupancyGrid, "/diagnostics": DiagnosticArray},
        after_play=lambda node: _call_queries(node, queries, out),
        params_file=camera_config,
    )
    counts = _write_frames(result, spec.colors, out)
    backend = _backend_from_diagnostics(result.recorded.get("/diagnostics", []))
    summary = {"mode": "live", "source": source, "model": str(model), "backend": backend, **result.to_dict()}
    summary["outputs"] = counts
    summary["queries"] = result.after_play_result or []
    report_args = argparse.Namespace(
        json=str(out / "summary.json"), report=str(out / "report.md"), plots=str(out / "plots"), no_plots=False
    )
    write_bag_report(summary, result, spec.colors, report_args)
    (out / "queries.json").write_text(json.dumps(summary["queries"], indent=2))

    lat = summary["latency_ms"].get("end_to_end", {})
    print("\n== seg_perception demo ==")
    print(f"model     {model.name} ({spec.num_classes} classes)")
    print(f"backend   {backend}")
    print(f"frames    {result.published} in, {result.received} labelled, {summary['dropped_frames']} dropped")
    print(
        f"latency   median {lat.get('median', float('nan')):.1f} ms, p95 {lat.get('p95', float('nan')):.1f} ms "
        "(publish -> labels received, end to end over DDS)"
    )
    if summary.get("miou") is not None:
        print(f"accuracy  mIoU {100 * summary['miou']:.1f} % on {result.frames_with_gt} frames with ground truth")
    print(f"outputs   {counts['overlay']} overlays, {counts['labels']} label images, {counts['grid']} grids in {out}/")
    for q in summary["queries"]:
        if "error" in q:
            print(f"query     {q['query']!r}: {q['error']}")
        else:
            print(f"query     {q['query']!r}: {q['message']} ({q['latency_ms']:.0f} ms)")
    print(f"report    {summary['report']}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="stream CamVid test (or synthetic) frames through the live node; write demo_output/",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", default="../shared/datasets/camvid", help="CamVid-layout folder (default: %(default)s)")
    p.add_argument("--split", default="test")
    p.add_argument("--frames", type=int, default=None, help="use only the first N frames")
    p.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz (default: %(default)s)")
    p.add_argument("--out", default="demo_output")
    p.add_argument("--model", default=None, help="ONNX model (default: the bundled model)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--camera-config", default=None, help="camera YAML (default: config/camvid.yaml)")
    p.add_argument("--query", action="append", help="a query phrase (repeatable; default: a few examples)")
    p.add_argument("--node-arg", action="append", help="extra node parameter name:=value (repeatable)")
    p.add_argument("--no-progress", action="store_true")

    def handler(args: argparse.Namespace) -> int:
        try:
            return run_demo(args)
        except ImportError as err:
            raise SegPerceptionError(f"the demo needs ROS 2 (rclpy); run `make setup` first ({err})") from err

    p.set_defaults(func=handler)
