"""Per-pixel ground range against closed-form trigonometry, and TF transforms -> CameraPose."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from seg_perception.errors import GeometryError
from seg_perception.geometry.camera import R_BODY_FROM_OPTICAL, CameraIntrinsics, CameraPose
from seg_perception.geometry.ground_range import GroundRangeCache, ground_ranges
from seg_perception.geometry.transforms import pose_from_optical_transform, rotation_from_quaternion


def test_ranges_follow_the_depression_angle_of_each_row() -> None:
    intr = CameraIntrinsics.from_fov(64, 48, 60.0)
    f, cy = intr.k[1, 1], intr.k[1, 2]
    height, pitch = 1.2, 0.25
    r = ground_ranges(intr, CameraPose((0.0, 0.0, height), (0.0, pitch, 0.0)))
    assert r.shape == (48, 64) and r.dtype == np.float32
    for v in (30, 40, 47):  # centre column: the ray is in the x-z plane
        depression = pitch + np.arctan((v - cy) / f)
        u = int(round(intr.k[0, 2]))
        assert r[v, u] == pytest.approx(height / np.tan(depression), rel=2e-3)
    horizon_row = cy - f * np.tan(pitch)  # rows above it never meet the ground
    assert np.isnan(r[: int(np.floor(horizon_row)) - 1]).all()
    assert np.isfinite(r[int(np.ceil(horizon_row)) + 1 :]).all()
    # lower rows are nearer
    col = r[int(np.ceil(horizon_row)) + 1 :, 32]
    assert np.all(np.diff(col) < 0)


def test_max_range_and_camera_below_ground() -> None:
    intr = CameraIntrinsics.from_fov(32, 24, 60.0)
    r = ground_ranges(intr, CameraPose((0.0, 0.0, 1.0), (0.0, 0.3, 0.0)), max_range=3.0)
    finite = r[np.isfinite(r)]
    assert finite.size and finite.max() <= 3.0
    with pytest.raises(GeometryError, match="above the ground"):
        ground_ranges(intr, CameraPose((0.0, 0.0, -0.1), (0.0, 0.3, 0.0)))


def test_cache_rescales_and_recomputes_only_on_change() -> None:
    cache = GroundRangeCache()
    intr = CameraIntrinsics.from_fov(64, 48, 60.0)
    pose = CameraPose((0.0, 0.0, 1.0), (0.0, 0.3, 0.0))
    a = cache.get(intr, pose, (24, 32))
    assert a.shape == (24, 32)
    assert cache.get(intr, pose, (24, 32)) is a
    b = cache.get(intr, CameraPose((0.0, 0.0, 2.0), (0.0, 0.3, 0.0)), (24, 32))
    assert b is not a and np.nanmax(b) > np.nanmax(a)


@pytest.mark.parametrize("rpy", [(0.0, 0.3, 0.0), (0.05, 0.2, -0.7), (-0.1, 0.45, 2.5)])
def test_pose_from_optical_transform_inverts_the_optical_rotation(rpy: tuple[float, float, float]) -> None:
    body = Rotation.from_euler("xyz", rpy).as_matrix()  # fixed-axis roll, pitch, yaw = Rz Ry Rx
    r_grid_optical = body @ R_BODY_FROM_OPTICAL
    q = Rotation.from_matrix(r_grid_optical).as_quat()  # x, y, z, w
    pose = pose_from_optical_transform((0.1, -0.2, 1.3), q)
    assert pose.xyz == pytest.approx((0.1, -0.2, 1.3))
    assert pose.rpy == pytest.approx(rpy, abs=1e-9)
    assert np.allclose(pose.rotation_optical, r_grid_optical, atol=1e-9)


def test_quaternion_is_validated_and_normalised() -> None:
    assert np.allclose(rotation_from_quaternion((0, 0, 0, 2.0)), np.eye(3))
    for bad in ((0, 0, 0, 0), (0, 0, 1), (np.nan, 0, 0, 1)):
        with pytest.raises(GeometryError, match="quaternion"):
            rotation_from_quaternion(bad)
