"""Confusion matrix and IoU: known answers, void handling, NaN classes, accumulation over images."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.errors import DatasetError
from seg_perception.evaluation.metrics import ConfusionMatrix, latency_summary, scalar_stats


def test_perfect_prediction_gives_miou_one() -> None:
    gt = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    cm = ConfusionMatrix(3)
    cm.update(gt, gt)
    assert cm.miou() == 1.0
    assert cm.pixel_accuracy() == 1.0
    assert cm.per_class_iou() == {"0": 1.0, "1": 1.0, "2": 1.0}


def test_hand_computed_confusion() -> None:
    gt = np.array([0, 0, 0, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 2, 1])
    cm = ConfusionMatrix(3)
    cm.update(gt, pred)
    # class 0: TP 2, FN 1 -> 2/3; class 1: TP 1, FP 2 (a 0 and a 2 predicted 1) -> 1/3; class 2: TP 1, FN 1 -> 1/2
    np.testing.assert_allclose(cm.iou(), [2 / 3, 1 / 3, 1 / 2])
    assert cm.miou() == pytest.approx((2 / 3 + 1 / 3 + 1 / 2) / 3)
    assert cm.pixel_accuracy() == pytest.approx(4 / 6)
    np.testing.assert_array_equal(cm.matrix, [[2, 1, 0], [0, 1, 0], [0, 1, 1]])


def test_void_and_out_of_range_ground_truth_are_ignored() -> None:
    gt = np.array([0, 11, 11, 1, 200])
    pred = np.array([0, 1, 0, 1, 0])
    cm = ConfusionMatrix(11, ignore_index=11)
    cm.update(gt, pred)
    assert cm.total == 2
    assert cm.per_class_iou()["0"] == 1.0 and cm.per_class_iou()["1"] == 1.0
    assert cm.miou() == 1.0


def test_absent_classes_are_nan_and_excluded_from_mean() -> None:
    cm = ConfusionMatrix(4)
    cm.update(np.array([0, 0, 1]), np.array([0, 0, 2]))
    iou = cm.iou()
    assert math.isnan(iou[3])  # in neither GT nor prediction
    assert iou[1] == 0.0 and iou[2] == 0.0  # in only one of them: counts as 0
    assert cm.miou() == pytest.approx((1 + 0 + 0) / 3)
    assert cm.per_class_iou()["3"] is None
    assert cm.summary()["miou"] == pytest.approx(1 / 3)


def test_unknown_predictions_are_misses_not_false_positives() -> None:
    cm = ConfusionMatrix(2)
    cm.update(np.array([0, 0, 1, 1]), np.array([0, 255, 1, 1]))
    np.testing.assert_allclose(cm.iou(), [0.5, 1.0])
    assert cm.summary()["unknown_predictions"] == 1
    assert cm.pixel_accuracy() == pytest.approx(3 / 4)


def test_accumulated_over_images_not_averaged_per_image() -> None:
    cm = ConfusionMatrix(2)
    cm.update(np.array([0, 0, 0, 0]), np.array([0, 0, 0, 1]))  # per image: IoU0 3/4, IoU1 0
    cm.update(np.array([1]), np.array([1]))  # per image: IoU1 1
    # one matrix: class 0 TP 3 FN 1 -> 3/4; class 1 TP 1 FP 1 -> 1/2
    assert cm.miou() == pytest.approx((3 / 4 + 1 / 2) / 2)


def test_empty_matrix_and_size_mismatch() -> None:
    cm = ConfusionMatrix(3)
    assert math.isnan(cm.miou()) and math.isnan(cm.pixel_accuracy())
    assert cm.summary()["miou"] is None
    with pytest.raises(DatasetError, match="differ in size"):
        cm.update(np.zeros((2, 3)), np.zeros((3, 2)))


def test_latency_and_scalar_summaries() -> None:
    lat = latency_summary({"a": list(range(1, 101)), "empty": []})
    assert set(lat) == {"a"}
    assert lat["a"]["median"] == pytest.approx(50.5)
    assert lat["a"]["p95"] == pytest.approx(95.05)
    st = scalar_stats({"free": [0.1, 0.3, float("nan")]})
    assert st["free"] == {"mean": pytest.approx(0.2), "min": 0.1, "max": 0.3}
