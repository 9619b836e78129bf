"""Detector-backed queries: grounding onto detector classes, compound nouns, and the coffee photo."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.detection import Detection, Detector
from seg_perception.detection.base import MODEL_FILE, model_dir
from seg_perception.query.detected import DETECTOR_CLASSES
from seg_perception.query.engine import QueryEngine
from seg_perception.query.grounding import ClassGrounder

INSTALLED = (model_dir() / MODEL_FILE).is_file()


class FakeDetector(Detector):
    """Returns fixed detections (boxes x, y, w, h in pixels)."""

    class_names = tuple(DETECTOR_CLASSES)

    def __init__(self, dets: list[Detection]) -> None:
        self.dets = dets

    def detect(self, rgb: np.ndarray, min_score: float = 0.3) -> list[Detection]:
        return [d for d in self.dets if d.score >= min_score]


@pytest.mark.parametrize(
    ("phrase", "target"),
    [
        ("cup", "Coffee cup"),
        ("teacup", "Coffee cup"),
        ("coffee mug", "Coffee cup"),
        ("mug", "Mug"),
        ("notebook computer", "Laptop"),
        ("screen", "Computer monitor"),
        ("mouse", "Computer mouse"),
        ("carton", "Box"),
        ("package", "Box"),
        ("desk", "Desk"),
        ("table", "Table"),
        ("sneaker", "Footwear"),
        ("shoes", "Footwear"),
        ("bottle", "Bottle"),
        ("book", "Book"),
        ("dog", "Dog"),
    ],
)
def test_detector_synonyms(phrase: str, target: str) -> None:
    g = ClassGrounder(DETECTOR_CLASSES)
    assert g.ground(g.parse(phrase).head).class_name == target


@pytest.mark.parametrize("phrase", ["car park", "bus stop", "bike helmet"])
def test_compound_noun_not_grounded_on_modifier(phrase: str) -> None:
    engine = QueryEngine(CAMVID_CLASSES, use_embeddings=False, detector=None)
    assert not engine.ground(phrase)[1].found


def test_fake_detector_colour_spatial_and_messages() -> None:
    rgb = np.full((100, 200, 3), 128, np.uint8)
    rgb[10:40, 10:40] = (200, 20, 20)  # red cup on the left
    rgb[10:60, 150:190] = (20, 40, 200)  # blue mug on the right, bigger
    dets = [Detection("Coffee cup", 0.9, (10, 10, 30, 30)), Detection("Mug", 0.6, (150, 10, 40, 50))]
    engine = QueryEngine(CAMVID_CLASSES, use_embeddings=False, detector=FakeDetector(dets))
    labels = np.zeros((100, 200), np.uint8)
    ans = engine.answer("the cup on the right", rgb, labels)
    assert ans.found and ans.roi == (150, 10, 40, 50) and ans.matched_class == "Mug"
    assert "detector class" in ans.message
    on_table = engine.answer("the cup on the table", rgb, labels)
    assert on_table.found and "'table' not used" in on_table.message
    assert engine.answer("the biggest cup", rgb, labels).roi == (150, 10, 40, 50)
    assert engine.answer("cup on the left", rgb, labels).roi == (10, 10, 30, 30)
    red = engine.answer("the red mug", rgb, labels)
    assert red.found and red.roi == (10, 10, 30, 30) and int(red.mask.sum() // 255) == 900
    green = engine.answer("the green cup", rgb, labels)
    assert not green.found and "red" in green.message and "blue" in green.message
    dog = engine.answer("dog", rgb, labels)
    assert not dog.found and dog.matched_class == "Dog"
    assert engine.answer("car", rgb, labels).message.startswith("no car")  # segmentation class still answers


def test_missing_detector_says_how_to_fetch(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SEG_PERCEPTION_MODELS", str(tmp_path))
    engine = QueryEngine(CAMVID_CLASSES, use_embeddings=False)
    ans = engine.answer("cup", np.zeros((50, 50, 3), np.uint8), np.zeros((50, 50), np.uint8))
    assert not ans.found and "fetch-models" in ans.message
    off = QueryEngine(CAMVID_CLASSES, use_embeddings=False, detector=None)
    assert "is not a class of this model" in off.answer("cup", None, np.zeros((5, 5), np.uint8)).message


def test_too_small_frame_for_detector() -> None:
    pytest.importorskip("ai_edge_litert")
    if not INSTALLED:
        pytest.skip("detector not fetched")
    engine = QueryEngine(CAMVID_CLASSES, use_embeddings=False)
    ans = engine.answer("cup", np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20), np.uint8))
    assert not ans.found and "too small" in ans.message


@pytest.mark.skipif(not INSTALLED, reason="detector not fetched (seg-perception fetch-models)")
def test_coffee_photo() -> None:
    data = pytest.importorskip("skimage.data")
    rgb = data.coffee()
    labels = np.zeros(rgb.shape[:2], np.uint8)
    engine = QueryEngine(CAMVID_CLASSES, use_embeddings=False)
    cup = engine.answer("cup", rgb, labels)
    assert cup.found and cup.matched_class == "Coffee cup"
    assert engine.answer("the red cup", rgb, labels).found
    blue = engine.answer("the blue cup", rgb, labels)
    assert not blue.found and "seen:" in blue.message
    assert not engine.answer("dog", rgb, labels).found
    assert engine.answer("the cup on the table", rgb, labels).found
    assert not engine.answer("dog", data.chelsea(), np.zeros(data.chelsea().shape[:2], np.uint8)).found


@pytest.mark.skipif(not INSTALLED, reason="detector not fetched (seg-perception fetch-models)")
def test_coffee_cup_against_hand_polygon() -> None:
    """roi vs the hand polygon's box (target >= 0.8, met); mask IoU is the box's (0.69; target 0.80 not yet met)."""
    import json
    from pathlib import Path

    import cv2

    data = pytest.importorskip("skimage.data")
    spec = json.loads((Path(__file__).with_name("coffee_cup_polygon.json")).read_text())
    poly = np.asarray(spec["polygon_xy"], np.int32)
    rgb = data.coffee()
    gt = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(gt, [poly], 1)
    ans = QueryEngine(CAMVID_CLASSES, use_embeddings=False).answer("cup", rgb, np.zeros_like(gt))
    px, py, pw, ph = cv2.boundingRect(poly)
    x, y, w, h = ans.roi
    inter = max(0, min(x + w, px + pw) - max(x, px)) * max(0, min(y + h, py + ph) - max(y, py))
    assert inter / (w * h + pw * ph - inter) >= 0.8
    mask, truth = ans.mask > 0, gt > 0
    assert np.count_nonzero(mask & truth) / np.count_nonzero(mask | truth) >= 0.65


@pytest.mark.skipif(not INSTALLED, reason="detector not fetched (seg-perception fetch-models)")
def test_cli_positional_phrase_writes_mask_and_picture(tmp_path) -> None:
    import cv2

    from seg_perception.cli import main

    data = pytest.importorskip("skimage.data")
    image, labels = tmp_path / "coffee.png", tmp_path / "labels.png"
    cv2.imwrite(str(image), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(labels), np.zeros((400, 600), np.uint8))
    out = tmp_path / "mask.png"
    argv = ["query", "--image", str(image), "the red cup", "--labels", str(labels), "--classes", "sky,car"]
    assert main([*argv, "--out", str(out), "--embeddings", "off"]) == 0
    mask = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (400, 600) and mask[150, 290] == 255 and mask[380, 20] == 0
    assert cv2.imread(str(tmp_path / "mask_annotated.png")).shape == (400, 600, 3)
