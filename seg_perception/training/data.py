"""CamVid and synthetic street-scene data for training: loading, caching and augmentation.

Conventions (whole module):
* images: uint8 H x W x 3, **RGB** channel order (converted from OpenCV's BGR on load);
* labels: uint8 H x W, CamVid ids 0..10, 11 = void (``ignore_index``);
* batches handed to the model: float32 N x 3 x H x W (RGB, (x/255 - mean)/std) and
  int64 N x H x W labels.

The test split is never loaded by the training code: :func:`load_camvid_split`
refuses ``test`` unless ``allow_test=True`` (reserved for final evaluation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seg_perception.errors import DatasetError

__all__ = [
    "CAMVID_CLASSES",
    "NUM_CLASSES",
    "IGNORE_INDEX",
    "SegArrays",
    "Augmenter",
    "load_camvid_split",
    "load_camvid_splits",
    "load_synthetic",
    "synthetic_dataset",
    "enet_class_weights",
    "to_tensor_batch",
    "iterate_batches",
]

from seg_perception.camvid import CAMVID_CLASSES, IGNORE_INDEX, NUM_CLASSES


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - environment problem
        raise DatasetError("opencv-python-headless is required for training data") from exc
    return cv2


@dataclass
class SegArrays:
    """A set of decoded samples held in memory.

    images: list of uint8 H x W x 3 RGB arrays; labels: list of uint8 H x W arrays
    (ids 0..10, 11 = void); names: one identifier per sample.
    """

    images: list[np.ndarray]
    labels: list[np.ndarray]
    names: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def extend(self, other: SegArrays) -> SegArrays:
        """Return a new SegArrays with ``other`` appended."""
        return SegArrays(self.images + other.images, self.labels + other.labels, self.names + other.names)


def load_camvid_split(root: str | Path, split: str, allow_test: bool = False) -> SegArrays:
    """Decode one CamVid split (``train``/``val``; ``test`` only with ``allow_test``) into memory.

    Reads ``<root>/<split>.txt`` (lines ``image annotation`` relative to root).
    Raises DatasetError on a missing folder/file, a size mismatch or label ids > 11.
    """
    if split == "test" and not allow_test:
        raise DatasetError("refusing to load the CamVid test split for training/selection")
    cv2 = _cv2()
    root = Path(root)
    list_file = root / f"{split}.txt"
    if not list_file.is_file():
        raise DatasetError(f"CamVid split file not found: {list_file}")
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    names: list[str] = []
    for line in list_file.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DatasetError(f"malformed line in {list_file}: {line!r}")
        img_path, lab_path = root / parts[0], root / parts[1]
        bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        lab = cv2.imread(str(lab_path), cv2.IMREAD_UNCHANGED)
        if bgr is None or lab is None:
            raise DatasetError(f"cannot read {img_path} or {lab_path}")
        if lab.ndim != 2 or lab.shape != bgr.shape[:2]:
            raise DatasetError(f"label {lab_path} shape {lab.shape} does not match image {bgr.shape}")
        if int(lab.max()) > IGNORE_INDEX:
            raise DatasetError(f"label {lab_path} has id {int(lab.max())} > {IGNORE_INDEX}")
        images.append(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        labels.append(lab.astype(np.uint8))
        names.append(f"{split}/{Path(parts[0]).name}")
    if not images:
        raise DatasetError(f"CamVid split {split!r} in {root} is empty")
    return SegArrays(images, labels, names)


def load_camvid_splits(root: str | Path, splits: Sequence[str]) -> SegArrays:
    """Load and concatenate several splits (e.g. ``["train", "val"]``)."""
    out = SegArrays([], [], [])
    for split in splits:
        out = out.extend(load_camvid_split(root, split))
    return out


def load_synthetic(
    seeds: Sequence[int],
    cache_dir: str | Path | None,
    height: int = 360,
    width: int = 480,
    renderer: Callable[..., object] | None = None,
) -> SegArrays:
    """Render (or load from ``cache_dir/street_<seed>_<H>x<W>.npz``) synthetic street scenes.

    ``renderer(seed, height, width)`` must return an object with ``.rgb`` (H x W x 3
    uint8 RGB) and ``.labels`` (H x W uint8, CamVid ids, 11 = void); by default
    ``seg_perception.synthetic.street.render_street``.
    """
    if renderer is None:
        try:
            from seg_perception.synthetic.street import render_street
        except ImportError as exc:
            raise DatasetError("seg_perception.synthetic.street.render_street is not available") from exc
        renderer = render_street
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    names: list[str] = []
    for seed in seeds:
        path = cache / f"street_{seed}_{height}x{width}.npz" if cache is not None else None
        if path is not None and path.is_file():
            with np.load(path) as z:
                rgb, lab = z["rgb"], z["labels"]
        elif path is not None and (packed := _packed_scene(path)) is not None:
            rgb, lab = packed
        else:
            scene = renderer(int(seed), height=height, width=width)
            rgb = np.ascontiguousarray(np.asarray(scene.rgb, dtype=np.uint8))
            lab = np.ascontiguousarray(np.asarray(scene.labels, dtype=np.uint8))
            if path is not None:
                tmp = path.with_suffix(".tmp.npz")
                np.savez_compressed(tmp, rgb=rgb, labels=lab)
                tmp.replace(path)
        if rgb.shape != (height, width, 3) or lab.shape != (height, width):
            raise DatasetError(f"synthetic scene {seed}: bad shapes {rgb.shape}, {lab.shape}")
        if int(lab.max()) > IGNORE_INDEX:
            raise DatasetError(f"synthetic scene {seed}: label id {int(lab.max())} > {IGNORE_INDEX}")
        images.append(rgb)
        labels.append(lab)
        names.append(f"synthetic/{seed}")
    return SegArrays(images, labels, names)


def _packed_scene(npz_path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """A scene stored by ``scripts/pack_camvid.py`` as ``<stem>.jpg`` (RGB) + ``<stem>_labels.png``
    beside where its ``.npz`` would be (a compact copy for a GPU machine); None if absent."""
    jpg, png = npz_path.with_suffix(".jpg"), npz_path.with_name(npz_path.stem + "_labels.png")
    if not (jpg.is_file() and png.is_file()):
        return None
    cv2 = _cv2()
    bgr = cv2.imread(str(jpg), cv2.IMREAD_COLOR)
    lab = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    if bgr is None or lab is None:
        raise DatasetError(f"packed synthetic scene {jpg} / {png} cannot be decoded")
    return np.ascontiguousarray(bgr[..., ::-1]), lab


def synthetic_dataset(cfg: dict, seeds: Sequence[int], cache_dir: str | Path | None) -> SegArrays:
    """Convenience wrapper: ``load_synthetic`` with height/width from a ``synthetic`` config dict."""
    return load_synthetic(seeds, cache_dir, int(cfg.get("height", 360)), int(cfg.get("width", 480)))


def enet_class_weights(labels: Sequence[np.ndarray], num_classes: int = NUM_CLASSES, c: float = 1.10) -> np.ndarray:
    """ENet-style class weights w_k = 1 / ln(c + p_k), p_k = pixel share of class k (void excluded).

    Returns float32 array of shape (num_classes,).
    """
    counts = np.zeros(num_classes, dtype=np.float64)
    for lab in labels:
        counts += np.bincount(lab.ravel(), minlength=num_classes + 1)[:num_classes]
    if counts.sum() <= 0:
        raise DatasetError("no labelled pixels to compute class weights from")
    p = counts / counts.sum()
    return (1.0 / np.log(c + p)).astype(np.float32)


class Augmenter:
    """Training augmentation: random scale, pad (ignore) + random crop, h-flip, colour jitter.

    All randomness comes from the ``np.random.Generator`` passed to ``__call__``.
    Input/Output: uint8 H x W x 3 RGB + uint8 H x W labels -> crop_h x crop_w versions.
    """

    def __init__(
        self,
        crop: Sequence[int] = (288, 384),
        scale_range: Sequence[float] = (0.5, 2.0),
        hflip: bool = True,
        brightness: float = 0.3,
        contrast: float = 0.3,
        saturation: float = 0.3,
        hue: float = 0.03,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        self.crop_h, self.crop_w = int(crop[0]), int(crop[1])
        self.smin, self.smax = float(scale_range[0]), float(scale_range[1])
        self.hflip = hflip
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.ignore_index = ignore_index

    def __call__(self, img: np.ndarray, lab: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        cv2 = _cv2()
        h, w = lab.shape
        s = rng.uniform(self.smin, self.smax)
        ch, cw = self.crop_h, self.crop_w
        # Crop window in the scaled image, mapped back to source pixels so that only
        # the needed region is resized (cheap at large scales).
        sh, sw = max(1, round(h * s)), max(1, round(w * s))
        y0 = int(rng.integers(0, max(sh - ch, 0) + 1))
        x0 = int(rng.integers(0, max(sw - cw, 0) + 1))
        oh, ow = min(ch, sh), min(cw, sw)
        sy0, sx0 = math.floor(y0 / s), math.floor(x0 / s)
        sy1, sx1 = min(h, math.ceil((y0 + oh) / s) + 1), min(w, math.ceil((x0 + ow) / s) + 1)
        src_img = img[sy0:sy1, sx0:sx1]
        src_lab = lab[sy0:sy1, sx0:sx1]
        # Affine map: dst = (src + sy0) * s - y0  => exact alignment of the crop.
        m = np.array([[s, 0.0, sx0 * s - x0], [0.0, s, sy0 * s - y0]], dtype=np.float64)
        out_img = cv2.warpAffine(src_img, m, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out_lab = cv2.warpAffine(
            src_lab,
            m,
            (ow, oh),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=self.ignore_index,
        )
        if oh < ch or ow < cw:  # scaled image smaller than the crop: pad (void), random placement
            py, px = int(rng.integers(0, ch - oh + 1)), int(rng.integers(0, cw - ow + 1))
            pad_img = np.zeros((ch, cw, 3), np.uint8)
            pad_lab = np.full((ch, cw), self.ignore_index, np.uint8)
            pad_img[py : py + oh, px : px + ow] = out_img
            pad_lab[py : py + oh, px : px + ow] = out_lab
            out_img, out_lab = pad_img, pad_lab
        if self.hflip and rng.random() < 0.5:
            out_img, out_lab = out_img[:, ::-1], out_lab[:, ::-1]
        out_img = self._jitter(np.ascontiguousarray(out_img), rng)
        return out_img, np.ascontiguousarray(out_lab)

    def _jitter(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Colour jitter on uint8 RGB: brightness, contrast, saturation (float ops), hue (HSV shift)."""
        cv2 = _cv2()
        if self.hue > 0:
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            shift = int(round(rng.uniform(-self.hue, self.hue) * 180))
            hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        x = img.astype(np.float32)
        b = 1.0 + rng.uniform(-self.brightness, self.brightness)
        c = 1.0 + rng.uniform(-self.contrast, self.contrast)
        sat = 1.0 + rng.uniform(-self.saturation, self.saturation)
        gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = x * b
        mean = float(gray.mean()) * b
        x = (x - mean) * c + mean
        g = (gray * b)[..., None]
        x = (x - g) * sat + g
        return np.clip(x, 0, 255).astype(np.uint8)


def to_tensor_batch(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray] | None,
    mean: Sequence[float],
    std: Sequence[float],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stack uint8 H x W x 3 RGB images -> float32 N x 3 x H x W normalised ((x/255 - mean)/std);
    labels uint8 H x W -> int64 N x H x W (or None)."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    x = ((x - m) / s).contiguous()
    y = torch.from_numpy(np.stack(labels)).long() if labels is not None else None
    return x, y


def iterate_batches(
    data: SegArrays,
    order: Sequence[int],
    batch_size: int,
    augment: Augmenter,
    seed: int,
    epoch: int,
    mean: Sequence[float],
    std: Sequence[float],
    drop_last: bool = True,
):
    """Yield (x float32 N x 3 x h x w, y int64 N x h x w) augmented batches in ``order``.

    Each sample's randomness is seeded by (seed, epoch, position), so an epoch is
    reproducible and resuming at an epoch boundary gives identical batches.
    """
    n = len(order)
    stop = n - n % batch_size if drop_last else n
    for b0 in range(0, stop, batch_size):
        imgs, labs = [], []
        for pos in range(b0, min(b0 + batch_size, n)):
            rng = np.random.default_rng([seed, epoch, pos])
            i = order[pos]
            im, lb = augment(data.images[i], data.labels[i], rng)
            imgs.append(im)
            labs.append(lb)
        yield to_tensor_batch(imgs, labs, mean, std)
