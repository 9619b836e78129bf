"""Obstacle scan: beam layout, range semantics (finite / +inf / NaN) on small controlled frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.errors import ConfigError
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.geometry.grid_spec import GridSpec
from seg_perception.geometry.projection import GroundProjector, OccupancyResult
from seg_perception.geometry.scan import ObstacleScanner, ScanSpec, _angular_window

ROAD, CAR, SKY = 3, 8, 0


@pytest.fixture(scope="module")
def projector():
    intr = CameraIntrinsics.from_fov(160, 120, 60.0)
    pose = CameraPose((0.0, 0.0, 1.2), (0.0, math.radians(12), 0.0))
    grid = GridSpec("base_link", 0.1, 0.0, 10.0, -5.0, 5.0, 8.0)
    return GroundProjector(intr, pose, grid, {ROAD}, {CAR})


def test_spec_angles_and_sectors():
    spec = ScanSpec(angle_min=-0.5, angle_increment=0.1, n_beams=11, range_min=0.0, range_max=10.0, clear_range=5.0)
    assert spec.angle_max == pytest.approx(0.5)
    assert spec.angles()[5] == pytest.approx(0.0)
    x = np.array([1.0, 1.0, 1.0, -1.0])
    y = np.array([0.0, math.tan(0.049), math.tan(0.051), 0.0])
    assert spec.beam_of(x, y).tolist() == [5, 5, 6, -1]
    with pytest.raises(ConfigError):
        ScanSpec(0.0, 0.0, 10, 0.0, 1.0, 0.0)
    with pytest.raises(ConfigError):
        ScanSpec(0.0, 0.1, 10, 2.0, 1.0, 0.0)


def test_angular_window_handles_wrap_around():
    start, span = _angular_window(np.array([3.0, -3.0, 3.1]))
    assert start == pytest.approx(3.0) and span == pytest.approx(2 * math.pi - 6.0, abs=1e-9)
    start, span = _angular_window(np.array([-0.3, 0.2, 0.0]))
    assert (start, span) == (pytest.approx(-0.3), pytest.approx(0.5))


def test_scanner_spans_the_view(projector):
    s = ObstacleScanner.for_projector(projector)
    # Ground seen by the lower image corners of a pitched camera lies a little wider than its 60 deg.
    half_fov = math.radians(30)
    assert -half_fov - 0.1 < s.spec.angle_min <= -half_fov + 0.01
    assert half_fov - 0.01 <= s.spec.angle_max < half_fov + 0.1
    assert s.spec.range_max >= projector.grid.max_range
    assert 0 < s.spec.clear_range <= projector.grid.max_range + 0.1
    assert s.eligible.sum() > 0.6 * s.spec.n_beams  # beams near the view edges leave it before max range


def test_all_road_clears_all_sky_says_nothing(projector):
    s = ObstacleScanner.for_projector(projector)
    road = s.scan(projector.project(np.full((120, 160), ROAD, np.uint8)))
    assert road.dtype == np.float32
    assert np.all(np.isposinf(road[s.eligible])) and np.all(np.isnan(road[~s.eligible]))
    sky = s.scan(projector.project(np.full((120, 160), SKY, np.uint8)))
    assert np.all(np.isnan(sky))


def test_wall_gives_its_distance_and_unknown_gap_gives_nan(projector):
    # A wall whose base is at image row 80: every beam should report one distance.
    labels = np.full((120, 160), ROAD, np.uint8)
    labels[:80] = CAR
    r = projector.project(labels)
    s = ObstacleScanner.for_projector(projector)
    ranges = s.scan(r)
    u = np.arange(160.0)
    x, y = projector.intrinsics.undistort_pixels(u, np.full(160, 79.5))
    d = np.stack([x, y, np.ones_like(x)], axis=1) @ projector.pose.rotation_optical.T
    t = -1.2 / d[:, 2]
    px, py = t * d[:, 0], t * d[:, 1]
    expected = np.hypot(px, py)
    fin = np.isfinite(ranges)
    assert fin.sum() > 0.9 * s.spec.n_beams
    bearing = np.arctan2(py, px)
    exp_at_beam = np.interp(s.spec.angles()[fin], bearing[::-1], expected[::-1])
    np.testing.assert_allclose(ranges[fin], exp_at_beam, atol=0.05)
    # Non-drivable, non-obstacle ground between robot and nothing: no +inf claim.
    labels = np.full((120, 160), ROAD, np.uint8)
    labels[60:90] = 11
    ranges = s.scan(projector.project(labels))
    assert not np.isposinf(ranges).any()


def test_ranges_from_explicit_contacts(projector):
    s = ObstacleScanner.for_projector(projector)
    grid = np.zeros(projector.grid.shape, np.int8)
    a = s.spec.angles()[10]
    contacts = np.array([[5 * math.cos(a), 5 * math.sin(a)], [3 * math.cos(a), 3 * math.sin(a)], [-1.0, 0.0]])
    out = s.scan(OccupancyResult(grid=grid, contacts=contacts))
    assert out[10] == pytest.approx(3.0, abs=1e-5)
    assert np.isposinf(out[11]) or not s.eligible[11]
