"""GPU-side post-processing (torch) must equal the numpy Segmenter.postprocess; run here on CPU tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_perception.backends.gpu_postprocess import crop_hw, is_logits_output, label_ids_to_image, logits_to_labels
from seg_perception.backends.preprocess import Geometry
from seg_perception.errors import ModelError
from seg_perception.model_spec import ModelSpec
from seg_perception.pipeline import Segmenter, argmax_confidence


class _Shape:
    """Minimal backend stand-in: the Segmenter only reads specs in __init__ and postprocess."""

    def __init__(self, hw: tuple[int, int] | None = None) -> None:
        from seg_perception.backends.base import TensorSpec

        shape = (1, 3, *hw) if hw else (1, 3, None, None)
        self.input_spec = TensorSpec("input", shape, np.dtype(np.float32))
        self.output_spec = TensorSpec("output", (1, None, None, None), np.dtype(np.float32))


def _segmenter(k: int) -> Segmenter:
    spec = ModelSpec(class_names=tuple(f"c{i}" for i in range(k)), colors=None)
    return Segmenter(_Shape(), spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("net", "content", "image", "out_hw"),
    [
        ((32, 48), (32, 48), (32, 48), (32, 48)),  # same size: no resize
        ((32, 48), (32, 48), (64, 80), (32, 48)),  # upsample
        ((40, 48), (30, 48), (45, 72), (40, 48)),  # letterbox padding at the bottom, then upsample
        ((32, 48), (32, 40), (24, 30), (8, 12)),  # output at 1/4 resolution, padded right, downsample
    ],
)
def test_logits_to_labels_matches_numpy_postprocess(net, content, image, out_hw) -> None:
    rng = np.random.default_rng(1)
    k = 7
    logits = (rng.standard_normal((1, k, *out_hw)) * 3).astype(np.float32)
    seg = _segmenter(k)
    want_lab, want_conf = seg.postprocess(logits, Geometry(image, net, content), want_confidence=True)
    lab, conf = logits_to_labels(torch.from_numpy(logits), net, content, image, want_confidence=True)
    assert lab.dtype == torch.uint8 and lab.shape == image
    agree = float((lab.numpy() == want_lab).mean())
    # bilinear resizes in cv2 and torch differ by float rounding only: ties may flip a pixel or two
    assert agree >= 0.995, agree
    same = lab.numpy() == want_lab
    assert np.abs(conf.numpy()[same].astype(int) - want_conf[same].astype(int)).max() <= 1


def test_exact_when_no_resize_and_confidence_values() -> None:
    logits = np.zeros((3, 2, 2), np.float32)
    logits[1, 0, 0] = 5.0  # confident class 1
    logits[:, 0, 1] = [1.0, 1.0, 0.0]  # tie between 0 and 1: lowest id wins, like numpy
    logits[2, 1, :] = 0.5
    lab, conf = logits_to_labels(torch.from_numpy(logits), (2, 2), (2, 2), (2, 2))
    want_lab, want_conf = argmax_confidence(logits, True)
    np.testing.assert_array_equal(lab.numpy(), want_lab)
    np.testing.assert_array_equal(conf.numpy(), want_conf)
    assert lab[0, 1] == 0
    assert conf[0, 0] == round(255 * np.exp(5) / (np.exp(5) + 2))


def test_fp16_logits_are_handled_in_float32() -> None:
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((1, 5, 16, 16)).astype(np.float32)
    lab16, _ = logits_to_labels(torch.from_numpy(logits).half(), (16, 16), (16, 16), (16, 16), False)
    lab32, conf = logits_to_labels(torch.from_numpy(logits), (16, 16), (16, 16), (16, 16), False)
    assert conf is None
    assert float((lab16 == lab32).float().mean()) > 0.97


def test_rejects_batches_and_too_many_classes() -> None:
    with pytest.raises(ModelError):
        logits_to_labels(torch.zeros(2, 3, 4, 4), (4, 4), (4, 4), (4, 4))
    with pytest.raises(ModelError):
        logits_to_labels(torch.zeros(1, 256, 2, 2), (2, 2), (2, 2), (2, 2))


def test_crop_hw_matches_pipeline_rule() -> None:
    assert crop_hw((90, 120), (360, 480), (270, 480)) == (68, 120)  # round(270 * 90 / 360) = 67.5 -> 68
    assert crop_hw((10, 10), (10, 10), (10, 10)) == (10, 10)
    assert crop_hw((4, 4), (400, 400), (1, 1)) == (1, 1)  # never empty


def test_is_logits_output() -> None:
    assert is_logits_output(torch.zeros(1, 11, 4, 4))
    assert is_logits_output(torch.zeros(11, 4, 4))
    assert not is_logits_output(torch.zeros(1, 1, 4, 4))  # one channel = ids or a binary score
    assert not is_logits_output(torch.zeros(1, 4, 4, dtype=torch.int64))
    assert not is_logits_output(torch.zeros(2, 11, 4, 4))


def test_label_ids_to_image_matches_numpy_postprocess() -> None:
    rng = np.random.default_rng(3)
    ids = rng.integers(-1, 9, size=(1, 20, 30)).astype(np.int64)  # some out of range for 7 classes
    seg = _segmenter(7)
    seg.spec = ModelSpec(class_names=tuple(f"c{i}" for i in range(7)), colors=None, output="labels")
    geo = Geometry((33, 41), (20, 30), (16, 30))
    want, _ = seg.postprocess(ids, geo)
    got = label_ids_to_image(torch.from_numpy(ids), geo.net, geo.content, geo.image, 7)
    np.testing.assert_array_equal(got.numpy(), want)
    assert 255 in got
