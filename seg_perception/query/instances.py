"""Instances of a class (connected components of its mask) and spatial selection among them.

Image coordinates: column x to the right, row y down, pixels. "Nearest" without a
range image means the instance whose lowest pixel is lowest in the image (largest
row): for objects standing on the ground in front of a forward-looking camera, the
ground contact nearer the camera appears lower. With a per-pixel range array
(metres; NaN/inf/<= 0 = unknown) the instance's range is the 10th percentile of its
known ranges (its near face, robust to a few stray pixels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# Spatial selectors that pick exactly one instance.
SUPERLATIVES = ("leftmost", "rightmost", "nearest", "farthest", "largest", "smallest", "top", "bottom")
# Region words: pick the extreme instance for a singular query, filter for a plural one.
REGIONS = ("left", "right", "middle")
_REGION_AS_SUPERLATIVE = {"left": "leftmost", "right": "rightmost", "middle": "middle"}


@dataclass
class Instance:
    """One connected component of a class mask.

    Attributes:
        label: component id in the label image of ``Instances``.
        area: pixels.
        bbox: (x, y, w, h) pixels.
        centroid: (x, y) pixels (float).
        range_m: robust range in metres when a range array was given, else None.
        colours: colour name -> matching fraction (filled when a colour was asked for).
    """

    label: int
    area: int
    bbox: tuple[int, int, int, int]
    centroid: tuple[float, float]
    range_m: float | None = None
    colours: dict[str, float] | None = None

    @property
    def bottom(self) -> int:
        """Row of the lowest pixel."""
        return self.bbox[1] + self.bbox[3] - 1


@dataclass
class Instances:
    """Components of one class mask: a label image (HxW int32, 0 = background) and the kept instances."""

    components: np.ndarray
    items: list[Instance]
    speck_pixels: int  # class pixels in components smaller than the minimum area


def find_instances(class_mask: np.ndarray, min_area: int) -> Instances:
    """8-connected components of ``class_mask`` (HxW bool/uint8) with at least ``min_area`` pixels."""
    mask = class_mask.astype(np.uint8, copy=False)
    n, comp, stats, cents = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
    items: list[Instance] = []
    specks = 0
    for k in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[k])
        if area < min_area:
            specks += area
            continue
        items.append(Instance(k, area, (x, y, w, h), (float(cents[k, 0]), float(cents[k, 1]))))
    return Instances(comp, items, specks)


def attach_ranges(instances: Instances, ranges: np.ndarray) -> None:
    """Set ``range_m`` of every instance from a per-pixel range array (HxW, metres)."""
    for inst in instances.items:
        x, y, w, h = inst.bbox
        sel = instances.components[y : y + h, x : x + w] == inst.label
        vals = np.asarray(ranges[y : y + h, x : x + w], dtype=np.float64)[sel]
        vals = vals[np.isfinite(vals) & (vals > 0)]
        inst.range_m = float(np.percentile(vals, 10)) if vals.size else None


def _key(selector: str, width: int) -> tuple[Callable[[Instance], float], bool]:
    """Sort key and whether the best is the minimum, for a superlative (unknown ones fall back to largest)."""
    centre = (width - 1) / 2.0
    keys: dict[str, tuple[Callable[[Instance], float], bool]] = {
        "leftmost": (lambda i: i.centroid[0], True),
        "rightmost": (lambda i: i.centroid[0], False),
        "middle": (lambda i: abs(i.centroid[0] - centre), True),
        "largest": (lambda i: i.area, False),
        "smallest": (lambda i: i.area, True),
        "top": (lambda i: i.bbox[1], True),
        "bottom": (lambda i: i.bottom, False),
    }
    return keys.get(selector, keys["largest"])


def pick_one(items: list[Instance], selector: str, width: int) -> Instance:
    """The instance ``selector`` names among non-empty ``items``.

    nearest/farthest use ``range_m`` where every candidate has one, else the image row of
    the lowest pixel (larger row = nearer). Ties keep the earlier (larger colour score) item.
    """
    if selector in ("nearest", "farthest"):
        if all(i.range_m is not None for i in items):
            fn = min if selector == "nearest" else max
            return fn(items, key=lambda i: i.range_m)  # type: ignore[arg-type, return-value]
        fn = max if selector == "nearest" else min
        return fn(items, key=lambda i: i.bottom)
    key, lowest = _key(_REGION_AS_SUPERLATIVE.get(selector, selector), width)
    return min(items, key=key) if lowest else max(items, key=key)


def region_filter(items: list[Instance], region: str, width: int) -> list[Instance]:
    """Instances whose centroid lies in the left half, right half or middle third of the image."""
    if region == "left":
        return [i for i in items if i.centroid[0] < width / 2.0]
    if region == "right":
        return [i for i in items if i.centroid[0] >= width / 2.0]
    return [i for i in items if width / 3.0 <= i.centroid[0] < 2.0 * width / 3.0]
