"""Camera model: REP-103 pose, projection and its inverse (with distortion), CameraInfo and parameter parsing."""

from __future__ import annotations

import types

import numpy as np
import pytest

from seg_perception.errors import GeometryError
from seg_perception.geometry.camera import (
    CameraIntrinsics,
    CameraPose,
    intrinsics_from_camera_info,
    intrinsics_from_parameters,
    pixel_rays_grid,
    rotation_from_rpy,
)

K = np.array([[400.0, 0, 239.5], [0, 410.0, 179.5], [0, 0, 1]])


def test_optical_axis_follows_rep103():
    level = CameraPose((0, 0, 1), (0, 0, 0)).rotation_optical
    np.testing.assert_allclose(level @ [0, 0, 1], [1, 0, 0], atol=1e-12)  # optical z = forward
    np.testing.assert_allclose(level @ [1, 0, 0], [0, -1, 0], atol=1e-12)  # optical x = right = -y
    np.testing.assert_allclose(level @ [0, 1, 0], [0, 0, -1], atol=1e-12)  # optical y = down
    down = CameraPose((0, 0, 1), (0, np.radians(30), 0)).rotation_optical @ [0, 0, 1]
    assert down[2] < 0 and np.isclose(np.degrees(np.arcsin(-down[2])), 30)  # positive pitch looks down
    left = CameraPose((0, 0, 1), (0, 0, np.radians(90))).rotation_optical @ [0, 0, 1]
    np.testing.assert_allclose(left, [0, 1, 0], atol=1e-12)  # positive yaw looks left
    r = rotation_from_rpy(0.1, -0.2, 0.3)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)


@pytest.mark.parametrize("d", [[], [0.0, 0, 0, 0, 0], [-0.28, 0.07, 0.001, -0.0005, 0.0]])
def test_rays_reproject_to_their_pixels(d):
    cam = CameraIntrinsics(480, 360, K, d)
    rays = cam.pixel_rays_optical()
    uv = cam.project(rays.reshape(-1, 3)).reshape(360, 480, 2)
    v, u = np.mgrid[0:360, 0:480]
    np.testing.assert_allclose(uv[..., 0], u, atol=1e-3)
    np.testing.assert_allclose(uv[..., 1], v, atol=1e-3)


def test_ground_ray_distance_matches_geometry():
    cam = CameraIntrinsics(480, 360, K)
    pose = CameraPose((0, 0, 1.5), (0, np.radians(10), 0))
    centre = pixel_rays_grid(cam, pose)[180, 240]
    t = -1.5 / centre[2]
    np.testing.assert_allclose(t * centre[0], 1.5 / np.tan(np.radians(10)), rtol=1e-2)


def test_scaled_intrinsics_keep_the_field_of_view():
    cam = CameraIntrinsics(960, 720, np.array([[800.0, 0, 479.5], [0, 800.0, 359.5], [0, 0, 1]]))
    half = cam.scaled(480, 360)
    assert half.k[0, 0] == 400 and half.k[0, 2] == 239.5 and half.k[1, 2] == 179.5


@pytest.mark.parametrize(
    "k",
    [
        np.zeros((3, 3)),
        np.array([[np.nan, 0, 1], [0, 1, 1], [0, 0, 1]]),
        np.array([[-5.0, 0, 1], [0, 5, 1], [0, 0, 1]]),
    ],
)
def test_invalid_intrinsics(k):
    with pytest.raises(GeometryError):
        CameraIntrinsics(10, 10, k)


def test_camera_info_parsing_and_errors():
    msg = types.SimpleNamespace(width=480, height=360, k=list(K.ravel()), d=[0.1, 0, 0, 0, 0])
    cam = intrinsics_from_camera_info(msg)
    assert cam.has_distortion and cam.k[1, 1] == 410
    with pytest.raises(GeometryError):
        intrinsics_from_camera_info(types.SimpleNamespace(width=1, height=1, k=[1, 2], d=[]))
    with pytest.raises(GeometryError):
        intrinsics_from_camera_info(object())
    with pytest.raises(GeometryError):
        CameraPose((0, 0), (0, 0, 0))  # type: ignore[arg-type]


def test_intrinsics_from_parameters():
    params = {"camera_info.width": 480, "camera_info.height": 360, "camera_info.k": [400, 0, 240, 0, 400, 180, 0, 0, 1]}
    intr = intrinsics_from_parameters(params)
    assert (intr.width, intr.height) == (480, 360) and not intr.has_distortion
    with pytest.raises(GeometryError):
        intrinsics_from_parameters({"camera_info.width": 480})
