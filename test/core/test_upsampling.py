"""Labels of up-sampled logits without up-sampling them: same labels as resizing the logits first."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.pipeline import argmax_confidence
from seg_perception.upsampling import first_argmax, linear_taps, upsampled_labels

MODEL = Path(__file__).resolve().parents[2] / "models" / "camvid.onnx"


def reference_labels(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The previous path: resize all K logit planes with OpenCV, then arg-max."""
    hwk = cv2.resize(np.ascontiguousarray(logits.transpose(1, 2, 0)), (size[1], size[0]), cv2.INTER_LINEAR)
    return argmax_confidence(hwk.reshape(size[0], size[1], -1).transpose(2, 0, 1), False)[0]


def smooth_logits(k: int, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((k, max(2, h // 6), max(2, w // 6))).astype(np.float32)
    return np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in coarse]) * 3.0


@pytest.mark.parametrize("n_out,n_in", [(10, 4), (640, 480), (1280, 480), (7, 7), (5, 1)])
def test_linear_taps_reproduce_opencv_sampling(n_out: int, n_in: int) -> None:
    ramp = (np.arange(n_in, dtype=np.float32) ** 1.5)[None, :]
    expected = cv2.resize(ramp, (n_out, 1), interpolation=cv2.INTER_LINEAR)[0]
    i0, i1, f = linear_taps(n_out, n_in)
    got = ramp[0, i0] * (1 - f) + ramp[0, i1] * f
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("size", [(96, 128), (480, 640), (101, 133), (45, 200)])
def test_labels_equal_resizing_the_logits_first(size: tuple[int, int]) -> None:
    logits = smooth_logits(11, 45, 60, seed=size[0])
    got = upsampled_labels(logits, size)
    want = reference_labels(logits, size)
    assert got.shape == size and got.dtype == np.uint8
    # Exact by construction; only float rounding of a near tie may split a pixel.
    assert (got != want).mean() <= 1e-4


def test_nan_logits_stay_unknown() -> None:
    logits = smooth_logits(4, 8, 8, seed=3)
    logits[:, 2:4, 2:4] = np.nan
    got = upsampled_labels(logits, (32, 32))
    assert (got == 255).any()
    assert np.array_equal(first_argmax(logits)[logits[0] != logits[0]], np.full(4, 255, np.uint8))


def test_bundled_model_labels_match_the_old_path_at_720p() -> None:
    ort = pytest.importorskip("onnxruntime")
    from seg_perception.backends.onnxruntime import OnnxRuntimeBackend
    from seg_perception.model_spec import ModelSpec
    from seg_perception.pipeline import Segmenter
    from seg_perception.synthetic.street import render_street

    assert ort is not None
    spec = ModelSpec.for_model(MODEL)
    seg = Segmenter(OnnxRuntimeBackend(MODEL, num_threads=1), spec)
    frame = cv2.resize(render_street(5).rgb, (1280, 720), interpolation=cv2.INTER_LINEAR)
    tensor, geo = seg.preprocess(frame)
    logits = seg.backend.infer(tensor)[0]
    new, conf = seg.postprocess(logits[None], geo, want_confidence=False)
    old = reference_labels(logits, (720, 1280))
    assert new.shape == (720, 1280) and conf is None
    with_conf, conf = seg.postprocess(logits[None], geo, want_confidence=True)
    assert np.array_equal(with_conf, old) and conf is not None and conf.shape == (720, 1280)
    assert (new != old).mean() <= 1e-4
    # At the network's own size nothing changed: the plain arg-max.
    same, _ = seg.postprocess(logits[None], seg.geometry(360, 480), want_confidence=False)
    assert np.array_equal(same, argmax_confidence(logits, False)[0])


def test_labels_for_grid_shrink_big_frames_only() -> None:
    from seg_perception.upsampling import labels_for_grid

    small = np.arange(48 * 64, dtype=np.uint8).reshape(48, 64)
    assert labels_for_grid(small) is small
    big = np.zeros((720, 1280), np.uint8)
    big[:, 640:] = 3
    out = labels_for_grid(big)
    assert out.shape == (360, 640)
    assert (out[:, :320] == 0).all() and (out[:, 320:] == 3).all()
