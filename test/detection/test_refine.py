"""Box refinement: exact on crisp synthetic objects, deterministic, inside the box."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.detection.refine import refine_box


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a & b)) / float(np.count_nonzero(a | b))


def _disc_scene(radius: int = 60) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    rng = np.random.default_rng(1)
    rgb = rng.integers(90, 160, (240, 320, 3), dtype=np.uint8)
    rgb[..., 2] = rng.integers(150, 255, (240, 320), dtype=np.uint8)  # bluish noisy background
    yy, xx = np.mgrid[0:240, 0:320]
    truth = (xx - 170) ** 2 + (yy - 110) ** 2 <= radius**2
    rgb[truth] = (200, 40, 30)
    return rgb, truth, (170.0 - radius, 110.0 - radius, 2.0 * radius, 2.0 * radius)


def test_disc_in_its_box() -> None:
    rgb, truth, box = _disc_scene()
    ref = refine_box(rgb, box)
    assert _iou(ref.mask, truth) >= 0.95
    assert ref.quality >= 0.95  # GrabCut itself found the whole disc


def test_rectangle_filling_its_box_is_exact() -> None:
    rgb = np.full((100, 200, 3), 128, np.uint8)
    rgb[10:60, 150:190] = (20, 40, 200)
    mask = refine_box(rgb, (150.0, 10.0, 40.0, 50.0)).mask
    ys, xs = np.nonzero(mask)
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (150, 10, 189, 59)


def test_mask_stays_in_box_and_is_deterministic() -> None:
    rgb, _, box = _disc_scene()
    big = (box[0] - 20, box[1] - 20, box[2] + 40, box[3] + 40)
    a, b = refine_box(rgb, big), refine_box(rgb, big)
    np.testing.assert_array_equal(a.mask, b.mask)
    x, y, w, h = (int(round(v)) for v in big)
    outside = a.mask.copy()
    outside[y : y + h, x : x + w] = False
    assert not outside.any() and 0.0 <= a.quality <= 1.0


@pytest.mark.parametrize("box", [(5.0, 5.0, 2.0, 2.0), (0.0, 0.0, 320.0, 240.0), (300.0, 200.0, 40.0, 60.0)])
def test_tiny_whole_frame_and_border_boxes(box: tuple[float, float, float, float]) -> None:
    rgb, _, _ = _disc_scene()
    ref = refine_box(rgb, box)
    assert ref.mask.shape == (240, 320) and ref.mask.any()
