"""Anchors, box decoding and NMS against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.detection.anchors import ssd_anchors
from seg_perception.detection.boxes import decode_boxes, iou_matrix, nms


def test_anchor_count_and_hand_computed_anchors() -> None:
    a = ssd_anchors()
    assert a.shape == (1917, 4)
    # layer 0 (19x19, 3 boxes), cell (0, 0): scale 0.1 ratio 1, then scale 0.2 ratio 2.
    np.testing.assert_allclose(a[0], [0.5 / 19, 0.5 / 19, 0.1, 0.1], atol=1e-6)
    np.testing.assert_allclose(a[1], [0.5 / 19, 0.5 / 19, 0.2 / math.sqrt(2), 0.2 * math.sqrt(2)], atol=1e-6)
    # first anchor of layer 1 (10x10): scale 0.2 + 0.75 / 5 = 0.35, ratio 1, centre 0.05.
    np.testing.assert_allclose(a[19 * 19 * 3], [0.05, 0.05, 0.35, 0.35], atol=1e-6)
    # last anchor: layer 5 (1x1), interpolated sqrt(0.95 * 1.0).
    np.testing.assert_allclose(a[-1], [0.5, 0.5, math.sqrt(0.95), math.sqrt(0.95)], atol=1e-6)


def test_decode_hand_computed() -> None:
    anchors = np.array([[0.5, 0.5, 0.2, 0.4]] * 3, np.float32)
    raw = np.array([[0, 0, 0, 0], [10, 0, 0, 0], [0, 0, 5 * math.log(2), 0]], np.float32)
    got = decode_boxes(raw, anchors)
    np.testing.assert_allclose(got[0], [0.4, 0.3, 0.6, 0.7], atol=1e-6)
    np.testing.assert_allclose(got[1], [0.6, 0.3, 0.8, 0.7], atol=1e-6)
    np.testing.assert_allclose(got[2], [0.3, 0.3, 0.7, 0.7], atol=1e-6)


def test_iou_and_nms() -> None:
    boxes = np.array([[0, 0, 1, 1], [0, 0.5, 1, 1.5], [0, 0.1, 1, 1.1], [5, 5, 6, 6]], np.float64)
    assert iou_matrix(boxes[:1], boxes[1:2])[0, 0] == pytest.approx(1 / 3)
    assert iou_matrix(boxes[:1], boxes[2:3])[0, 0] == pytest.approx(0.9 / 1.1)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), iou_threshold=0.5)
    assert keep.tolist() == [0, 1, 3]  # box 2 overlaps box 0 by 0.82
    assert nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), iou_threshold=0.2).tolist() == [0, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []
