"""The real detector on composites: the coffee photo's cup (hand polygon) pasted onto CamVid frames at known places.

Three cups per frame, left to right: A (x 15, 120 px high), B (x 175, 150 px, the biggest),
C (x 345, 110 px). Every answer is checked against the pasted boxes and masks. The detector
is real, so a frame may miss a cup; counts of frames are asserted, not single frames.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.detection.base import MODEL_FILE, model_dir
from seg_perception.query.engine import QueryEngine
from seg_perception.query.tabletop import CUP_LAYOUT, Composite, paste_cups

pytestmark = pytest.mark.skipif(
    not (model_dir() / MODEL_FILE).is_file(), reason="detector not fetched (seg-perception fetch-models)"
)
EVERY = 7  # every 7th val frame: 15 frames of both val sequences


@pytest.fixture(scope="module")
def composites(camvid_dir: Path) -> list[Composite]:
    pytest.importorskip("skimage.data")
    names = (camvid_dir / "val.txt").read_text().split()[0::2][::EVERY]
    frames = [cv2.cvtColor(cv2.imread(str(camvid_dir / n.lstrip("/"))), cv2.COLOR_BGR2RGB) for n in names]
    return [paste_cups(rgb, CUP_LAYOUT) for rgb in frames]


def _hits(answer_roi: tuple[int, int, int, int], box: tuple[int, int, int, int], tol: int = 8) -> bool:
    """The answer's roi starts within ``tol`` px of the pasted cup's box corner."""
    return abs(answer_roi[0] - box[0]) <= tol and abs(answer_roi[1] - box[1]) <= tol + 20


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a & b) / max(np.count_nonzero(a | b), 1))


def test_counts_left_right_biggest(composites: list[Composite]) -> None:
    """Where all three cups are found, left / right / biggest / second-from-left name the right one."""
    engine = QueryEngine(CAMVID_CLASSES, use_embeddings=False)
    all_three = biggest_ok = 0
    wrong: list[str] = []
    for i, comp in enumerate(composites):
        labels = np.zeros(comp.rgb.shape[:2], np.uint8)
        cups = engine.answer("all cups", comp.rgb, labels)
        assert cups.found and cups.instances <= 3, cups.message  # never a cup that is not there
        biggest = engine.answer("the biggest cup", comp.rgb, labels)
        biggest_ok += biggest.found and _hits(biggest.roi, comp.boxes[1])
        if cups.instances < 3:
            continue
        all_three += 1
        for phrase, want in (("the cup on the left", 0), ("the cup on the right", 2),
                             ("the second cup from the left", 1), ("the leftmost cup", 0)):
            ans = engine.answer(phrase, comp.rgb, labels)
            if not (ans.found and _hits(ans.roi, comp.boxes[want])):
                wrong.append(f"frame {i}: {phrase!r} -> {ans.roi}")
    assert len(composites) == 15
    assert all_three >= 13  # measured: 13 of 15 (one frame misses A, one misses C)
    assert biggest_ok == len(composites)  # B, the biggest, is found on every frame
    assert not wrong, wrong


def test_masks_match_the_pasted_cups(composites: list[Composite]) -> None:
    """The biggest cup's mask against its pasted polygon mask: IoU 0.80-0.86 measured on every frame."""
    engine = QueryEngine(CAMVID_CLASSES, use_embeddings=False)
    ious = []
    for comp in composites:
        ans = engine.answer("the biggest cup", comp.rgb, np.zeros(comp.rgb.shape[:2], np.uint8))
        ious.append(_iou(ans.mask > 0, comp.masks[1]))
        assert not np.any((ans.mask > 0) & (comp.masks[0] | comp.masks[2]))  # one cup, not its neighbours
    assert min(ious) >= 0.75 and float(np.mean(ious)) >= 0.80, np.round(ious, 3)


def test_no_dog_among_cups(composites: list[Composite]) -> None:
    engine = QueryEngine(CAMVID_CLASSES, use_embeddings=False)
    found = [engine.answer("dog", c.rgb, np.zeros(c.rgb.shape[:2], np.uint8)).found for c in composites]
    assert not any(found)
