"""The ROS side of ``seg-perception demo``: the live replay with recorded outputs and service calls.

The frames, pictures, report and summary are ``seg_perception.demo`` (ROS-free).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from seg_perception import demo
from seg_perception.evaluation.bag_writer import make_bag
from seg_perception.evaluation.camera_config import default_camera_config_path
from seg_perception.evaluation.eval_bag import GRID_TOPIC, OVERLAY_TOPIC
from seg_perception.evaluation.rgbd_bag import write_params
from seg_perception.evaluation.session import resolve_model_path
from seg_perception.model_spec import ModelSpec
from seg_perception.ros.live_eval import evaluate_bag_live

QUERY_SERVICE = "/seg_perception/segment_query"


def call_queries(node: Any, queries: tuple[str, ...], out: Path) -> list[dict[str, Any]]:
    """Call ``~/segment_query`` for each phrase from ``node``; masks saved under ``out``; the answers."""
    try:
        from seg_perception.srv import SegmentQuery
    except ImportError:
        return [{"query": q, "error": "SegmentQuery service type not built (run make setup)"} for q in queries]

    client = node.create_client(SegmentQuery, QUERY_SERVICE)
    if not client.wait_for_service(timeout_sec=10.0):
        return [{"query": q, "error": f"service {QUERY_SERVICE} not available"} for q in queries]
    answers = []
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
        answers.append(demo.query_answer(i, text, res, ms, out))
    return answers


def run_demo(
    *,
    out: Path,
    data: Path | None,
    split: str = "test",
    frames: int | None = None,
    rate_hz: float = 30.0,
    model: str | None = None,
    backend: str = "auto",
    camera_config: str | None = None,
    queries: tuple[str, ...] = demo.DEFAULT_QUERIES,
    node_args: list[str] | None = None,
    progress: bool = True,
) -> int:
    """Bag the frames, play them into the live node, call the queries, write ``out``; the exit code."""
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import OccupancyGrid
    from sensor_msgs.msg import Image

    for sub in ("overlay", "labels", "grid", "queries", "rgbd", "tabletop"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    model_path = resolve_model_path(model).resolve()
    spec = ModelSpec.for_model(model_path)
    stream, source, rig = demo.demo_frames(data, split, frames)
    print(f"demo input: {source}")

    config = Path(camera_config) if camera_config else default_camera_config_path()
    config_path = config if config.exists() else None
    bag = out / "demo_bag"
    shutil.rmtree(bag, ignore_errors=True)
    made = make_bag(
        stream, bag, rate_hz=rate_hz, camera_config=config_path, camera=rig.intrinsics if rig is not None else None
    )
    if rig is not None and camera_config is None:
        config_path = write_params(bag, rig.node_params())  # the synthetic rig's pose, grid and camera
    print(f"bag: {made.path} ({made.frames} frames at {rate_hz:g} Hz; camera_info from {made.camera_source})")

    result = evaluate_bag_live(
        bag,
        model_path,
        backend=backend,
        rate_scale=1.0,
        progress=progress,
        node_args=node_args,
        record={OVERLAY_TOPIC: Image, GRID_TOPIC: OccupancyGrid, "/diagnostics": DiagnosticArray},
        after_play=lambda node: call_queries(node, queries, out),
        params_file=config_path,
    )
    counts = demo.write_frames(result, spec.colors, out)
    if rig is not None:
        counts["rgbd"] = len(_rgbd_pictures(bag, result.received_labels, spec, config_path, out / "rgbd"))
    backend_name = demo.backend_from_diagnostics(result.recorded.get("/diagnostics", []))
    summary = {"mode": "live", "source": source, "model": str(model_path), "backend": backend_name}
    summary |= result.to_dict()
    summary["outputs"] = counts
    summary["queries"] = result.after_play_result or []
    summary["tabletop"] = demo.write_tabletop(data, model_path, spec.class_names, out / "tabletop")
    demo.write_report(result, summary, spec.colors, out)
    demo.print_summary(summary, model_path, spec.num_classes, out)
    return 0


def _rgbd_pictures(bag: Path, labels: dict[int, Any], spec: ModelSpec, config: Path | None, out: Path) -> list[Path]:
    """Point-cloud and grid pictures of a few frames (the node's labels, the bag's depth; offline)."""
    from seg_perception.assembly import build_mapper
    from seg_perception.evaluation.camera_config import camera_for_image
    from seg_perception.evaluation.rgbd_pictures import write_rgbd_pictures
    from seg_perception.node_config import NodeConfig

    cfg = NodeConfig.from_yaml(config) if config is not None else NodeConfig()
    first = next(iter(labels.values()), None)
    if first is None:
        return []
    intr, _ = camera_for_image(first.shape[1], first.shape[0], config)
    return write_rgbd_pictures(bag, labels, build_mapper(cfg, spec), intr, spec.colors, out)
