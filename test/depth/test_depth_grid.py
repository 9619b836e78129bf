"""Depth-aware occupancy against scenes where the flat-ground grid is wrong: an overhang and a ramp."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.depth.cloud import labeled_points, to_grid_frame
from seg_perception.depth.grid import DepthGridRules, depth_occupancy
from seg_perception.errors import ConfigError
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.geometry.grid_spec import FREE, OCCUPIED, UNKNOWN, GridSpec
from seg_perception.geometry.mapper import OccupancyMapper
from seg_perception.synthetic.rgbd import Ramp, optical_depth
from seg_perception.synthetic.street import CAR, FENCE, PAVEMENT, ROAD, Box, StreetWorld, render

DRIVABLE = np.zeros(256, bool)
DRIVABLE[[ROAD, PAVEMENT]] = True
OBSTACLE = np.zeros(256, bool)
OBSTACLE[[FENCE, CAR]] = True
GRID = GridSpec(resolution=0.1, x_min=0.0, x_max=16.0, y_min=-4.0, y_max=4.0, max_range=15.0)
INTR = CameraIntrinsics.from_fov(320, 240, 70.0)
POSE = CameraPose((0.0, 0.0, 1.2), (0.0, 0.12, 0.0))


def _grids(world: StreetWorld) -> tuple[np.ndarray, np.ndarray]:
    """(depth grid, flat-ground grid) of one rendered frame with exact labels and depth."""
    scene = render(world, INTR, POSE)
    pts = labeled_points(optical_depth(scene), scene.labels, INTR)
    depth = depth_occupancy(to_grid_frame(pts.xyz, POSE), pts.label, GRID, (0.0, 0.0), DRIVABLE, OBSTACLE)
    mapper = OccupancyMapper(GRID, POSE, {ROAD, PAVEMENT}, {FENCE, CAR})
    mapper.set_intrinsics(INTR)
    flat = mapper.process(scene.labels).grid
    return depth.grid, flat


def _occupied_x(grid: np.ndarray) -> np.ndarray:
    xs, _ = GRID.cell_centers()
    return xs[np.nonzero(grid == OCCUPIED)[1]]


def test_overhanging_obstacle_lands_where_it_is() -> None:
    # a barrier from 0.7 m to 1.6 m above the road, front face at x = 6 m, nothing beneath it
    world = StreetWorld(road_half_width=4.0, sidewalk_width=0.0,
                        primitives=[Box((6.0, -1.5, 0.7), (6.5, 1.5, 1.6), FENCE, (120, 90, 60))])
    depth, flat = _grids(world)
    occ = _occupied_x(depth)
    assert occ.size and 5.9 <= occ.min() and occ.max() <= 6.6
    # the flat-ground grid puts it where the barrier's lower edge ray meets the floor, ~2x farther
    assert _occupied_x(flat).min() > 9.0
    # road between the camera and the barrier is free in the depth grid
    xs, ys = GRID.cell_centers()
    row = int(np.argmin(np.abs(ys)))
    ahead = (xs > 3.0) & (xs < 5.5)
    assert (depth[row, ahead] == FREE).all()


def test_obstacle_on_a_ramp_and_the_ramp_itself() -> None:
    ramp = Ramp(3.0, 12.0, -3.0, 3.0, rise=0.45, label=ROAD, color=(90, 88, 92))
    z_car = float(ramp.height(np.array(8.0)))
    car = Box((8.0, -0.9, z_car), (10.0, 0.9, z_car + 1.4), CAR, (190, 30, 30))
    depth, flat = _grids(StreetWorld(road_half_width=4.0, sidewalk_width=0.0, primitives=[ramp, car]))
    occ = _occupied_x(depth)
    assert occ.size and 7.9 <= occ.min() <= 8.2
    assert _occupied_x(flat).min() > 9.0  # flat ground: the car sits beyond where it is
    xs, ys = GRID.cell_centers()
    row = int(np.argmin(np.abs(ys)))
    on_ramp = (xs > 4.0) & (xs < 7.8)
    assert (depth[row, on_ramp] == FREE).mean() > 0.95


def test_points_without_depth_add_nothing_and_rules_are_validated() -> None:
    empty = depth_occupancy(np.zeros((0, 3)), np.zeros(0, np.uint8), GRID, (0.0, 0.0), DRIVABLE, OBSTACLE)
    assert (empty.grid == UNKNOWN).all() and empty.contacts.shape == (0, 2)
    # one obstacle point 5 m ahead: occupied there, free on the way, unknown behind
    pts = np.array([[5.05, 0.05, 1.0]])
    one = depth_occupancy(pts, np.array([CAR], np.uint8), GRID, (0.0, 0.0), DRIVABLE, OBSTACLE)
    xs, ys = GRID.cell_centers()
    row, col = int(np.argmin(np.abs(ys - 0.05))), int(np.argmin(np.abs(xs - 5.05)))
    assert one.grid[row, col] == OCCUPIED and (one.grid[row, :col] == FREE).all()
    assert (one.grid[row, col + 1 :] == UNKNOWN).all()
    # above the height window: nothing blocks
    high = depth_occupancy(np.array([[5.0, 0.0, 2.5]]), np.array([CAR], np.uint8), GRID, (0.0, 0.0),
                           DRIVABLE, OBSTACLE)
    assert not (high.grid == OCCUPIED).any()
    with pytest.raises(ConfigError):
        DepthGridRules(z_min=1.0, z_max=0.5)
    with pytest.raises(ConfigError):
        DepthGridRules(ground_tolerance=0.0)
