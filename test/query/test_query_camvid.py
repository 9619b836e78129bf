"""Queries on real CamVid test frames with the bundled default model (skipped when either is missing)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seg_perception.backends import create_backend
from seg_perception.model_spec import ModelSpec, default_model_path
from seg_perception.pipeline import Segmenter
from seg_perception.query import QueryEngine


@pytest.fixture(scope="module")
def segmented(camvid_dir):
    model = default_model_path()
    if not model.exists():
        pytest.skip(f"default model {model} not present")
    spec = ModelSpec.for_model(model)
    names = (camvid_dir / "test.txt").read_text().split()[0::2]
    frames = []
    with create_backend("onnxruntime", model, num_threads=2) as backend:
        seg = Segmenter(backend, spec)
        for name in names[::40]:  # a spread over both test sequences
            rgb = cv2.cvtColor(cv2.imread(str(camvid_dir / name.lstrip("/"))), cv2.COLOR_BGR2RGB)
            out = seg.segment(rgb)
            frames.append((rgb, out.labels, out.confidence))
    return spec, frames


def _roi(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def test_car_mask_is_the_models_car_pixels_and_left_is_leftmost(segmented):
    spec, frames = segmented
    engine = QueryEngine(spec.class_names, use_embeddings=False)
    car = spec.class_names.index("car")
    checked = 0
    for rgb, labels, conf in frames:
        ans = engine.answer("car", rgb, labels, conf)
        if not ans.found:
            continue
        checked += 1
        np.testing.assert_array_equal(ans.mask == 255, labels == car)
        assert ans.pixel_count == int((labels == car).sum()) and ans.roi == _roi(ans.mask)
        left = engine.answer("the car on the left", rgb, labels, conf)
        if left.instances >= 2:
            n, comp, stats, cents = cv2.connectedComponentsWithStats((labels == car).astype(np.uint8), connectivity=8)
            big = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= max(8, round(labels.size * 1e-4))]
            leftmost = min(big, key=lambda i: cents[i][0])
            np.testing.assert_array_equal(left.mask == 255, comp == leftmost)
            assert left.pixel_count == int((comp == leftmost).sum()) and left.roi == _roi(left.mask)
    assert checked >= 2, "the default model found cars in fewer than 2 sampled CamVid test frames"
