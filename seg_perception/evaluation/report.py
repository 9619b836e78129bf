"""Plots (matplotlib, Agg canvas, no GUI) and Markdown reports for ``eval`` and ``eval-bag``.

Figures are drawn on ``matplotlib.figure.Figure`` objects with an Agg canvas rather than
through ``pyplot``, so no global backend is switched and nothing needs a display.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.errors import SegPerceptionError
from seg_perception.evaluation.metrics import ConfusionMatrix
from seg_perception.pipeline import UNKNOWN_LABEL, colorize


class ReportError(SegPerceptionError):
    """A report or plot file cannot be written."""


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, bbox_inches="tight")
    except OSError as err:
        raise ReportError(f"cannot write plot {path}: {err.strerror or err}") from err
    return path


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as indented JSON (NaN written as null)."""
    path = Path(path)

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return clean(v.item())
        if isinstance(v, Path):
            return str(v)
        return v

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(clean(dict(data)), indent=2) + "\n")
    except OSError as err:
        raise ReportError(f"cannot write {path}: {err.strerror or err}") from err
    return path


def plot_confusion(cm: ConfusionMatrix, path: str | Path, title: str = "Confusion matrix") -> Path:
    """Row-normalized confusion matrix (rows: ground truth, columns: prediction) as a PNG.

    Each row sums to 1 over the ground-truth pixels of that class; the last column is
    "unknown" (predictions outside the classes) when any pixel has one.
    """
    counts = cm.counts.astype(np.float64)
    names = list(cm.class_names)
    if counts[:, -1].sum() > 0:
        names_x = [*names, "unknown"]
    else:
        counts = counts[:, :-1]
        names_x = names
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(names)
    size = max(4.0, 0.55 * len(names_x) + 2.0)
    fig = _figure(size, max(3.5, 0.55 * k + 1.5))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of ground-truth pixels")
    ax.set_xticks(range(len(names_x)), names_x, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title(title)
    if k <= 30:
        for i in range(k):
            for j in range(len(names_x)):
                if norm[i, j] >= 0.01:
                    ax.text(
                        j,
                        i,
                        f"{norm[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    return _save(fig, Path(path))


def plot_iou_bars(
    per_class_iou: Mapping[str, float | None],
    path: str | Path,
    miou: float | None = None,
    colors: np.ndarray | None = None,
    title: str = "Per-class IoU",
) -> Path:
    """Horizontal bars of per-class IoU (0..1; missing classes shown as 'n/a') with the mIoU line."""
    names = list(per_class_iou)
    vals = [per_class_iou[n] for n in names]
    fig = _figure(7.0, max(2.5, 0.35 * len(names) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(names))
    heights = [v if v is not None else 0.0 for v in vals]
    bar_colors = (
        [tuple(c / 255.0) for c in np.asarray(colors)[: len(names)]]
        if colors is not None
        else ["tab:blue"] * len(names)
    )
    ax.barh(y, heights, color=bar_colors, edgecolor="black", linewidth=0.5)
    for yi, v in zip(y, vals, strict=True):
        ax.text((v or 0.0) + 0.01, yi, "n/a" if v is None else f"{100 * v:.1f}", va="center", fontsize=8)
    if miou is not None:
        ax.axvline(miou, color="red", linestyle="--", label=f"mIoU {100 * miou:.1f} %")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("IoU")
    ax.set_title(title)
    return _save(fig, Path(path))


def plot_latency_hist(samples: Mapping[str, Sequence[float]], path: str | Path, title: str = "Latency") -> Path:
    """One histogram per pipeline stage (milliseconds), median and p95 marked."""
    stages = [s for s, v in samples.items() if len(v)]
    if not stages:
        stages = list(samples)[:1]
    n = max(1, len(stages))
    cols = min(3, n)
    rows = -(-n // cols)
    fig = _figure(4.0 * cols, 2.8 * rows)
    for i, stage in enumerate(stages):
        ax = fig.add_subplot(rows, cols, i + 1)
        v = np.asarray(samples[stage], dtype=np.float64)
        if v.size:
            ax.hist(v, bins=min(40, max(5, v.size // 3)), color="tab:gray", edgecolor="black", linewidth=0.3)
            med, p95 = float(np.median(v)), float(np.percentile(v, 95))
            ax.axvline(med, color="tab:blue", label=f"median {med:.1f}")
            ax.axvline(p95, color="tab:red", linestyle="--", label=f"p95 {p95:.1f}")
            ax.legend(fontsize=7)
        ax.set_title(stage, fontsize=9)
        ax.set_xlabel("ms", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Path(path))


def grid_to_rgb(grid: np.ndarray) -> np.ndarray:
    """int8 occupancy grid -> HxWx3 uint8 (free white, occupied black, unknown grey), x up like a map."""
    g = np.asarray(grid)
    rgb = np.full((*g.shape, 3), 128, np.uint8)
    known = g >= 0
    level = (255 - np.clip(g.astype(np.int32), 0, 100) * 255 // 100).astype(np.uint8)
    rgb[known] = level[known][:, None]
    return np.flipud(rgb)


def plot_frame_strip(
    frames: Sequence[Any],
    colors: np.ndarray,
    path: str | Path,
    title: str = "Frames",
) -> Path:
    """Rows of image | prediction | ground truth (| grid) for frames with ``rgb``, ``labels``, ``gt``, ``grid``.

    ``frames`` items need attributes rgb (HxWx3 uint8), labels (HxW uint8), gt (HxW or None),
    grid (int8 or None) and stamp_ns. Void/unknown ids draw black.
    """
    if not frames:
        fig = _figure(4, 1)
        fig.text(0.5, 0.5, "no frames", ha="center")
        return _save(fig, Path(path))
    has_gt = any(f.gt is not None for f in frames)
    has_grid = any(f.grid is not None for f in frames)
    cols = 2 + int(has_gt) + int(has_grid)
    h, w = frames[0].rgb.shape[:2]
    cell_w = 3.2
    fig = _figure(cell_w * cols, len(frames) * cell_w * h / w + 0.6)
    for r, f in enumerate(frames):
        panels: list[tuple[str, np.ndarray | None]] = [("image", f.rgb), ("prediction", colorize(f.labels, colors))]
        if has_gt:
            gt = None if f.gt is None else colorize(np.where(f.gt < len(colors), f.gt, UNKNOWN_LABEL), colors)
            panels.append(("ground truth", gt))
        if has_grid:
            panels.append(("occupancy grid", None if f.grid is None else grid_to_rgb(f.grid)))
        for c, (name, img) in enumerate(panels):
            ax = fig.add_subplot(len(frames), cols, r * cols + c + 1)
            if img is not None:
                ax.imshow(img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0:
                stamp = int(getattr(f, "stamp_ns", 0))
                ax.set_ylabel(f"{stamp // 10**9}.{stamp % 10**9 // 10**6:03d}", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Path(path))


def pct(v: float | None) -> str:
    """A fraction as a percentage with two decimals; 'n/a' for None or NaN."""
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{100 * v:.2f} %"


def markdown_report(summary: Mapping[str, Any], plots: Mapping[str, Path], base: Path, title: str) -> str:
    """Markdown text of an evaluation ``summary`` (the JSON body) with relative links to ``plots``."""
    lines = [f"# {title}", ""]
    meta = [
        ("bag", summary.get("bag")),
        ("dataset", summary.get("data")),
        ("split", summary.get("split")),
        ("model", summary.get("model")),
        ("backend", summary.get("backend")),
        ("image topic", summary.get("image_topic")),
        ("ground-truth topic", summary.get("gt_topic")),
        ("camera_info topic", summary.get("camera_info_topic")),
        ("mode", summary.get("mode")),
    ]
    for key, val in meta:
        if val is not None:
            lines.append(f"- **{key}**: `{val}`")
    lines.append(f"- **frames**: {summary.get('frames')}")
    for key in ("frames_with_gt", "rejected_frames", "dropped_frames", "published_frames"):
        if key in summary:
            lines.append(f"- **{key.replace('_', ' ')}**: {summary[key]}")
    if summary.get("fps"):
        lines.append(f"- **frames/s** (pipeline): {summary['fps']:.1f}")
    if summary.get("wall_fps"):
        lines.append(f"- **frames/s** (wall clock): {summary['wall_fps']:.1f}")
    lines.append("")
    if "miou" in summary:
        lines += [
            "## Accuracy",
            "",
            f"mIoU **{pct(summary.get('miou'))}**, pixel accuracy {pct(summary.get('pixel_accuracy'))}, "
            f"mean class accuracy {pct(summary.get('mean_class_accuracy'))} "
            f"over {summary.get('pixels', 'n/a')} labelled pixels (void ignored; classes absent from both "
            "ground truth and prediction are n/a and left out of the mean).",
            "",
            "| class | IoU |",
            "| --- | --- |",
        ]
        lines += [f"| {name} | {pct(v)} |" for name, v in summary.get("per_class_iou", {}).items()]
        lines.append("")
    else:
        lines += ["## Accuracy", "", "No ground truth: accuracy not measured.", ""]
    lat = summary.get("latency_ms") or {}
    if lat:
        lines += ["## Latency (ms)", "", "| stage | median | p95 | mean | max |", "| --- | --- | --- | --- | --- |"]
        for stage, st in lat.items():
            if st:
                lines.append(
                    f"| {stage} | {st['median']:.2f} | {st['p95']:.2f} | {st.get('mean', float('nan')):.2f} "
                    f"| {st.get('max', float('nan')):.2f} |"
                )
        lines.append("")
    grid = summary.get("grid")
    if grid:
        lines += ["## Occupancy grid", "", f"{grid.get('frames')} frames with a grid.", ""]
        lines += ["| statistic | mean | min | max |", "| --- | --- | --- | --- |"]
        for key, st in grid.items():
            if isinstance(st, dict):
                lines.append(f"| {key} | {st['mean']:.4g} | {st['min']:.4g} | {st['max']:.4g} |")
        lines.append("")
    warnings = summary.get("warnings") or []
    if warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    if plots:
        lines += ["## Plots", ""]
        for name, p in plots.items():
            try:
                rel = Path(p).resolve().relative_to(base.resolve())
            except ValueError:
                rel = Path(p).resolve()
            lines += [f"### {name}", "", f"![{name}]({rel.as_posix()})", ""]
    return "\n".join(lines)


def write_markdown(
    path: str | Path, summary: Mapping[str, Any], plots: Mapping[str, Path], title: str, appendix: str = ""
) -> Path:
    """Write ``markdown_report`` to ``path``, followed by ``appendix`` (Markdown)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown_report(summary, plots, path.parent, title) + appendix)
    except OSError as err:
        raise ReportError(f"cannot write report {path}: {err.strerror or err}") from err
    return path
