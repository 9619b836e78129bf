"""``seg-perception demo``: the main job, end to end, on any machine.

1. Input: the CamVid test split from ``--data`` in time order (or, when it is absent,
   the project's synthetic RGB-D street sequence with exact labels, depth and truth).
2. ``make-bag``: the frames become a ROS 2 bag (image, camera_info, ground truth; for the
   synthetic sequence also depth, exact occupancy and object positions) at camera rate.
3. ``eval-bag --live``: the real node is started, the bag is played into it over DDS,
   and labels, overlays, occupancy grids and diagnostics are recorded; while the node
   is still up, a few language queries are sent to ``~/segment_query``.
4. ``demo_output/``: overlay, label-colour and grid images per frame, query masks, the
   eval report (Markdown + plots + JSON) and a summary printed to the terminal. With the
   synthetic RGB-D sequence, ``rgbd/``: the labelled point cloud (3D and from above) and
   the depth-aware grid beside the flat-ground grid and the exact occupancy, drawn offline
   from the node's labels and the bag's depth (the live node itself runs without depth).

This module holds the ROS-free half (input frames, pictures, answers, report, summary);
``ros.demo_node`` runs the node and calls the service.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from seg_perception.evaluation.live_result import LiveEvalResult

DEFAULT_QUERIES = ("car", "the car on the left", "all pedestrians", "road", "the red car", "cup")


#: the synthetic demo sequence: scene and size (``synthetic.rgbd_scenes``)
SYNTHETIC = ("street", 360, 480)


def _synthetic_frames(n: int) -> Iterator[tuple[np.ndarray, np.ndarray, Any]]:
    from seg_perception.synthetic.rgbd_scenes import rgbd_sequence

    for f in rgbd_sequence(SYNTHETIC[0], n, SYNTHETIC[1], SYNTHETIC[2]):
        yield f.rgb, f.labels, f


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "query"


def query_answer(index: int, text: str, res: Any, latency_ms: float, out: Path) -> dict[str, Any]:
    """The summary entry of one ``SegmentQuery`` response ``res``; its mask saved under ``out/queries``."""
    import cv2

    from seg_perception.conversions.image import image_msg_to_numpy

    entry = {
        "query": text,
        "found": bool(res.found),
        "matched_class": res.matched_class,
        "score": round(float(res.score), 3),
        "pixel_count": int(res.pixel_count),
        "roi": [res.roi.x_offset, res.roi.y_offset, res.roi.width, res.roi.height],
        "message": res.message,
        "latency_ms": round(latency_ms, 1),
    }
    if res.found and res.mask.height > 0:
        qdir = out / "queries"
        qdir.mkdir(parents=True, exist_ok=True)
        path = qdir / f"{index:02d}_{_slug(text)}.png"
        cv2.imwrite(str(path), np.ascontiguousarray(image_msg_to_numpy(res.mask)))
        entry["mask"] = str(path)
    return entry


def write_frames(result: LiveEvalResult, colors: np.ndarray, out: Path) -> dict[str, int]:
    """Overlay / label-colour / grid PNGs per frame, named by frame index; counts per kind."""
    import cv2

    from seg_perception.conversions.image import image_msg_to_numpy
    from seg_perception.evaluation.bags import stamp_ns
    from seg_perception.evaluation.eval_bag import GRID_TOPIC, OVERLAY_TOPIC
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
        ns = stamp_ns(msg.header)
        if ns in order:
            cv2.imwrite(str(out / "overlay" / f"{order[ns]:05d}.png"), image_msg_to_numpy(msg)[..., ::-1])
            counts["overlay"] += 1
    for msg in result.recorded.get(GRID_TOPIC, []):
        ns = stamp_ns(msg.header)
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


def backend_from_diagnostics(msgs: Iterable[Any]) -> str:
    """The ``backend`` value of the newest DiagnosticArray that has one; 'unknown' otherwise."""
    for arr in reversed(msgs):
        for st in arr.status:
            for kv in st.values:
                if kv.key == "backend":
                    return kv.value
    return "unknown"


def demo_frames(data: Path | None, split: str, limit: int | None) -> tuple[Iterator[tuple[Any, ...]], str, Any]:
    """Frames in time order, a description and the rig (``RgbdRig``; None for CamVid).

    CamVid gives (RGB, labels); the synthetic street (RGB, labels, ``RgbdFrame``) with depth.
    """
    from seg_perception.evaluation.datasets import SegmentationDataset

    if data is not None and (data / f"{split}.txt").exists():
        dataset = SegmentationDataset(data, split, limit=limit, sort=True)
        source = f"CamVid {split} split at {data} ({len(dataset)} frames)"
        return (dataset.load(i) for i in range(len(dataset))), source, None
    from seg_perception.synthetic.rgbd_scenes import rgbd_rig

    n = limit or 60
    rig = rgbd_rig(*SYNTHETIC)
    return _synthetic_frames(n), f"synthetic RGB-D street sequence ({n} frames; CamVid not found at {data})", rig


def write_report(result: LiveEvalResult, summary: dict[str, Any], colors: np.ndarray, out: Path) -> None:
    """``summary.json``, ``report.md``, ``plots/`` and ``queries.json`` in ``out``."""
    from seg_perception.evaluation.bag_report import ReportPaths, write_bag_report

    paths = ReportPaths(out / "summary.json", out / "report.md", out / "plots")
    write_bag_report(
        summary,
        paths,
        title=f"eval-bag: {Path(result.bag).name}",
        confusion=result.confusion,
        latency=result.latency,
        strip=result.strip,
        colors=colors,
    )
    (out / "queries.json").write_text(json.dumps(summary["queries"], indent=2))


def write_tabletop(data: Path | None, model: Path, class_names: tuple[str, ...], out: Path) -> list[dict[str, Any]]:
    """Tabletop queries on scikit-image's photos (``query.tabletop``) with the query engine the service runs.

    Labels come from ``model`` through the ``Segmenter`` (ONNX Runtime, as the node's CPU default).

    The pasted-cups scene uses the first CamVid val frame of ``data`` as its background
    (skipped without CamVid). Pictures and ``sheet.png`` go to ``out``; the answers are returned.
    """
    from seg_perception.backends import create_backend
    from seg_perception.errors import SegPerceptionError
    from seg_perception.evaluation.datasets import SegmentationDataset
    from seg_perception.model_spec import ModelSpec
    from seg_perception.pipeline import Segmenter
    from seg_perception.query import QueryEngine
    from seg_perception.query.tabletop import run_tabletop

    background = None
    if data is not None and (data / "val.txt").exists():
        background = SegmentationDataset(data, "val", limit=1).load(0)[0]
    try:
        with create_backend("onnxruntime", model, num_threads=2) as backend:
            seg = Segmenter(backend, ModelSpec.for_model(model))
            return run_tabletop(QueryEngine(class_names), out, background, lambda rgb: seg.segment(rgb).labels)
    except SegPerceptionError as err:
        return [{"photo": "", "query": "", "error": f"tabletop queries unavailable: {err}"}]


def print_summary(summary: dict[str, Any], model: Path, num_classes: int, out: Path) -> None:
    """The terminal summary of a demo run."""
    lat = summary["latency_ms"].get("end_to_end", {})
    counts = summary["outputs"]
    print("\n== seg_perception demo ==")
    print(f"model     {model.name} ({num_classes} classes)")
    print(f"backend   {summary['backend']}")
    print(
        f"frames    {summary['published_frames']} in, {summary['received_frames']} labelled, "
        f"{summary['dropped_frames']} dropped"
    )
    print(
        f"latency   median {lat.get('median', float('nan')):.1f} ms, p95 {lat.get('p95', float('nan')):.1f} ms "
        "(publish -> labels received, end to end over DDS)"
    )
    if summary.get("miou") is not None:
        print(f"accuracy  mIoU {100 * summary['miou']:.1f} % on {summary['frames_with_gt']} frames with ground truth")
    print(f"outputs   {counts['overlay']} overlays, {counts['labels']} label images, {counts['grid']} grids in {out}/")
    if counts.get("rgbd"):
        print(f"rgb-d     {counts['rgbd']} point-cloud and depth-grid pictures in {out}/rgbd/")
    for q in summary["queries"]:
        if "error" in q:
            print(f"query     {q['query']!r}: {q['error']}")
        else:
            print(f"query     {q['query']!r}: {q['message']} ({q['latency_ms']:.0f} ms)")
    for q in summary.get("tabletop", []):
        if "error" in q:
            print(f"tabletop  {q['photo']} {q['query']!r}: {q['error']}")
        else:
            print(f"tabletop  {q['photo']} {q['query']!r}: {q['message']}")
    if summary.get("tabletop"):
        print(f"pictures  {out}/tabletop/sheet.png (tabletop queries on the bundled photos)")
    print(f"report    {summary['report']}")
