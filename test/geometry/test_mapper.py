"""OccupancyMapper: camera info checks and the lookup cache (rebuild on a change only)."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.errors import GeometryError
from seg_perception.geometry.camera import CameraPose, intrinsics_from_camera_info_checked
from seg_perception.geometry.grid_spec import FREE, GridSpec
from seg_perception.geometry.mapper import OccupancyMapper
from seg_perception.synthetic.street import BICYCLIST, BUILDING, CAR, FENCE, PAVEMENT, PEDESTRIAN, POLE, ROAD

DRIVABLE = {ROAD, PAVEMENT}
OBSTACLES = {BUILDING, POLE, FENCE, CAR, PEDESTRIAN, BICYCLIST}


class FakeCameraInfo:
    def __init__(self, k, d=(), width=320, height=240, distortion_model="plumb_bob"):
        self.k, self.d, self.width, self.height = list(k), list(d), width, height
        self.distortion_model = distortion_model


GOOD_K = [266.0, 0.0, 159.5, 0.0, 266.0, 119.5, 0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "info",
    [
        FakeCameraInfo([0.0] * 9),  # uncalibrated camera: all-zero K
        FakeCameraInfo([0.0, 0, 159.5, 0, 266.0, 119.5, 0, 0, 1]),  # zero fx
        FakeCameraInfo([float("nan")] + GOOD_K[1:]),
        FakeCameraInfo(GOOD_K, d=[0.1, float("nan"), 0, 0, 0]),
        FakeCameraInfo(GOOD_K, d=[0.1, 0.01, 0.0, 0.0], distortion_model="equidistant"),
        FakeCameraInfo(GOOD_K, width=0),
        FakeCameraInfo(GOOD_K[:6]),
    ],
)
def test_bad_camera_info_raises_geometry_error(info):
    with pytest.raises(GeometryError):
        intrinsics_from_camera_info_checked(info)
    mapper = OccupancyMapper(GridSpec(), CameraPose(), DRIVABLE, OBSTACLES)
    with pytest.raises(GeometryError):
        mapper.set_camera_info(info)


def test_real_camera_info_message_is_accepted():
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo(width=320, height=240, k=GOOD_K, d=[0.0] * 5, distortion_model="plumb_bob")
    mapper = OccupancyMapper(
        GridSpec("base_link", 0.1, 0, 8, -4, 4, 8), CameraPose((0, 0, 1.3), (0, 0.1, 0)), DRIVABLE, OBSTACLES
    )
    assert mapper.set_camera_info(msg) is True
    assert mapper.set_camera_info(msg) is False
    out = mapper.process(np.full((240, 320), ROAD, np.uint8))
    assert (out.grid == FREE).sum() > 100


def test_pose_jitter_keeps_the_lookup_and_a_real_change_rebuilds_it():
    pose = CameraPose((0.0, 0.0, 1.3), (0.0, 0.1, 0.0))
    mapper = OccupancyMapper(GridSpec("base_link", 0.1, 0, 8, -4, 4, 8), pose, DRIVABLE, OBSTACLES)
    mapper.set_camera_info(FakeCameraInfo(GOOD_K))
    labels = np.full((240, 320), ROAD, np.uint8)
    mapper.process(labels)
    assert mapper.set_pose(CameraPose((0.0005, 0.0, 1.3), (0.0, 0.1 + 5e-5, 2 * np.pi))) is False
    mapper.process(labels)
    assert mapper.rebuilds == 1
    assert mapper.set_pose(CameraPose((0.0, 0.0, 1.2), (0.0, 0.1, 0.0))) is True
    assert mapper.projector is None
    mapper.process(labels)
    assert mapper.rebuilds == 2 and mapper.projector.pose.xyz == (0.0, 0.0, 1.2)
