"""Report helpers: JSON cleaning, Markdown content, frame strip with a grid column."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from seg_perception.evaluation.report import grid_to_rgb, markdown_report, plot_frame_strip, write_json


def test_write_json_turns_nan_into_null(tmp_path: Path) -> None:
    out = write_json(
        tmp_path / "sub" / "x.json", {"a": float("nan"), "b": [np.float32(0.5), float("inf")], "p": tmp_path}
    )
    assert json.loads(out.read_text()) == {"a": None, "b": [0.5, None], "p": str(tmp_path)}


def test_markdown_sections(tmp_path: Path) -> None:
    summary = {
        "bag": "b",
        "frames": 3,
        "miou": 0.5,
        "pixel_accuracy": 0.75,
        "per_class_iou": {"road": 0.5, "pole": None},
        "latency_ms": {"inference": {"median": 1.0, "p95": 2.0, "mean": 1.2, "max": 3.0}},
        "grid": {"frames": 3, "free_fraction": {"mean": 0.25, "min": 0.0, "max": 0.5}},
        "warnings": ["careful"],
    }
    text = markdown_report(summary, {"frames": tmp_path / "plots" / "f.png"}, tmp_path, "T")
    assert "mIoU **50.00 %**" in text and "| pole | n/a |" in text
    assert "| inference | 1.00 | 2.00 | 1.20 | 3.00 |" in text
    assert "| free_fraction | 0.25 | 0 | 0.5 |" in text and "- careful" in text
    assert "![frames](plots/f.png)" in text
    assert "No ground truth" in markdown_report({"frames": 1}, {}, tmp_path, "T")


def test_grid_colours_and_frame_strip(tmp_path: Path) -> None:
    grid = np.array([[0, 100], [-1, 50]], np.int8)
    rgb = grid_to_rgb(grid)
    # flipped so that row 0 (nearest x) is drawn at the bottom
    assert rgb[1, 0].tolist() == [255] * 3 and rgb[1, 1].tolist() == [0] * 3 and rgb[0, 0].tolist() == [128] * 3
    colors = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    frame = SimpleNamespace(
        stamp_ns=5,
        rgb=np.zeros((4, 8, 3), np.uint8),
        labels=np.ones((4, 8), np.uint8),
        gt=np.full((4, 8), 11, np.uint8),
        grid=grid,
    )
    out = plot_frame_strip([frame, frame], colors, tmp_path / "strip.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
