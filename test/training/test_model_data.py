"""Fast tests of the training data pipeline (tiny inputs)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from seg_perception.errors import DatasetError
from seg_perception.training.data import (
    IGNORE_INDEX,
    Augmenter,
    SegArrays,
    enet_class_weights,
    iterate_batches,
    load_camvid_split,
    load_synthetic,
    to_tensor_batch,
)


def _sample(h: int = 60, w: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    lab = rng.integers(0, 12, (h, w), dtype=np.uint8)
    return img, lab


def test_augmenter_shapes_determinism_and_labels() -> None:
    img, lab = _sample()
    aug = Augmenter(crop=(40, 48), scale_range=(0.5, 2.0))
    for seed in range(6):
        a_img, a_lab = aug(img, lab, np.random.default_rng(seed))
        b_img, b_lab = aug(img, lab, np.random.default_rng(seed))
        assert a_img.shape == (40, 48, 3) and a_img.dtype == np.uint8
        assert a_lab.shape == (40, 48) and a_lab.dtype == np.uint8
        assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
        assert set(np.unique(a_lab)) <= set(range(12))


def test_augmenter_identity_scale_keeps_alignment() -> None:
    img, lab = _sample()
    aug = Augmenter(crop=(60, 80), scale_range=(1.0, 1.0), hflip=False,
                    brightness=0, contrast=0, saturation=0, hue=0)
    a_img, a_lab = aug(img, lab, np.random.default_rng(0))
    assert np.array_equal(a_lab, lab)
    assert np.abs(a_img.astype(int) - img.astype(int)).max() <= 1


def test_batches_and_normalisation() -> None:
    img, lab = _sample()
    data = SegArrays([img, img], [lab, lab], ["a", "b"])
    batches = list(iterate_batches(data, [0, 1], 2, Augmenter(crop=(32, 32)), 0, 0, [0.5] * 3, [0.25] * 3))
    assert len(batches) == 1
    x, y = batches[0]
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    x, _ = to_tensor_batch([np.full((8, 8, 3), 255, np.uint8)], None, [0.5] * 3, [0.25] * 3)
    assert torch.allclose(x, torch.full_like(x, 2.0))


def test_class_weights_rare_classes_weigh_more() -> None:
    lab = np.zeros((10, 10), np.uint8)
    lab[0, :2] = 2
    lab[1, :] = IGNORE_INDEX
    w = enet_class_weights([lab])
    assert w.shape == (11,) and w[2] > w[0]


def test_test_split_is_refused(tmp_path) -> None:
    with pytest.raises(DatasetError):
        load_camvid_split(tmp_path, "test")
    with pytest.raises(DatasetError):
        load_camvid_split(tmp_path, "train")


def test_synthetic_cache(tmp_path) -> None:
    calls: list[int] = []

    def fake(seed: int, height: int, width: int) -> SimpleNamespace:
        calls.append(seed)
        return SimpleNamespace(rgb=np.full((height, width, 3), seed, np.uint8),
                               labels=np.full((height, width), seed % 12, np.uint8))

    a = load_synthetic([1, 2], tmp_path, 16, 24, renderer=fake)
    b = load_synthetic([1, 2], tmp_path, 16, 24, renderer=fake)
    assert calls == [1, 2] and len(b) == 2
    assert np.array_equal(a.images[1], b.images[1]) and b.labels[0].shape == (16, 24)
