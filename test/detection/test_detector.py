"""Objectron detector: loading errors, fetch checks, and real photos when the model is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seg_perception.detection import load_detector
from seg_perception.detection.base import LABEL_FILE, MODEL_FILE, model_dir
from seg_perception.detection.fetch import extract
from seg_perception.errors import ConfigError, ImageError, ModelError

INSTALLED = (model_dir() / MODEL_FILE).is_file()
needs_model = pytest.mark.skipif(not INSTALLED, reason="detector not fetched (seg-perception fetch-models)")


def test_missing_model_says_how_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="fetch-models"):
        load_detector("objectron", tmp_path)


def test_corrupt_files_are_model_errors(tmp_path: Path) -> None:
    (tmp_path / MODEL_FILE).write_bytes(b"not a model")
    (tmp_path / LABEL_FILE).write_text("???\nCup\n")
    pytest.importorskip("ai_edge_litert")
    with pytest.raises(ModelError, match="corrupt"):
        load_detector("objectron", tmp_path)
    (tmp_path / LABEL_FILE).write_text("Cup\n")
    with pytest.raises(ModelError, match="label map"):
        load_detector("objectron", tmp_path)


def test_unknown_detector_name() -> None:
    with pytest.raises(ConfigError, match="objectron"):
        load_detector("yolo")


def test_extract_rejects_wrong_checksum(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="sha256"):
        extract(b"x" * 1000, tmp_path)
    assert not (tmp_path / MODEL_FILE).exists()


@needs_model
def test_real_photos() -> None:
    data = pytest.importorskip("skimage.data")
    det = load_detector()
    assert len(det.class_names) == 23 and "Coffee cup" in det.class_names
    cup = det.detect(data.coffee(), min_score=0.3)
    assert cup and cup[0].class_name == "Coffee cup"
    x, y, w, h = cup[0].box  # the cup is near x 170-420, y 20-320 of the 600x400 photo
    assert 140 < x < 220 and y < 60 and 200 < w < 300 and 250 < h < 330
    assert det.detect(data.chelsea(), 0.5)[0].class_name == "Cat"
    assert det.detect(data.astronaut(), 0.5)[0].class_name == "Person"
    assert not det.detect(data.rocket(), 0.3)


@needs_model
def test_too_small_frame() -> None:
    with pytest.raises(ImageError, match="too small"):
        load_detector().detect(np.zeros((16, 16, 3), np.uint8))
