"""INT8 calibration data: image listing, batching and pre-processing parity (no TensorRT needed)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.backends.calibration import (
    CalibrationBatches,
    calibration_batches,
    calibration_fingerprint,
    list_calibration_images,
    load_rgb,
    make_preprocess,
)
from seg_perception.errors import ConfigError, ImageError
from seg_perception.model_spec import ModelSpec

SPEC = ModelSpec(class_names=("a", "b", "c"), colors=None, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))


def _write_images(folder: Path, n: int, hw: tuple[int, int] = (12, 16), start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    out = []
    for i in range(start, start + n):
        p = folder / f"f{i:03d}.png"
        cv2.imwrite(str(p), rng.integers(0, 256, (*hw, 3), dtype=np.uint8))
        out.append(p)
    return out


def test_lists_images_recursively_sorted_and_ignores_other_files(tmp_path: Path) -> None:
    _write_images(tmp_path / "seq_b", 2)
    _write_images(tmp_path / "seq_a", 2, start=5)
    (tmp_path / "notes.txt").write_text("x")
    paths = list_calibration_images(tmp_path)
    rel = [p.relative_to(tmp_path).as_posix() for p in paths]
    assert rel == ["seq_a/f005.png", "seq_a/f006.png", "seq_b/f000.png", "seq_b/f001.png"]


def test_thinning_spreads_over_the_whole_folder(tmp_path: Path) -> None:
    for i in range(20):
        (tmp_path / f"{i:02d}.jpg").write_bytes(b"")
    paths = list_calibration_images(tmp_path, max_images=5)
    assert [p.stem for p in paths] == ["00", "05", "10", "14", "19"]


def test_missing_or_empty_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        list_calibration_images(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no images"):
        list_calibration_images(tmp_path)
    with pytest.raises(ConfigError):
        list_calibration_images(tmp_path, max_images=0)


def test_batches_equal_the_segmenter_preprocessing(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, 5, hw=(30, 40))
    batches = calibration_batches(tmp_path, SPEC, (2, 3, 16, 24))
    got = list(batches)
    assert len(batches) == 2 and len(got) == 2  # 5 images -> 2 full batches of 2, the last image dropped
    assert all(b.shape == (2, 3, 16, 24) and b.dtype == np.float32 and b.flags.c_contiguous for b in got)
    pre = make_preprocess(SPEC, (16, 24))
    np.testing.assert_array_equal(got[1][0], pre(load_rgb(paths[2]))[0])
    # normalisation per RGB channel: (p/255 - mean)/std
    flat = pre(np.full((30, 40, 3), (51, 102, 153), np.uint8))[0]
    np.testing.assert_allclose(flat[:, 0, 0], [(0.2 - 0.5) / 0.2, (0.4 - 0.4) / 0.25, (0.6 - 0.3) / 0.3], atol=1e-5)


def test_next_batch_pull_interface_and_reset(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, 3)
    b = CalibrationBatches(paths, make_preprocess(SPEC, (8, 8)), (1, 3, 8, 8))
    assert b.next_batch() is not None and b.next_batch() is not None and b.next_batch() is not None
    assert b.next_batch() is None and b.batches_served == 3
    b.reset()
    assert b.next_batch() is not None and b.batches_served == 1


def test_unreadable_images_are_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = _write_images(tmp_path, 2)
    bad = tmp_path / "f000b.png"
    bad.write_bytes(b"not a png")
    b = CalibrationBatches([paths[0], bad, paths[1]], make_preprocess(SPEC, (8, 8)), (2, 3, 8, 8))
    with caplog.at_level(logging.WARNING):
        batch = b.next_batch()
    assert batch is not None and b.skipped == [bad]
    assert any("skipping" in r.message for r in caplog.records)


def test_batch_larger_than_the_image_set_is_rejected(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, 2)
    with pytest.raises(ConfigError, match="cannot fill"):
        CalibrationBatches(paths, make_preprocess(SPEC, (8, 8)), (4, 3, 8, 8))


def test_load_rgb_channel_order_and_errors(tmp_path: Path) -> None:
    img = np.zeros((4, 5, 3), np.uint8)
    img[..., 0] = 200  # red in RGB
    cv2.imwrite(str(tmp_path / "r.png"), img[..., ::-1])
    assert load_rgb(tmp_path / "r.png")[0, 0].tolist() == [200, 0, 0]
    with pytest.raises(ImageError):
        load_rgb(tmp_path / "missing.png")


def test_fingerprint_changes_with_images_and_normalisation(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, 3)
    fp = calibration_fingerprint(paths, SPEC, (1, 3, 8, 8))
    assert fp == calibration_fingerprint(paths, SPEC, (1, 3, 8, 8))
    assert fp != calibration_fingerprint(paths[:2], SPEC, (1, 3, 8, 8))
    assert fp != calibration_fingerprint(paths, ModelSpec(class_names=("a", "b", "c"), colors=None), (1, 3, 8, 8))
    assert fp != calibration_fingerprint(paths, SPEC, (1, 3, 16, 8))
