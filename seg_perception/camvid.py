"""The CamVid 11-class label set (SegNet split): names in id order, void id, display palette."""

from __future__ import annotations

#: class names in label-id order (id 11 is void and not a class)
CAMVID_CLASSES: tuple[str, ...] = (
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign_symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
)
NUM_CLASSES = len(CAMVID_CLASSES)
#: void / unlabelled pixels in the annotations: ignored in losses and metrics
IGNORE_INDEX = 11
#: SegNet tutorial palette (RGB), same order as CAMVID_CLASSES
CAMVID_COLORS: tuple[tuple[int, int, int], ...] = (
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
)
