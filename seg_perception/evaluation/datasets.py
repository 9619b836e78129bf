"""Reader for datasets in the CamVid / SegNet layout.

Layout: ``DIR/<split>.txt`` lists one ``image annotation`` pair per line, paths relative
to ``DIR`` (absolute paths from other machines, e.g. ``/SegNet/CamVid/test/x.png``, are
resolved by their last two components below ``DIR``). Images are 8-bit RGB files (PNG
or JPEG); annotations are single-channel 8-bit PNGs holding one class id per pixel.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seg_perception.errors import DatasetError


@dataclass(frozen=True)
class Sample:
    """One dataset entry: image and annotation file paths and a short name (the image stem)."""

    image: Path
    label: Path
    name: str


def _natural_key(name: str) -> list:
    # Frame numbers inside names sort numerically (frame 9 before frame 10).
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def read_rgb(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB; DatasetError when missing or unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"cannot read image {path}" + ("" if path.exists() else " (file does not exist)"))
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_label(path: Path) -> np.ndarray:
    """A label file as HxW uint8 class ids; DatasetError when missing, unreadable or not 8-bit single-channel."""
    lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise DatasetError(f"cannot read label image {path}" + ("" if path.exists() else " (file does not exist)"))
    if lab.ndim == 3:
        # Some exports store ids in all three channels; accept only when they agree.
        if lab.shape[2] >= 3 and np.array_equal(lab[..., 0], lab[..., 1]) and np.array_equal(lab[..., 0], lab[..., 2]):
            lab = lab[..., 0]
        else:
            raise DatasetError(f"label image {path} has {lab.shape[2]} channels; expected one class id per pixel")
    if lab.dtype != np.uint8:
        raise DatasetError(f"label image {path} is {lab.dtype}; expected 8-bit class ids")
    return lab


class SegmentationDataset:
    """A split of a CamVid-layout dataset.

    Args:
        root: dataset folder holding ``<split>.txt``.
        split: split name, e.g. "test".
        limit: use only the first ``limit`` samples (after ordering), None for all.
        sort: order samples by image file name (natural order: sequences stay together
            and frames are in time order) instead of split-file order.

    Raises DatasetError for a missing split file, a malformed line, or a listed file that
    does not exist.
    """

    def __init__(self, root: str | Path, split: str = "test", limit: int | None = None, sort: bool = False) -> None:
        self.root = Path(root).expanduser()
        self.split = split
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder {self.root} does not exist")
        split_file = self.root / f"{split}.txt"
        if not split_file.is_file():
            available = sorted(p.stem for p in self.root.glob("*.txt"))
            raise DatasetError(
                f"split file {split_file} not found" + (f"; available splits: {available}" if available else "")
            )
        samples = []
        for lineno, line in enumerate(split_file.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DatasetError(f"{split_file}:{lineno}: expected 'image annotation', got {line!r}")
            image, label = (self._resolve(p, split_file, lineno) for p in parts)
            samples.append(Sample(image, label, image.stem))
        if not samples:
            raise DatasetError(f"split file {split_file} lists no samples")
        if sort:
            samples.sort(key=lambda s: _natural_key(s.image.name))
        if limit is not None:
            if limit < 1:
                raise DatasetError(f"--limit must be >= 1, got {limit}")
            samples = samples[:limit]
        self.samples: list[Sample] = samples

    def _resolve(self, rel: str, split_file: Path, lineno: int) -> Path:
        path = Path(rel)
        candidates = [path] if path.is_absolute() else [self.root / path]
        if path.is_absolute() and len(path.parts) >= 2:
            candidates.append(self.root / path.parts[-2] / path.parts[-1])
        for c in candidates:
            if c.is_file():
                return c
        raise DatasetError(f"{split_file}:{lineno}: file {candidates[-1]} does not exist")

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(HxWx3 uint8 RGB image, HxW uint8 label ids) of sample ``index``.

        Raises DatasetError when the label's size differs from the image's.
        """
        s = self.samples[index]
        rgb = read_rgb(s.image)
        lab = read_label(s.label)
        if lab.shape != rgb.shape[:2]:
            raise DatasetError(
                f"label {s.label} is {lab.shape[1]}x{lab.shape[0]} but its image {s.image.name} is "
                f"{rgb.shape[1]}x{rgb.shape[0]}"
            )
        return rgb, lab

    def __iter__(self) -> Iterator[tuple[Sample, np.ndarray, np.ndarray]]:
        for i, s in enumerate(self.samples):
            rgb, lab = self.load(i)
            yield s, rgb, lab
