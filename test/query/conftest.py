"""Fixtures for the query tests: a synthetic street with known instances (exact labels from the ray-caster)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.geometry.camera import CameraIntrinsics
from seg_perception.synthetic.street import (
    CAR,
    PEDESTRIAN,
    Box,
    Cylinder,
    StreetWorld,
    default_pose,
    render,
)

CAMVID = CAMVID_CLASSES


@dataclass
class StreetTruth:
    """A rendered scene and the true mask (HxW bool) of every named primitive."""

    rgb: np.ndarray
    labels: np.ndarray
    depth: np.ndarray
    masks: dict[str, np.ndarray]


@pytest.fixture(scope="session")
def street() -> StreetTruth:
    """480x360 street: a red car (left) and a blue car (right) on the road; three pedestrians.

    Grid frame: x forward, y left (metres). Pedestrians: ``ped_left`` at (12, 4) in yellow,
    ``ped_middle`` at (20, 0.8) in white (left of the image centre, inside the middle third),
    ``ped_right`` at (9, -4) in blue, the nearest both by range and by image row.
    """
    prims = {
        "red_car": Box((12.0, 1.0, 0.0), (16.5, 2.8, 1.5), CAR, (190, 30, 30)),
        "blue_car": Box((14.0, -2.8, 0.0), (18.5, -1.0, 1.5), CAR, (30, 60, 170)),
        "ped_left": Cylinder(12.0, 4.0, 0.3, 0.0, 1.75, PEDESTRIAN, (200, 180, 60)),
        "ped_middle": Cylinder(20.0, 0.8, 0.3, 0.0, 1.75, PEDESTRIAN, (220, 220, 210)),
        "ped_right": Cylinder(9.0, -4.0, 0.3, 0.0, 1.75, PEDESTRIAN, (40, 60, 150)),
    }
    world = StreetWorld(primitives=list(prims.values()))
    scene = render(world, CameraIntrinsics.from_fov(480, 360, 62.0), default_pose(), seed=3)
    masks = {name: scene.primitive_index == i for i, name in enumerate(prims)}
    return StreetTruth(scene.rgb, scene.labels, scene.depth, masks)
