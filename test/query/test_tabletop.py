"""The tabletop scenes: bundled photos, pasted cups at known places, annotated pictures."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.detection import Detection
from seg_perception.errors import ImageError
from seg_perception.query.engine import QueryEngine
from seg_perception.query.tabletop import (
    CUP_LAYOUT,
    TABLETOP_QUERIES,
    annotate,
    bundled_photo,
    paste_cups,
    run_tabletop,
)

pytest.importorskip("skimage.data")


def test_bundled_photos() -> None:
    assert bundled_photo("coffee").shape == (400, 600, 3)
    assert bundled_photo("motorcycle_left").shape == (500, 741, 3)  # stereo_motorcycle()[0]
    with pytest.raises(ImageError, match="no photo"):
        bundled_photo("no_such_photo")


def test_pasted_cups_sit_where_the_layout_says() -> None:
    bg = np.zeros((360, 480, 3), np.uint8)
    comp = paste_cups(bg)
    assert [b[0] for b in comp.boxes] == [15, 175, 345] and [b[3] for b in comp.boxes] == [120, 150, 110]
    for (x, y, w, h), mask in zip(comp.boxes, comp.masks, strict=True):
        ys, xs = np.nonzero(mask)
        assert xs.min() >= x and xs.max() < x + w and ys.min() >= y and ys.max() < y + h
        assert 0.5 < mask.sum() / (w * h) < 0.9  # the cup's polygon, not its box
        assert np.all(comp.rgb[mask].sum(axis=1) > 0) and not np.any(comp.rgb[~np.any(comp.masks, axis=0)])
    assert comp.masks[1].sum() == max(m.sum() for m in comp.masks)  # the middle cup is the biggest
    assert not np.any(bg)  # the background is not written to
    with pytest.raises(ImageError, match="does not fit"):
        paste_cups(np.zeros((100, 100, 3), np.uint8), CUP_LAYOUT)


class _Fixed:
    class_names = ("Coffee cup", "Mug", "Cat")

    def __init__(self, boxes: list[tuple[int, int, int, int]]) -> None:
        self.boxes = boxes

    def detect(self, rgb: np.ndarray, min_score: float = 0.3) -> list[Detection]:
        return [Detection("Coffee cup", 0.9 - 0.1 * i, tuple(map(float, b))) for i, b in enumerate(self.boxes)]


def test_run_tabletop_writes_a_picture_per_query(tmp_path) -> None:
    comp = paste_cups(np.full((360, 480, 3), 90, np.uint8))
    engine = QueryEngine(CAMVID_CLASSES, use_embeddings=False, detector=_Fixed(comp.boxes))
    results = run_tabletop(engine, tmp_path, np.full((360, 480, 3), 90, np.uint8))
    assert [(r["photo"], r["query"]) for r in results] == list(TABLETOP_QUERIES)
    by = {(r["photo"], r["query"]): r for r in results}
    assert by[("cups", "the cup on the left")]["roi"][0] < 40 and by[("cups", "the cup on the right")]["roi"][0] > 330
    assert 160 < by[("cups", "the biggest cup")]["roi"][0] < 200
    assert by[("cups", "all cups")]["found"] and not by[("coffee", "dog")]["found"]
    for r in results:
        assert cv2.imread(r["picture"]) is not None
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet.shape[0] == 240 * 3  # 11 pictures, 4 to a row
    assert json.loads((tmp_path / "tabletop.json").read_text()) == results
    # without a background the pasted-cups scene is skipped, nothing else
    skipped = run_tabletop(engine, tmp_path / "b")
    assert {r["photo"] for r in skipped} == {"coffee", "chelsea", "astronaut", "motorcycle_left"}


def test_annotate_tints_the_mask_and_writes_the_answer() -> None:
    rgb = np.zeros((60, 80, 3), np.uint8)
    engine = QueryEngine(CAMVID_CLASSES, use_embeddings=False, detector=None)
    labels = np.zeros((60, 80), np.uint8)
    labels[20:40, 30:50] = CAMVID_CLASSES.index("car")
    pic = annotate(rgb, engine.answer("car", rgb, labels))
    assert tuple(pic[30, 40]) == (0, 127, 0) and tuple(pic[5, 75]) == (0, 0, 0)
    assert pic.shape == rgb.shape and not np.any(rgb)
