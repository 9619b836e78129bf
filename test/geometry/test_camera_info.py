"""Intrinsics of the image that arrives (raw, rectified, roi, binning), the floor below base_link, gimbal lock."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from oracles.obstacle_course import obstacle_course
from oracles.occupancy_metrics import grid_metrics
from oracles.occupancy_truth import occupancy_truth
from scipy.spatial.transform import Rotation

from seg_perception.errors import GeometryError
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.geometry.camera_info import intrinsics_for_image
from seg_perception.geometry.grid_spec import GridSpec
from seg_perception.geometry.mapper import OccupancyMapper
from seg_perception.geometry.scan import ObstacleScanner
from seg_perception.geometry.transforms import pose_over_ground, rpy_from_rotation
from seg_perception.synthetic.street import BICYCLIST, BUILDING, CAR, FENCE, PAVEMENT, PEDESTRIAN, POLE, ROAD, render

K = [500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]
P = [480.0, 0.0, 322.0, 0.0, 0.0, 480.0, 236.0, 0.0, 0.0, 0.0, 1.0, 0.0]
D = [-0.2, 0.05, 0.0, 0.0, 0.0]


def _info(**kw) -> SimpleNamespace:
    roi = SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False)
    base = {"width": 640, "height": 480, "k": K, "d": D, "p": P, "distortion_model": "plumb_bob",
            "binning_x": 0, "binning_y": 0, "roi": roi}
    base.update(kw)
    return SimpleNamespace(**base)


def test_raw_uses_k_and_d_rectified_uses_p_without_distortion() -> None:
    raw = intrinsics_for_image(_info())
    assert raw.k[0, 0] == 500.0 and raw.has_distortion
    rect = intrinsics_for_image(_info(), rectified=True)
    assert (rect.k[0, 0], rect.k[1, 1], rect.k[0, 2], rect.k[1, 2]) == (480.0, 480.0, 322.0, 236.0)
    assert not rect.has_distortion  # D applied to a rectified image would distort it twice
    with pytest.raises(GeometryError, match="camera_info.p"):
        intrinsics_for_image(_info(p=[0.0] * 12), rectified=True)


def test_roi_shifts_the_principal_point_and_binning_scales_after_it() -> None:
    roi = SimpleNamespace(x_offset=100, y_offset=40, width=320, height=240, do_rectify=False)
    crop = intrinsics_for_image(_info(roi=roi))
    assert (crop.width, crop.height) == (320, 240)
    assert (crop.k[0, 2], crop.k[1, 2]) == (219.5, 199.5) and crop.k[0, 0] == 500.0
    binned = intrinsics_for_image(_info(roi=roi, binning_x=2, binning_y=2))
    assert (binned.width, binned.height) == (160, 120)
    assert binned.k[0, 0] == pytest.approx(250.0) and binned.k[0, 2] == pytest.approx((219.5 + 0.5) / 2 - 0.5)
    # a pixel keeps its ray: the crop's (0, 0) is the sensor's (100, 40)
    full = intrinsics_for_image(_info())
    assert np.allclose(crop.undistort_pixels(np.array([0.0]), np.array([0.0])),
                       full.undistort_pixels(np.array([100.0]), np.array([40.0])))
    bad = SimpleNamespace(x_offset=500, y_offset=0, width=320, height=240, do_rectify=False)
    with pytest.raises(GeometryError, match="outside"):
        intrinsics_for_image(_info(roi=bad))


@pytest.mark.parametrize("pitch", [math.pi / 2, -math.pi / 2, 1.2])
def test_rpy_from_rotation_rebuilds_the_matrix_even_at_gimbal_lock(pitch: float) -> None:
    r = Rotation.from_euler("xyz", (0.4, pitch, -0.9)).as_matrix()
    rebuilt = Rotation.from_euler("xyz", rpy_from_rotation(r)).as_matrix()
    assert np.allclose(rebuilt, r, atol=1e-9)


DRIVABLE = {ROAD, PAVEMENT}
OBSTACLES = {BUILDING, POLE, FENCE, CAR, PEDESTRIAN, BICYCLIST}


def test_pose_in_base_link_above_the_floor_matches_exact_truth() -> None:
    """base_link 0.3 m above the floor: camera_pose.z = 1.0 in base_link, grid.ground_z = -0.3."""
    intr = CameraIntrinsics.from_fov(240, 180, 62.0)
    true_pose = CameraPose((0.0, 0.0, 1.3), (0.0, math.radians(12), 0.0))  # above the floor
    floor_grid = GridSpec("base_footprint", 0.1, -1.0, 16.0, -8.0, 8.0, 15.0)
    world = obstacle_course(11, intr, true_pose, floor_grid)
    scene = render(world, intr, true_pose, seed=11)
    truth = occupancy_truth(world, intr, true_pose, floor_grid, DRIVABLE, OBSTACLES)

    def grid_for(ground_z: float) -> np.ndarray:
        grid = GridSpec("base_link", 0.1, -1.0, 16.0, -8.0, 8.0, 15.0, ground_z)
        mapper = OccupancyMapper(grid, CameraPose((0.0, 0.0, 1.0), true_pose.rpy), DRIVABLE, OBSTACLES)
        mapper.set_intrinsics(intr)
        return mapper.process(scene.labels).grid

    right = grid_metrics(grid_for(-0.3), truth)
    wrong = grid_metrics(grid_for(0.0), truth)  # the floor taken as base_link's z = 0
    assert right["free_iou"] >= 0.80 and right["false_free"] <= 0.005 and right["edge_recall"] >= 0.90, right
    assert wrong["edge_recall"] < right["edge_recall"] - 0.2 or wrong["free_iou"] < right["free_iou"] - 0.1, wrong
    assert pose_over_ground(CameraPose((1.0, 2.0, 1.0), (0.0, 0.1, 0.0)), -0.3).xyz == pytest.approx((1.0, 2.0, 1.3))


def test_scan_range_min_is_the_blind_zone() -> None:
    intr = CameraIntrinsics.from_fov(160, 120, 60.0)
    mapper = OccupancyMapper(GridSpec(resolution=0.1, x_min=0.0, x_max=12.0, y_min=-6.0, y_max=6.0, max_range=12.0),
                             CameraPose((0.0, 0.0, 1.2), (0.0, math.radians(10), 0.0)), DRIVABLE, OBSTACLES)
    mapper.set_intrinsics(intr)
    scanner: ObstacleScanner | None = mapper.scanner_for((120, 160))
    assert scanner is not None
    # the lowest image row looks down 10 + 22.5 degrees: the floor nearer than ~1.9 m is never seen
    blind = 1.2 / math.tan(math.radians(10) + math.atan(59.5 / intr.k[1, 1]))
    assert 0.7 * blind <= scanner.spec.range_min <= blind
