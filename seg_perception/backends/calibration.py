"""INT8 calibration data: sample images -> pre-processed input batches (no TensorRT here).

Batches go through the project's one pre-processing (``backends.preprocess``); the
TensorRT calibrator that copies them to the GPU is in ``tensorrt_build.py``. Choosing
calibration images: docs/backends.md.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from seg_perception.backends.preprocess import Preprocessor
from seg_perception.errors import ConfigError, ImageError
from seg_perception.model_spec import ModelSpec

LOG = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")
#: Default number of calibration images: TensorRT's guidance is a few hundred.
DEFAULT_MAX_IMAGES = 256


def list_calibration_images(folder: str | Path, max_images: int = DEFAULT_MAX_IMAGES) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted, evenly thinned to ``max_images``.

    Thinning takes every k-th file rather than the first ``max_images`` so that a folder
    of video frames contributes all of its scenes. Raises ConfigError when the folder is
    missing or holds no images.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"calibration folder {root} does not exist or is not a folder")
    if max_images < 1:
        raise ConfigError(f"max calibration images must be >= 1, got {max_images}")
    paths = sorted(
        (p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not paths:
        raise ConfigError(f"calibration folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if len(paths) > max_images:
        idx = np.unique(np.linspace(0, len(paths) - 1, max_images).round().astype(int))
        paths = [paths[i] for i in idx]
    return paths


def calibration_fingerprint(
    paths: Sequence[Path], spec: ModelSpec | None = None, batch_shape: Sequence[int] = ()
) -> str:
    """Stable hash of a calibration set: file names and sizes, pre-processing and batch shape.

    Names + sizes (not contents) keep this cheap for hundreds of images while still
    catching added, removed or replaced files. The normalization is included because it
    changes the activations the scales are computed from.
    """
    h = hashlib.sha256()
    for p in paths:
        try:
            size = p.stat().st_size
        except OSError:
            size = -1
        h.update(f"{p.name}:{size};".encode())
    if spec is not None:
        h.update(repr((spec.mean, spec.std, spec.channel_order, spec.resize)).encode())
    h.update(repr(tuple(int(v) for v in batch_shape)).encode())
    return h.hexdigest()[:24]


def load_rgb(path: str | Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB; raises ImageError when it cannot be decoded."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f"cannot decode image {path}")
    return np.ascontiguousarray(bgr[..., ::-1])


def make_preprocess(spec: ModelSpec, net_hw: tuple[int, int]) -> Callable[[np.ndarray], np.ndarray]:
    """``f(rgb HxWx3 uint8) -> 1x3xHxW float32`` exactly as the Segmenter feeds a network of ``net_hw``."""
    pre = Preprocessor(spec, static_hw=(int(net_hw[0]), int(net_hw[1])))

    def preprocess(rgb: np.ndarray) -> np.ndarray:
        return pre(rgb)[0]

    return preprocess


class CalibrationBatches:
    """Pre-processed calibration batches of shape ``batch_shape`` (N, 3, H, W) float32.

    Use ``next_batch()`` (the calibrator's pull interface: None when exhausted) or
    iterate. Unreadable images are skipped with a warning; an incomplete last batch is
    dropped (TensorRT needs full batches). ``reset()`` starts over.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        preprocess: Callable[[np.ndarray], np.ndarray],
        batch_shape: Sequence[int],
    ) -> None:
        self.paths = list(paths)
        self.batch_shape = tuple(int(v) for v in batch_shape)
        if len(self.batch_shape) != 4 or min(self.batch_shape) < 1:
            raise ConfigError(f"calibration batch shape must be N,C,H,W > 0, got {list(batch_shape)}")
        if len(self.paths) < self.batch_shape[0]:
            raise ConfigError(f"{len(self.paths)} calibration images cannot fill one batch of {self.batch_shape[0]}")
        self._preprocess = preprocess
        self._pos = 0
        self.batches_served = 0
        self.skipped: list[Path] = []

    def __len__(self) -> int:
        """Upper bound on the number of batches (fewer if images are unreadable)."""
        return len(self.paths) // self.batch_shape[0]

    def reset(self) -> None:
        self._pos = 0
        self.batches_served = 0

    def next_batch(self) -> np.ndarray | None:
        """The next (N, C, H, W) float32 C-contiguous batch, or None when the images run out."""
        n = self.batch_shape[0]
        batch = np.empty(self.batch_shape, np.float32)
        filled = 0
        while filled < n and self._pos < len(self.paths):
            path = self.paths[self._pos]
            self._pos += 1
            try:
                x = self._preprocess(load_rgb(path))
            except ImageError as err:
                LOG.warning("calibration: skipping %s: %s", path, err)
                self.skipped.append(path)
                continue
            if tuple(x.shape) != (1, *self.batch_shape[1:]):
                raise ConfigError(
                    f"pre-processed calibration image has shape {tuple(x.shape)}, expected {(1, *self.batch_shape[1:])}"
                )
            batch[filled] = x[0]
            filled += 1
        if filled < n:
            return None
        self.batches_served += 1
        return batch

    def __iter__(self) -> Iterator[np.ndarray]:
        self.reset()
        while (b := self.next_batch()) is not None:
            yield b


def calibration_batches(
    folder: str | Path,
    spec: ModelSpec,
    input_shape: Sequence[int],
    max_images: int = DEFAULT_MAX_IMAGES,
) -> CalibrationBatches:
    """Batches for an engine input of ``input_shape`` (N, 3, H, W) from the images in ``folder``."""
    shape = tuple(int(v) for v in input_shape)
    paths = list_calibration_images(folder, max_images)
    return CalibrationBatches(paths, make_preprocess(spec, (shape[2], shape[3])), shape)
