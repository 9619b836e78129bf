"""``seg-perception query``: label-image mode with known truth, and the full model path on a tiny ONNX model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.query import cli as query_cli

CAMVID = "sky,building,pole,road,pavement,tree,sign_symbol,fence,car,pedestrian,bicyclist"


@pytest.fixture()
def files(street, tmp_path: Path) -> dict[str, Path]:
    img = tmp_path / "street.png"
    lab = tmp_path / "labels.png"
    cv2.imwrite(str(img), cv2.cvtColor(street.rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(lab), street.labels)
    return {"image": img, "labels": lab, "out": tmp_path / "out" / "mask.png", "json": tmp_path / "answer.json"}


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    query_cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_labels_mode_selects_the_true_instance(files, street, capsys):
    argv = ["query", "--image", str(files["image"]), "--labels", str(files["labels"]), "--classes", CAMVID]
    argv += ["--text", "the red car on the left", "--out", str(files["out"]), "--json", str(files["json"])]
    assert _run([*argv, "--embeddings", "off"]) == 0
    mask = cv2.imread(str(files["out"]), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and mask.shape == street.labels.shape
    assert np.array_equal(mask > 0, street.masks["red_car"])
    record = json.loads(files["json"].read_text())
    assert record["found"] is True and record["matched_class"] == "car"
    assert record["pixel_count"] == int(street.masks["red_car"].sum())
    ys, xs = np.nonzero(street.masks["red_car"])
    assert record["roi"] == [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
    out = capsys.readouterr().out
    assert out.startswith("'the red car on the left' -> car (class name)")


def test_not_found_exit_code_and_empty_mask(files, street, capsys):
    argv = ["query", "--image", str(files["image"]), "--labels", str(files["labels"]), "--classes", CAMVID]
    assert _run([*argv, "--text", "cup", "--out", str(files["out"]), "--embeddings", "off", "--detector", "off"]) == 1
    mask = cv2.imread(str(files["out"]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == street.labels.shape and not mask.any()
    assert "'cup' is not a class of this model" in capsys.readouterr().out


def test_errors_through_the_main_cli(files, capsys):
    from seg_perception.cli import main

    out = ["--out", str(files["out"])]
    rc = main(["query", "--image", str(files["image"].with_name("missing.png")), "--text", "car", *out])
    assert rc == 2 and "error: cannot read image" in capsys.readouterr().err
    rc = main(["query", "--image", str(files["image"]), "--text", "car", *out, "--classes", "a,b"])
    assert rc == 2 and "--classes only applies with --labels" in capsys.readouterr().err
    bad = files["labels"].with_name("small.png")
    cv2.imwrite(str(bad), np.zeros((5, 5), np.uint8))
    argv = ["query", "--image", str(files["image"]), "--labels", str(bad), "--classes", CAMVID, "--text", "car", *out]
    assert main(argv) == 2
    assert "label image is 5x5 but the image is 480x360" in capsys.readouterr().err
    assert not files["out"].exists()


def test_model_mode_runs_the_pipeline(files, street, tiny_model: Path):
    from seg_perception.cli import main

    argv = ["query", "--image", str(files["image"]), "--model", str(tiny_model), "--text", "all roads"]
    rc = main([*argv, "--out", str(files["out"]), "--json", str(files["json"]), "--embeddings", "off"])
    assert rc in (0, 1)  # a random tiny model may or may not label any road
    record = json.loads(files["json"].read_text())
    assert record["model"] == str(tiny_model) and record["matched_class"] == "road"
    assert set(record["segment_ms"]) >= {"inference"}
    mask = cv2.imread(str(files["out"]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == street.labels.shape
    assert (rc == 0) == bool(mask.any())
