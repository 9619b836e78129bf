"""Matching a bag's frames by header stamp: ground truth to images, frames kept for the report strip."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg_perception.conversions.image import image_msg_to_numpy
from seg_perception.errors import BagError, ImageError
from seg_perception.evaluation.bags import IMAGE, BagReader, format_stamp, stamp_ns


@dataclass
class StripFrame:
    """One frame kept for the report's frame strip (all HxW[x3] uint8 except grid: int8)."""

    stamp_ns: int
    rgb: np.ndarray
    labels: np.ndarray
    gt: np.ndarray | None = None
    grid: np.ndarray | None = None


def strip_indices(count: int, k: int) -> set[int]:
    if k <= 0 or count <= 0:
        return set()
    return {int(i) for i in np.unique(np.linspace(0, count - 1, min(k, count)).round())}


class GroundTruth:
    """Ground-truth label images of one topic, indexed by header stamp (raw bytes, decoded on lookup).

    Indexing first lets ground truth arrive before or after its image in the bag.
    """

    def __init__(self, reader: BagReader, topic: str) -> None:
        self.reader = reader
        self.topic = topic
        self._raw: dict[int, bytes] = {}
        for m in reader.messages([topic]):
            self._raw[stamp_ns(m.decode().header)] = bytes(m.raw)

    def __len__(self) -> int:
        return len(self._raw)

    def get(self, ns: int, shape: tuple[int, int]) -> np.ndarray | None:
        """HxW uint8 ids stamped ``ns``, or None; BagError unless mono8 of ``shape`` (H, W)."""
        raw = self._raw.get(ns)
        if raw is None:
            return None
        msg = self.reader.deserialize(raw, IMAGE, self.topic)
        where = f"ground truth on {self.topic} at {format_stamp(ns)}"
        enc = str(getattr(msg, "encoding", ""))
        if enc not in ("mono8", "8UC1"):
            raise BagError(f"{where} is '{enc}'; expected mono8 class ids")
        try:
            gt = image_msg_to_numpy(msg)
        except ImageError as err:
            raise BagError(f"{where}: {err}") from err
        if gt.shape != tuple(shape):
            raise BagError(f"{where} is {gt.shape[1]}x{gt.shape[0]} but its image is {shape[1]}x{shape[0]}")
        return gt
