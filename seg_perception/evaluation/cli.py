"""Subcommands ``eval``, ``make-bag`` and ``eval-bag`` of ``seg-perception``.

All three load the model the way the node does (``ModelSpec.for_model`` + backend
selection + ``Segmenter``) and never pre- or post-process images themselves.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from seg_perception.errors import ConfigError, ModelError
from seg_perception.model_spec import ModelSpec, default_model_path

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- shared helpers


def resolve_model_path(model: str | None) -> Path:
    """``--model`` or the bundled default; ModelError with a hint when the file is missing."""
    if model:
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        return path
    path = default_model_path()
    if not path.is_file():
        raise ModelError(f"the bundled default model {path} is not there yet; pass --model PATH")
    return path


@contextmanager
def open_segmenter(model: str | None, backend: str = "auto") -> Iterator[tuple[Any, dict[str, str]]]:
    """(Segmenter, {"model", "backend", "backend_name"}) for ``model`` on ``backend``; closes the backend after."""
    from seg_perception.backends.select import select_backend
    from seg_perception.pipeline import Segmenter

    path = resolve_model_path(model)
    spec = ModelSpec.for_model(path)
    selection = select_backend(backend, path)
    with selection.backend as be:
        log.debug("%s", selection.summary)  # select_backend already logs its choice at INFO
        info = {"model": str(path), "backend": be.description, "backend_name": be.name}
        yield Segmenter(be, spec), info


def make_grid_fn(spec: ModelSpec, camera_config: str | None) -> Any:
    """Occupancy-grid hook for ``eval-bag``: a ``grid_fn(labels, camera_info_msg) -> (grid, stats)`` or None.

    HOOK for the geometry package (connected by the lead): build it from the model's
    drivable/obstacle classes and the camera pose and grid parameters of the node params
    file ``camera_config`` (None = the default config). See ``eval_bag`` for the exact
    contract of grid_fn. Returning None disables grid statistics and the grid topic.
    """
    from seg_perception.assembly import build_mapper, grid_stats
    from seg_perception.evaluation.bags import default_camera_config_path
    from seg_perception.node_config import NodeConfig

    path = Path(camera_config) if camera_config else default_camera_config_path()
    cfg = NodeConfig.from_yaml(path) if path.exists() else NodeConfig()
    mapper = build_mapper(cfg, spec)

    def grid_fn(labels: Any, camera_info_msg: Any) -> tuple[Any, dict[str, Any]]:
        mapper.set_camera_info(camera_info_msg)
        out = mapper.process(labels)
        g = mapper.grid
        meta = {"resolution": g.resolution, "origin_x": g.x_min, "origin_y": g.y_min, "frame_id": g.frame_id}
        return out.grid, {**grid_stats(out.grid), **meta}

    return grid_fn


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="ONNX model (YAML beside it); default: the bundled models/camvid.onnx")
    p.add_argument("--backend", default="auto", help="auto, onnxruntime, tensorrt or torch (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


# --------------------------------------------------------------------------- eval


def _cmd_eval(args: argparse.Namespace) -> int:
    from seg_perception.evaluation.datasets import SegmentationDataset
    from seg_perception.evaluation.eval_dataset import evaluate_dataset
    from seg_perception.evaluation.report import plot_confusion, plot_iou_bars, write_json

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
        f"mIoU {_pct(summary['miou'])}, pixel accuracy {_pct(summary['pixel_accuracy'])} over {result.frames} "
        f"frames of {args.split} ({fps:.1f} frames/s, {info['backend']}) -> {args.json}"
        if fps
        else f"mIoU {_pct(summary['miou'])} over {result.frames} frames -> {args.json}"
    )
    return 0


# --------------------------------------------------------------------------- make-bag


def _cmd_make_bag(args: argparse.Namespace) -> int:
    from seg_perception.evaluation.bags import make_bag
    from seg_perception.evaluation.datasets import SegmentationDataset

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


# --------------------------------------------------------------------------- eval-bag


def _report_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    json_path = Path(args.json)
    report = Path(args.report) if args.report else json_path.with_suffix(".md")
    plots = Path(args.plots) if args.plots else json_path.parent / f"{json_path.stem}_plots"
    return report, plots


def write_bag_report(summary: dict[str, Any], result: Any, colors: Any, args: argparse.Namespace) -> None:
    """Plots, Markdown report and JSON of an eval-bag run (offline or live)."""
    from seg_perception.evaluation.report import (
        plot_confusion,
        plot_frame_strip,
        plot_iou_bars,
        plot_latency_hist,
        write_json,
        write_markdown,
    )

    report, plots_dir = _report_paths(args)
    plots: dict[str, Path] = {}
    if getattr(args, "no_plots", False):
        pass
    elif "miou" in summary and result.confusion is not None:
        plots["per-class IoU"] = plot_iou_bars(
            summary["per_class_iou"], plots_dir / "per_class_iou.png", summary["miou"], colors=colors
        )
        plots["confusion matrix"] = plot_confusion(result.confusion, plots_dir / "confusion_matrix.png")
    if not getattr(args, "no_plots", False):
        samples = dict(result.latency)
        if getattr(result, "total_ms", None):
            samples["total"] = result.total_ms
        plots["latency"] = plot_latency_hist(samples, plots_dir / "latency.png")
        if result.strip:
            plots["frames"] = plot_frame_strip(result.strip, colors, plots_dir / "frames.png", title=str(result.bag))
    summary["plots"] = {k: str(v) for k, v in plots.items()}
    summary["report"] = str(report)
    write_markdown(report, summary, plots, title=f"eval-bag: {Path(result.bag).name}")
    write_json(args.json, summary)


def _cmd_eval_bag(args: argparse.Namespace) -> int:
    if args.live:
        if args.write_bag:
            raise ConfigError("--write-bag works offline only; record the live node's topics with ros2 bag record")
        # rclpy is imported only here: the offline path needs no ROS runtime.
        from seg_perception.evaluation.live import run_live

        return run_live(args)
    from seg_perception.evaluation.eval_bag import evaluate_bag

    with open_segmenter(args.model, args.backend) as (segmenter, info):
        spec = segmenter.spec
        result = evaluate_bag(
            args.bag,
            segmenter,
            image_topic=args.image_topic,
            gt_topic=args.gt_topic,
            camera_info_topic=args.camera_info_topic,
            grid_fn=make_grid_fn(spec, args.camera_config),
            camera_config=args.camera_config,
            write_bag=args.write_bag,
            write_storage=args.write_format,
            progress=not args.no_progress,
        )
    summary = {"mode": "offline", **info, **result.to_dict()}
    write_bag_report(summary, result, spec.colors, args)
    lat = summary["latency_ms"].get("total", {})
    acc = (
        f"mIoU {_pct(summary['miou'])} on {result.frames_with_gt} frames with ground truth"
        if "miou" in summary
        else ("no ground truth")
    )
    print(
        f"{result.frames} frames from {result.topics.image}: {acc}; latency median {lat.get('median', 0):.1f} ms, "
        f"p95 {lat.get('p95', 0):.1f} ms -> {args.json}"
        + (f"; wrote {result.written_bag}" if result.written_bag else "")
    )
    return 0


# --------------------------------------------------------------------------- registration


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval``, ``make-bag`` and ``eval-bag`` to the ``seg-perception`` parser."""
    p = subparsers.add_parser(
        "eval",
        help="mIoU of the model on a CamVid-layout dataset split",
        description="Run the node's segmentation pipeline over DIR/<split>.txt and write mIoU, per-class IoU, "
        "pixel accuracy and speed as JSON. Void (the model's ignore_index) and label ids >= the class count are "
        "ignored; mIoU is the mean per-class IoU of one confusion matrix over all images; classes absent from "
        "both ground truth and predictions are null and left out of the mean.",
    )
    p.add_argument("--data", required=True, help="dataset folder (CamVid layout)")
    p.add_argument("--split", default="test", help="split name: DIR/<split>.txt (default test)")
    p.add_argument("--json", required=True, help="output JSON file")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    p.add_argument("--plots", default=None, help="folder for confusion-matrix and per-class IoU PNGs")
    _add_model_args(p)
    p.set_defaults(func=_cmd_eval)

    p = subparsers.add_parser(
        "make-bag",
        help="write a dataset split as a ROS 2 bag (camera stream with ground truth)",
        description="Write DIR/<split>.txt as a camera stream: /camera/image_raw (rgb8), /camera/camera_info, "
        "/camera/labels_gt (mono8, same header), optionally /camera/image_raw/compressed; frames in name order, "
        "stamps advancing at --rate.",
    )
    p.add_argument("--data", required=True, help="dataset folder (CamVid layout)")
    p.add_argument("--split", default="test", help="split name (default test)")
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
    p.add_argument("--limit", type=int, default=None, help="only the first N frames")
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
    p.add_argument("--json", required=True, help="output JSON file")
    p.add_argument("--image-topic", default=None, help="image topic (default: the bag's only camera image topic)")
    p.add_argument("--gt-topic", default=None, help="ground-truth mono8 topic (default /camera/labels_gt; 'none')")
    p.add_argument("--camera-info-topic", default=None, help="CameraInfo topic (default: beside the image topic)")
    p.add_argument("--camera-config", default=None, help="node params YAML (camera_info fallback, grid parameters)")
    p.add_argument("--write-bag", default=None, help="also write a bag with the input plus /seg_perception/* outputs")
    p.add_argument("--write-format", choices=("mcap", "sqlite3"), default="mcap", help="storage of --write-bag")
    p.add_argument("--report", default=None, help="Markdown report (default: JSON path with .md)")
    p.add_argument("--plots", default=None, help="plot folder (default: <json stem>_plots beside the JSON)")
    p.add_argument("--no-plots", action="store_true", help="JSON and Markdown only (plots take seconds)")
    p.add_argument("--live", action="store_true", help="run the real ROS node and play the bag into it")
    p.add_argument("--rate-scale", type=float, default=1.0, help="--live: playback speed factor (default 1)")
    p.add_argument(
        "--startup-timeout", type=float, default=60.0, help="--live: seconds to wait for the node to come up"
    )
    p.add_argument("--node-arg", action="append", default=[], help="--live: extra '-p name:=value' for the node")
    _add_model_args(p)
    p.set_defaults(func=_cmd_eval_bag)
