"""The files of a bag evaluation (``eval-bag``, ``eval-bag --live``, ``eval-bags``, the demo): plots, Markdown, JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.evaluation.matching import StripFrame
from seg_perception.evaluation.metrics import ConfusionMatrix
from seg_perception.evaluation.report import (
    plot_confusion,
    plot_frame_strip,
    plot_iou_bars,
    plot_latency_hist,
    write_json,
    write_markdown,
)


@dataclass(frozen=True)
class ReportPaths:
    """Where a report goes: the JSON, the Markdown beside it and the plot folder (None: no plots)."""

    json: Path
    report: Path
    plots: Path | None

    @classmethod
    def beside(
        cls, json_path: str | Path, report: str | Path | None = None, plots: str | Path | None = None, no_plots=False
    ) -> ReportPaths:
        """Defaults: the JSON path with ``.md``, and ``<json stem>_plots`` beside the JSON."""
        json_path = Path(json_path)
        report_path = Path(report) if report else json_path.with_suffix(".md")
        plots_dir = Path(plots) if plots else json_path.parent / f"{json_path.stem}_plots"
        return cls(json_path, report_path, None if no_plots else plots_dir)


def write_bag_report(
    summary: dict[str, Any],
    paths: ReportPaths,
    *,
    title: str,
    confusion: ConfusionMatrix | None = None,
    latency: Mapping[str, Sequence[float]] | None = None,
    latency_title: str = "Latency",
    strip: Sequence[StripFrame] = (),
    colors: np.ndarray | None = None,
    appendix: str = "",
) -> None:
    """Write the plots, then the Markdown report (``appendix`` at its end), then the JSON ``summary``.

    Args:
        summary: the JSON body; ``plots`` and ``report`` entries are added to it.
        confusion: per-class IoU and confusion-matrix plots when ``summary`` has an mIoU.
        latency: stage -> latency samples (ms) for the latency histogram.
        strip: frames for the image / labels / ground truth strip.
        colors: K x 3 uint8 class colours (None: the default palette).
    """
    plots: dict[str, Path] = {}
    if paths.plots is not None:
        if confusion is not None and "miou" in summary:
            plots["per-class IoU"] = plot_iou_bars(
                summary["per_class_iou"], paths.plots / "per_class_iou.png", summary["miou"], colors=colors
            )
            plots["confusion matrix"] = plot_confusion(confusion, paths.plots / "confusion_matrix.png")
        if latency:
            samples = {stage: list(v) for stage, v in latency.items()}
            plots["latency"] = plot_latency_hist(samples, paths.plots / "latency.png", title=latency_title)
        if strip:
            title_strip = str(summary.get("bag", ""))
            plots["frames"] = plot_frame_strip(list(strip), colors, paths.plots / "frames.png", title=title_strip)
    summary["plots"] = {k: str(v) for k, v in plots.items()}
    summary["report"] = str(paths.report)
    write_markdown(paths.report, summary, plots, title=title, appendix=appendix)
    write_json(paths.json, summary)
