"""Synthetic RGB-D sequences with exact truth, for ``make-bag --synthetic`` and the demo.

Scenes (the camera drives forward along x; ``base_link`` is on the ground below it):

* ``street``: the random street of ``street.street_sequence`` (flat ground, many objects);
* ``overhang``: a barrier 0.7-1.6 m above the road (nothing beneath it), a car, a pedestrian;
* ``ramp``: a road ramp rising 0.45 m with a car standing on it.

The flat-ground grid is wrong on the last two (it puts the barrier and the car farther than
they are); the depth-aware grid is not. Every frame carries REP-118 depth (optical z,
metres), the exact occupancy of the world around ``base_link`` and the visible objects'
positions (``synthetic.rgbd_truth``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.geometry.grid_spec import GridSpec
from seg_perception.synthetic.rgbd import Ramp, optical_depth
from seg_perception.synthetic.rgbd_truth import TruthObject, object_truth, occupancy_truth
from seg_perception.synthetic.street import (
    BICYCLIST,
    CAR,
    DEFAULT_INTRINSICS,
    FENCE,
    PEDESTRIAN,
    ROAD,
    Box,
    Cylinder,
    StreetWorld,
    default_pose,
    random_street,
    render,
)

__all__ = ["RGBD_SCENES", "RgbdRig", "RgbdFrame", "rgbd_rig", "rgbd_sequence"]

RGBD_SCENES = ("street", "overhang", "ramp")
#: the grid classes of config/camvid.yaml (the truth uses these; so does the rig's params file)
DRIVABLE_NAMES = ("road",)
OBSTACLE_NAMES = ("building", "pole", "tree", "fence", "car", "pedestrian", "bicyclist")
#: classes whose objects get true positions
OBJECT_LABELS = (CAR, PEDESTRIAN, BICYCLIST, FENCE)


@dataclass(frozen=True)
class RgbdRig:
    """The camera and grid of a synthetic sequence: intrinsics, pose over ``base_link``, grid, classes."""

    intrinsics: CameraIntrinsics
    pose: CameraPose
    grid: GridSpec
    drivable: tuple[str, ...] = DRIVABLE_NAMES
    obstacle: tuple[str, ...] = OBSTACLE_NAMES

    def ids(self, names: tuple[str, ...]) -> list[int]:
        return [CAMVID_CLASSES.index(n) for n in names]

    def node_params(self) -> dict[str, Any]:
        """The node parameters (``ros__parameters``) that describe this rig (camera, pose, grid, classes)."""
        k = self.intrinsics
        g = self.grid
        return {
            "camera_pose.xyz": [float(v) for v in self.pose.xyz],
            "camera_pose.rpy": [float(v) for v in self.pose.rpy],
            "grid.frame_id": g.frame_id,
            **{
                f"grid.{n}": float(getattr(g, n))
                for n in ("resolution", "x_min", "x_max", "y_min", "y_max", "max_range", "ground_z")
            },
            "camera_info.width": int(k.width),
            "camera_info.height": int(k.height),
            "camera_info.k": [float(v) for v in np.asarray(k.k).ravel()],
            "camera_info.d": [0.0] * 5,
            "drivable_classes": list(self.drivable),
            "obstacle_classes": list(self.obstacle),
        }


@dataclass(frozen=True)
class RgbdFrame:
    """One frame: RGB, exact labels and depth (float32 m, NaN = none), exact occupancy (int8, in ``grid``),
    visible objects, and the camera's pose in the world."""

    rgb: np.ndarray
    labels: np.ndarray
    depth_m: np.ndarray
    truth_grid: np.ndarray
    objects: list[TruthObject]
    world_pose: CameraPose
    grid: GridSpec


def rgbd_rig(scene: str, height: int = 360, width: int = 480) -> RgbdRig:
    """The rig of ``scene`` at ``height`` x ``width`` pixels."""
    if scene not in RGBD_SCENES:
        from seg_perception.errors import ConfigError

        raise ConfigError(f"synthetic scene must be one of {RGBD_SCENES}, got {scene!r}")
    if scene == "street":
        intr, pose = DEFAULT_INTRINSICS.scaled(width, height), default_pose()
    else:
        intr, pose = CameraIntrinsics.from_fov(width, height, 70.0), CameraPose((0.0, 0.0, 1.2), (0.0, 0.12, 0.0))
    grid = GridSpec(resolution=0.1, x_min=0.0, x_max=16.0, y_min=-6.0, y_max=6.0, max_range=15.0)
    return RgbdRig(intr, pose, grid)


def _world(scene: str, seed: int, n_frames: int, step: float) -> tuple[StreetWorld, float]:
    """The world of ``scene`` and the camera's y (metres)."""
    if scene == "street":
        world = random_street(seed, x_range=(-5.0, 90.0 + n_frames * step))
        return world, -0.4 * world.road_half_width
    far = 5.0 + n_frames * step  # the last frame sees the barrier (or the car) about 5 m ahead
    if scene == "overhang":
        prims = [
            Box((far, -1.5, 0.7), (far + 0.5, 1.5, 1.6), FENCE, (120, 90, 60)),
            Box((far - 3.0, 2.0, 0.0), (far - 1.0, 3.8, 1.4), CAR, (40, 60, 170)),
            Cylinder(far - 4.0, -2.5, 0.25, 0.0, 1.75, PEDESTRIAN, (200, 40, 40)),
        ]
    else:
        ramp = Ramp(3.0 + n_frames * step, far + 4.0, -4.0, 4.0, rise=0.45, label=ROAD, color=(90, 88, 92))
        z_car = float(ramp.height(np.array(far)))
        prims = [ramp, Box((far, -0.9, z_car), (far + 2.0, 0.9, z_car + 1.4), CAR, (190, 30, 30))]
    return StreetWorld(road_half_width=4.0, sidewalk_width=2.0, primitives=prims), 0.0


def rgbd_sequence(
    scene: str, n_frames: int, height: int = 360, width: int = 480, seed: int = 7, step: float = 0.3
) -> Iterator[RgbdFrame]:
    """``n_frames`` frames of ``scene`` with the camera ``step`` metres farther each frame (deterministic)."""
    rig = rgbd_rig(scene, height, width)
    world, y0 = _world(scene, seed, n_frames, step)
    obstacle, drivable = rig.ids(rig.obstacle), rig.ids(rig.drivable)
    window = (0.05, 2.0)
    x0, _, z = rig.pose.xyz
    for k in range(n_frames):
        base = (x0 + k * step, y0)
        pose = CameraPose((base[0], base[1], z), rig.pose.rpy)
        sc = render(world, rig.intrinsics, pose, seed=seed * 100_000 + k)
        truth = occupancy_truth(world, rig.grid, base, obstacle, drivable, window)
        yield RgbdFrame(sc.rgb, sc.labels, optical_depth(sc), truth, object_truth(sc, OBJECT_LABELS), pose, rig.grid)
