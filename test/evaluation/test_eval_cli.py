"""``seg-perception eval`` end to end: known answers through the real Segmenter, outputs, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from seg_perception.cli import main

REPO = Path(__file__).resolve().parents[2]


def run_eval(data: Path, model: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "eval",
            "--data",
            str(data),
            "--split",
            "test",
            "--json",
            str(out),
            "--model",
            str(model),
            "--no-progress",
            *extra,
        ]
    )


def test_known_confusion_end_to_end(known_dataset: Path, colour_model: Path, tmp_path: Path, ev) -> None:
    out = tmp_path / "eval.json"
    plots = tmp_path / "plots"
    assert run_eval(known_dataset, colour_model, out, "--plots", str(plots)) == 0
    res = json.loads(out.read_text())
    assert res["miou"] == pytest.approx(ev.KNOWN_MIOU)
    assert res["pixel_accuracy"] == pytest.approx(ev.KNOWN_PIXEL_ACCURACY)
    for name, iou in ev.KNOWN_IOU.items():
        assert res["per_class_iou"][name] == pytest.approx(iou)
    assert res["per_class_iou"]["pole"] is None  # absent from GT and prediction
    assert res["frames"] == 2
    assert res["fps"] > 0
    assert res["model"] == str(colour_model) and "onnxruntime" in res["backend"]
    assert set(res["latency_ms"]) == {"decode", "preprocess", "inference", "postprocess"}
    for name in ("confusion_matrix.png", "per_class_iou.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_perfect_prediction_and_limit(tmp_path: Path, colour_model: Path, ev) -> None:
    frames = [(ev.paint(lab), lab) for lab in (np.arange(32, dtype=np.uint8).reshape(4, 8) % 11,)] * 2
    data = ev.write_dataset(tmp_path / "perfect", frames)
    out = tmp_path / "p.json"
    assert run_eval(data, colour_model, out, "--limit", "1") == 0
    res = json.loads(out.read_text())
    assert res["miou"] == 1.0 and res["pixel_accuracy"] == 1.0 and res["frames"] == 1


def test_random_tiny_model_runs(known_dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    assert run_eval(known_dataset, tiny_model, out) == 0
    res = json.loads(out.read_text())
    assert 0.0 <= res["miou"] <= 1.0 and len(res["per_class_iou"]) == 11


def test_missing_split_file_is_a_clear_error(known_dataset: Path, colour_model: Path, tmp_path: Path, capsys) -> None:
    rc = main(
        [
            "eval",
            "--data",
            str(known_dataset),
            "--split",
            "val",
            "--json",
            str(tmp_path / "x.json"),
            "--model",
            str(colour_model),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "val.txt not found" in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


def test_label_size_mismatch_is_a_clear_error(known_dataset: Path, colour_model: Path, tmp_path: Path, capsys) -> None:
    cv2.imwrite(str(known_dataset / "testannot" / "seq_0001.png"), np.zeros((6, 8), np.uint8))
    assert run_eval(known_dataset, colour_model, tmp_path / "x.json") == 2
    assert "error: label" in capsys.readouterr().err


def test_class_count_mismatch_is_a_clear_error(known_dataset: Path, tmp_path: Path, ev, capsys) -> None:
    model = ev.make_colour_model(tmp_path / "m.onnx")
    meta = yaml.safe_load(model.with_suffix(".yaml").read_text())
    meta["class_names"] = [*meta["class_names"], "extra"]
    meta["colors"] = [*meta["colors"], [1, 2, 3]]
    model.with_suffix(".yaml").write_text(yaml.safe_dump(meta))
    assert run_eval(known_dataset, model, tmp_path / "x.json") == 2
    assert "11 classes" in capsys.readouterr().err


def test_missing_model_is_a_clear_error(known_dataset: Path, tmp_path: Path, capsys) -> None:
    assert run_eval(known_dataset, tmp_path / "nope.onnx", tmp_path / "x.json") == 2
    assert "nope.onnx does not exist" in capsys.readouterr().err


def test_console_entry_point_exits_2_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seg_perception.cli",
            "eval",
            "--data",
            str(tmp_path),
            "--split",
            "test",
            "--json",
            str(tmp_path / "x.json"),
            "--model",
            str(tmp_path / "m.onnx"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr
