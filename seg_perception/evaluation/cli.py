"""Subcommands ``eval``, ``make-bag``, ``eval-bag`` and ``demo`` of ``seg-perception``.

The model is loaded by ``evaluation.session``; ``eval-bag --live`` and ``demo`` run the
ROS side in ``ros.live_eval`` and ``ros.demo_node`` (imported only when used).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from seg_perception import demo
from seg_perception.backends.cli import add_model_args
from seg_perception.errors import ConfigError, SegPerceptionError
from seg_perception.evaluation.session import make_grid_fn, make_rgbd_evaluator, open_segmenter, resolve_model_path

if TYPE_CHECKING:
    from seg_perception.evaluation.bag_report import ReportPaths


def _add_model_args(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_dataset_args(p: argparse.ArgumentParser, data_required: bool = True) -> None:
    p.add_argument("--data", required=data_required, help="dataset folder (CamVid layout)")
    p.add_argument("--split", default="test", help="split name: DIR/<split>.txt (default test)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N samples")


def add_bag_args(p: argparse.ArgumentParser) -> None:
    """The topic, camera and report options of ``eval-bag`` and ``eval-bags`` (see ``topic_overrides``)."""
    p.add_argument("--json", required=True, help="output JSON file")
    p.add_argument("--image-topic", default=None, help="image topic (default: the bag's only camera image topic)")
    p.add_argument("--gt-topic", default=None, help="ground-truth mono8 topic (default /camera/labels_gt; 'none')")
    p.add_argument("--camera-info-topic", default=None, help="CameraInfo topic (default: beside the image topic)")
    p.add_argument("--camera-config", default=None, help="node params YAML (camera_info fallback, grid parameters)")
    p.add_argument("--report", default=None, help="Markdown report (default: JSON path with .md)")
    p.add_argument("--plots", default=None, help="plot folder (default: <json stem>_plots beside the JSON)")
    p.add_argument("--no-plots", action="store_true", help="JSON and Markdown only (plots take seconds)")


def topic_overrides(args: argparse.Namespace) -> dict[str, str | None]:
    """``image_topic``, ``gt_topic`` and ``camera_info_topic`` keyword arguments from ``add_bag_args`` options."""
    return {"image_topic": args.image_topic, "gt_topic": args.gt_topic, "camera_info_topic": args.camera_info_topic}


def report_paths(args: argparse.Namespace) -> ReportPaths:
    """Where the report of ``add_bag_args`` options goes."""
    from seg_perception.evaluation.bag_report import ReportPaths

    return ReportPaths.beside(args.json, args.report, args.plots, no_plots=args.no_plots)


# --------------------------------------------------------------------------- eval


def _cmd_eval(args: argparse.Namespace) -> int:
    from seg_perception.evaluation.datasets import SegmentationDataset
    from seg_perception.evaluation.eval_dataset import evaluate_dataset
    from seg_perception.evaluation.report import pct, plot_confusion, plot_iou_bars, write_json

    dataset = SegmentationDataset(args.data, args.split, limit=args.limit)
    with open_segmenter(args.model, args.backend) as (segmenter, info):
        result = evaluate_dataset(dataset, segmenter, progress=not args.no_progress)
        colors = segmenter.spec.colors
    summary = {"data": str(dataset.root), "split": args.split, **info, **result.to_dict()}
    if args.plots:
        plots_dir = Path(args.plots)
        summary["plots"] = {
            "confusion_matrix": str(plot_confusion(result.confusion, plots_dir / "confusion_matrix.png")),
            "per_class_iou": str(
                plot_iou_bars(summary["per_class_iou"], plots_dir / "per_class_iou.png", summary["miou"], colors=colors)
            ),
        }
    write_json(args.json, summary)
    fps = summary.get("fps")
    print(
        f"mIoU {pct(summary['miou'])}, pixel accuracy {pct(summary['pixel_accuracy'])} over {result.frames} "
        f"frames of {args.split} ({fps:.1f} frames/s, {info['backend']}) -> {args.json}"
        if fps
        else f"mIoU {pct(summary['miou'])} over {result.frames} frames -> {args.json}"
    )
    return 0


# --------------------------------------------------------------------------- make-bag


def _cmd_make_bag(args: argparse.Namespace) -> int:
    from seg_perception.evaluation.bag_writer import make_bag
    from seg_perception.evaluation.datasets import SegmentationDataset

    if args.synthetic:
        return _make_synthetic_bag(args)
    if args.data is None:
        raise ConfigError("make-bag needs --data DIR (a CamVid-layout dataset) or --synthetic SCENE")
    if args.depth:
        raise ConfigError("--depth: a CamVid-layout dataset has no depth; use --synthetic SCENE for an RGB-D bag")
    # Natural name order keeps each sequence together and its frames in time order.
    dataset = SegmentationDataset(args.data, args.split, limit=args.limit, sort=True)
    bar = tqdm(total=len(dataset), desc="make-bag", unit="frame", disable=args.no_progress)

    def frames() -> Iterator[tuple[Any, Any]]:
        for i in range(len(dataset)):
            yield dataset.load(i)

    with bar:
        result = make_bag(
            frames(),
            args.out,
            rate_hz=args.rate,
            storage=args.format,
            compressed=args.compressed,
            camera_config=args.camera_config,
            frame_id=args.frame_id,
            on_frame=lambda _n: bar.update(1),
        )
    print(
        f"wrote {result.frames} frames ({result.duration_s:.2f} s at {args.rate:g} Hz, {result.storage}) to "
        f"{result.path}: {', '.join(result.topics)}; camera_info from {result.camera_source}"
    )
    return 0


def _make_synthetic_bag(args: argparse.Namespace) -> int:
    """``make-bag --synthetic``: an RGB-D sequence with depth, exact truth and the rig's params file."""
    from seg_perception.evaluation.bag_writer import make_bag
    from seg_perception.evaluation.rgbd_bag import write_params
    from seg_perception.synthetic.rgbd_scenes import rgbd_rig, rgbd_sequence

    if args.data is not None:
        raise ConfigError("--synthetic and --data exclude each other")
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError as err:
        raise ConfigError(f"--size must be WIDTHxHEIGHT, got {args.size!r}") from err
    n = args.limit or 30
    rig = rgbd_rig(args.synthetic, height, width)
    bar = tqdm(total=n, desc="make-bag", unit="frame", disable=args.no_progress)
    frames = ((f.rgb, f.labels, f) for f in rgbd_sequence(args.synthetic, n, height, width))
    with bar:
        result = make_bag(
            frames,
            args.out,
            rate_hz=args.rate,
            storage=args.format,
            compressed=args.compressed,
            frame_id=args.frame_id,
            on_frame=lambda _n: bar.update(1),
            camera=rig.intrinsics,
        )
    params = write_params(result.path, rig.node_params())
    print(
        f"wrote {result.frames} synthetic RGB-D frames ({args.synthetic}, {width}x{height}, {args.rate:g} Hz, "
        f"{result.storage}) to {result.path}: {', '.join(result.topics)}; rig parameters in {params}"
    )
    return 0


# --------------------------------------------------------------------------- eval-bag


def _cmd_eval_bag(args: argparse.Namespace) -> int:
    if args.live:
        if args.write_bag:
            raise ConfigError("--write-bag works offline only; record the live node's topics with ros2 bag record")
        return _cmd_eval_bag_live(args)
    from seg_perception.evaluation.bag_report import write_bag_report
    from seg_perception.evaluation.eval_bag import evaluate_bag
    from seg_perception.evaluation.report import pct
    from seg_perception.evaluation.rgbd_bag import params_beside
    from seg_perception.evaluation.rgbd_eval import rgbd_markdown

    config = args.camera_config
    if config is None and params_beside(args.bag) is not None:
        config = str(params_beside(args.bag))
        print(f"camera and grid parameters from {config} (the bag's rig; --camera-config overrides)")
    with open_segmenter(args.model, args.backend) as (segmenter, info):
        spec = segmenter.spec
        result = evaluate_bag(
            args.bag,
            segmenter,
            **topic_overrides(args),
            grid_fn=make_grid_fn(spec, config),
            rgbd=make_rgbd_evaluator(spec, config, args.depth_topic),
            camera_config=config,
            write_bag=args.write_bag,
            write_storage=args.write_format,
            progress=not args.no_progress,
            strict=args.strict,
        )
    summary = {"mode": "offline", **info, **result.to_dict()}
    write_bag_report(
        summary,
        report_paths(args),
        title=f"eval-bag: {Path(result.bag).name}",
        confusion=result.confusion,
        latency={**result.latency, **({"total": result.total_ms} if result.total_ms else {})},
        strip=result.strip,
        colors=spec.colors,
        appendix=rgbd_markdown(result.rgbd),
    )
    lat = summary["latency_ms"].get("total", {})
    acc = (
        f"mIoU {pct(summary['miou'])} on {result.frames_with_gt} frames with ground truth"
        if "miou" in summary
        else ("no ground truth")
    )
    print(
        f"{result.frames} frames from {result.topics.image}: {acc}; latency median {lat.get('median', 0):.1f} ms, "
        f"p95 {lat.get('p95', 0):.1f} ms -> {args.json}"
        + (f"; wrote {result.written_bag}" if result.written_bag else "")
        + _rgbd_line(result.rgbd)
    )
    return 0


def _rgbd_line(section: dict[str, Any] | None) -> str:
    """The terminal line's RGB-D part: depth-grid and flat-grid range errors and the position error."""
    if not section:
        return ""
    parts = [f"; depth on {section['frames_with_depth']} frames"]
    for name in ("depth", "flat"):
        err = section.get(f"{name}_grid", {}).get("obstacle_range_error_m")
        if err is not None:
            parts.append(f"{name} grid obstacle range error {100 * err:.1f} cm")
    pos = section.get("positions") or {}
    if pos.get("median_error_m") is not None:
        parts.append(f"position error median {100 * pos['median_error_m']:.1f} cm ({pos['found']}/{pos['objects']})")
    return ", ".join(parts)


def _cmd_eval_bag_live(args: argparse.Namespace) -> int:
    """``eval-bag --live``: rclpy is imported only here; the offline path needs no ROS runtime."""
    from seg_perception.evaluation.bag_report import write_bag_report
    from seg_perception.evaluation.report import pct
    from seg_perception.model_spec import ModelSpec
    from seg_perception.ros.live_eval import evaluate_bag_live

    model_path = resolve_model_path(args.model).resolve()
    result = evaluate_bag_live(
        args.bag,
        model_path,
        backend=args.backend,
        **topic_overrides(args),
        rate_scale=args.rate_scale,
        startup_timeout=args.startup_timeout,
        node_args=args.node_arg,
        progress=not args.no_progress,
        params_file=args.camera_config,
        strict=args.strict,
    )
    summary = {"mode": "live", "model": str(model_path), "backend": args.backend, **result.to_dict()}
    write_bag_report(
        summary,
        report_paths(args),
        title=f"eval-bag: {Path(result.bag).name}",
        confusion=result.confusion,
        latency=result.latency,
        strip=result.strip,
        colors=ModelSpec.for_model(model_path).colors,
    )
    lat = summary["latency_ms"].get("end_to_end", {})
    acc = f"mIoU {pct(summary['miou'])}" if "miou" in summary else "no ground truth"
    print(
        f"live: {result.received}/{result.published} frames labelled ({summary['dropped_frames']} dropped); {acc}; "
        f"end-to-end latency median {lat.get('median', 0):.1f} ms, p95 {lat.get('p95', 0):.1f} ms -> {args.json}"
    )
    return 0


# --------------------------------------------------------------------------- demo


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        from seg_perception.ros.demo_node import run_demo
    except ImportError as err:
        raise SegPerceptionError(f"the demo needs ROS 2 (rclpy); run `make setup` first ({err})") from err
    return run_demo(
        out=Path(args.out),
        data=Path(args.data) if args.data else None,
        split=args.split,
        frames=args.frames,
        rate_hz=args.rate,
        model=args.model,
        backend=args.backend,
        camera_config=args.camera_config,
        queries=tuple(args.query) if args.query else demo.DEFAULT_QUERIES,
        node_args=list(args.node_arg or []),
        progress=not args.no_progress,
    )


# --------------------------------------------------------------------------- registration


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval``, ``make-bag``, ``eval-bag`` and ``demo`` to the ``seg-perception`` parser."""
    p = subparsers.add_parser(
        "eval",
        help="mIoU of the model on a CamVid-layout dataset split",
        description="Run the node's segmentation pipeline over DIR/<split>.txt and write mIoU, per-class IoU, "
        "pixel accuracy and speed as JSON. Void (the model's ignore_index) and label ids >= the class count are "
        "ignored; mIoU is the mean per-class IoU of one confusion matrix over all images; classes absent from "
        "both ground truth and predictions are null and left out of the mean.",
    )
    _add_dataset_args(p)
    p.add_argument("--json", required=True, help="output JSON file")
    p.add_argument("--plots", default=None, help="folder for confusion-matrix and per-class IoU PNGs")
    _add_model_args(p)
    p.set_defaults(func=_cmd_eval)

    p = subparsers.add_parser(
        "make-bag",
        help="write a dataset split as a ROS 2 bag (camera stream with ground truth)",
        description="Write DIR/<split>.txt as a camera stream: /camera/image_raw (rgb8), /camera/camera_info, "
        "/camera/labels_gt (mono8, same header), optionally /camera/image_raw/compressed; frames in name order, "
        "stamps advancing at --rate. --synthetic SCENE writes an exact RGB-D sequence instead: also "
        "/camera/aligned_depth_to_color/image_raw (16UC1 mm, registered to the colour image), /truth/occupancy_grid "
        "(exact occupancy around base_link), /truth/objects (MarkerArray: visible objects' centres and extents, "
        "optical frame) and seg_perception.yaml (the rig's node parameters) in the bag folder. CamVid has no depth.",
    )
    _add_dataset_args(p, data_required=False)
    p.add_argument(
        "--synthetic",
        choices=("street", "overhang", "ramp"),
        default=None,
        help="write a synthetic RGB-D sequence (depth + exact truth) instead of --data; --limit = frames (default 30)",
    )
    p.add_argument("--size", default="480x360", help="--synthetic: image WIDTHxHEIGHT (default %(default)s)")
    p.add_argument(
        "--depth",
        action="store_true",
        help="write depth: only --synthetic has it (always written there); CamVid has no depth",
    )
    p.add_argument("--out", required=True, help="output bag folder (must not exist)")
    p.add_argument("--rate", type=float, default=15.0, help="frame rate in Hz (default 15)")
    p.add_argument("--format", choices=("mcap", "sqlite3"), default="mcap", help="storage (default mcap)")
    p.add_argument(
        "--compressed",
        nargs="?",
        const="jpeg",
        choices=("jpeg", "png"),
        default=None,
        help="also write /camera/image_raw/compressed (jpeg unless 'png' is given)",
    )
    p.add_argument(
        "--camera-config",
        default=None,
        help="node params YAML with camera_info.{width,height,k,d} (default config/camvid.yaml; else a 62 deg pinhole)",
    )
    p.add_argument("--frame-id", default="camera_optical_frame", help="header frame_id")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_make_bag)

    p = subparsers.add_parser(
        "eval-bag",
        help="replay a bag through the pipeline: accuracy, latency, report",
        description="Offline (default): decode every image of BAG, run the node's pipeline, match ground truth "
        "by header stamp, and write JSON, a Markdown report and plots. --live: run the real node and play the bag "
        "into it over ROS.",
    )
    p.add_argument("bag", help="rosbag2 folder, .mcap/.db3 file or ROS 1 .bag")
    add_bag_args(p)
    p.add_argument("--write-bag", default=None, help="also write a bag with the input plus /seg_perception/* outputs")
    p.add_argument("--write-format", choices=("mcap", "sqlite3"), default="mcap", help="storage of --write-bag")
    p.add_argument(
        "--depth-topic",
        default=None,
        help="offline: depth Image topic (default /camera/aligned_depth_to_color/image_raw or the one "
        "'depth' topic; 'none'); --live ignores depth",
    )
    p.add_argument("--live", action="store_true", help="run the real ROS node and play the bag into it")
    p.add_argument("--rate-scale", type=float, default=1.0, help="--live: playback speed factor (default 1)")
    p.add_argument(
        "--startup-timeout", type=float, default=60.0, help="--live: seconds to wait for the node to come up"
    )
    p.add_argument("--node-arg", action="append", default=[], help="--live: extra '-p name:=value' for the node")
    p.add_argument(
        "--strict", action="store_true", help="refuse a truncated or damaged bag instead of reading its intact part"
    )
    _add_model_args(p)
    p.set_defaults(func=_cmd_eval_bag)

    p = subparsers.add_parser(
        "demo",
        help="stream CamVid test (or synthetic) frames through the live node; write demo_output/",
        description=demo.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", default="../shared/datasets/camvid", help="CamVid-layout folder (default: %(default)s)")
    p.add_argument("--split", default="test")
    p.add_argument("--frames", type=int, default=None, help="use only the first N frames")
    p.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz (default: %(default)s)")
    p.add_argument("--out", default="demo_output")
    p.add_argument("--camera-config", default=None, help="camera YAML (default: config/camvid.yaml)")
    p.add_argument("--query", action="append", help="a query phrase (repeatable; default: a few examples)")
    p.add_argument("--node-arg", action="append", help="extra node parameter name:=value (repeatable)")
    _add_model_args(p)
    p.set_defaults(func=_cmd_demo)
