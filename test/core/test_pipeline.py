"""Segmenter pre/post-processing: shapes, encodings, padding, letterbox, static inputs, bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from seg_perception.backends import create_backend
from seg_perception.backends.base import Backend, TensorSpec
from seg_perception.errors import ImageError, ModelError
from seg_perception.model_spec import ModelSpec
from seg_perception.pipeline import Frame, Segmenter, argmax_confidence, colorize, overlay


class EchoBackend(Backend):
    """Returns fixed logits derived from the input tensor so post-processing is checkable.

    Class k's logit is -(x_red - c_k)^2, with c_k = k / K on the normalized red channel,
    so each pixel's label is determined by its red value.
    """

    name = "echo"

    def __init__(self, k: int = 4, static: tuple[int, int] | None = None, stride: int = 1):
        self.k, self.static, self.stride = k, static, stride
        self.last_input: np.ndarray | None = None

    @property
    def input_spec(self) -> TensorSpec:
        h, w = self.static or (None, None)
        return TensorSpec("input", (1, 3, h, w), np.dtype(np.float32))

    @property
    def output_spec(self) -> TensorSpec:
        return TensorSpec("logits", (1, self.k, None, None), np.dtype(np.float32))

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        self.last_input = tensor
        red = tensor[:, 0:1, :: self.stride, :: self.stride]
        centres = (np.arange(self.k, dtype=np.float32) / self.k).reshape(1, -1, 1, 1)
        return -((red - centres) ** 2)


def spec(k: int = 4, **kw) -> ModelSpec:
    return ModelSpec(tuple(f"c{i}" for i in range(k)), None, mean=(0, 0, 0), std=(1, 1, 1), **kw)


def red_image(h: int, w: int, value: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = value
    return img


@pytest.mark.parametrize(("h", "w"), [(1, 1), (7, 13), (360, 480), (481, 641)])
def test_output_matches_input_size(h, w):
    seg = Segmenter(EchoBackend(), spec(size_divisor=8)).segment(red_image(h, w, 200))
    assert seg.labels.shape == (h, w) and seg.labels.dtype == np.uint8
    assert seg.confidence is not None and seg.confidence.shape == (h, w)
    assert set(seg.timings) == {"preprocess", "inference", "postprocess"}


def test_labels_follow_the_logits_through_padding():
    img = red_image(10, 21, 0)
    img[:, 11:, 0] = 255  # right part: red = 1.0 -> class 3 (centre 0.75 is nearest)
    backend = EchoBackend()
    seg = Segmenter(backend, spec(size_divisor=8)).segment(img)
    assert backend.last_input.shape == (1, 3, 16, 24)  # padded up to the divisor, never stretched
    assert (seg.labels[:, :11] == 0).all() and (seg.labels[:, 11:] == 3).all()


def test_normalization_and_channel_order():
    backend = EchoBackend()
    sp = ModelSpec(("a", "b"), None, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0), channel_order="BGR")
    backend.k = 2
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0], img[..., 2] = 255, 51  # R = 1.0, B = 0.2
    Segmenter(backend, sp).segment(img)
    x = backend.last_input[0]
    # BGR order: channel 0 is blue: (0.2 - 0.5) / 0.5
    np.testing.assert_allclose(x[0], (0.2 - 0.5) / 0.5, atol=1e-6)
    np.testing.assert_allclose(x[2], (1.0 - 0.0) / 1.0, atol=1e-6)


def test_static_input_resizes_and_maps_back():
    backend = EchoBackend(static=(32, 32))
    seg = Segmenter(backend, spec()).segment(red_image(50, 70, 255))
    assert backend.last_input.shape == (1, 3, 32, 32)
    assert seg.labels.shape == (50, 70) and (seg.labels == 3).all()


def test_letterbox_keeps_aspect_and_crops_padding():
    backend = EchoBackend()
    img = red_image(20, 80, 255)
    seg = Segmenter(backend, spec(input_size=(40, 40), resize="letterbox")).segment(img)
    assert backend.last_input.shape == (1, 3, 40, 40)
    assert seg.labels.shape == (20, 80) and (seg.labels == 3).all()  # padding (mean colour) never leaks in


def test_low_resolution_output_is_upsampled():
    backend = EchoBackend(stride=4)
    seg = Segmenter(backend, spec()).segment(red_image(64, 48, 255))
    assert seg.labels.shape == (64, 48) and (seg.labels == 3).all()


def test_argmax_confidence_matches_numpy():
    logits = np.random.default_rng(0).normal(size=(6, 9, 11)).astype(np.float32)
    labels, conf = argmax_confidence(logits)
    np.testing.assert_array_equal(labels, logits.argmax(0))
    p = np.exp(logits - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
    np.testing.assert_allclose(conf, np.rint(p.max(0) * 255), atol=1)
    assert argmax_confidence(logits, want_confidence=False)[1] is None


def test_labels_output_models_and_class_count_checks():
    class LabelBackend(EchoBackend):
        def infer(self, tensor):
            return np.full((1, tensor.shape[2], tensor.shape[3]), 7, np.int64)

    seg = Segmenter(LabelBackend(), spec(output="labels")).segment(red_image(5, 5, 0))
    assert (seg.labels == 255).all() and seg.confidence is None  # 7 is not a class of a 4-class model: unknown
    with pytest.raises(ModelError, match="classes"):
        Segmenter(EchoBackend(k=5), spec(4)).segment(red_image(4, 4, 0))


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8)]
)
def test_bad_images_raise(bad):
    with pytest.raises(ImageError):
        Segmenter(EchoBackend(), spec()).segment(bad)


def test_onnx_model_end_to_end(tiny_model: Path):
    with create_backend("onnxruntime", tiny_model) as backend:
        seg = Segmenter(backend, ModelSpec.for_model(tiny_model)).segment(red_image(37, 53, 90))
    assert seg.labels.shape == (37, 53) and seg.labels.max() < 11


def test_colorize_and_overlay():
    colors = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    labels = np.array([[0, 1], [255, 0]], np.uint8)
    np.testing.assert_array_equal(colorize(labels, colors)[0, 1], [0, 255, 0])
    img = np.full((2, 2, 3), 100, np.uint8)
    out = overlay(img, labels, colors, 0.5)
    np.testing.assert_array_equal(out[1, 0], [100, 100, 100])  # unknown keeps the image
    np.testing.assert_array_equal(out[0, 0], [178, 50, 50])


def test_argmax_ties_take_the_lower_class_and_nan_is_unknown():
    logits = np.zeros((3, 2, 2), np.float32)
    logits[1, 0, 0] = logits[2, 0, 0] = 5.0
    logits[:, 1, 1] = np.nan
    labels, conf = argmax_confidence(logits)
    assert labels[0, 0] == 1 and labels[0, 1] == 0 and labels[1, 1] == 255
    assert conf[0, 1] == 85  # three equal logits: p = 1/3


def test_frame_is_immutable() -> None:
    frame = Frame(rgb=np.zeros((2, 2, 3), np.uint8), labels=np.zeros((2, 2), np.uint8), confidence=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.labels = np.ones((2, 2), np.uint8)  # type: ignore[misc]
