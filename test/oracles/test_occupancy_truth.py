"""Ground-truth occupancy: its own geometry (segment tests, visibility, edges) checked on its own terms
and against the street renderer, so the projector's tests compare with something trustworthy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from oracles.obstacle_course import obstacle_course
from oracles.occupancy_metrics import footprint_ray_distance, grid_metrics, scan_checks
from oracles.occupancy_truth import occupancy_truth
from oracles.solids import footprint_boundary, segment_blocked
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.geometry.grid_spec import FREE, OCCUPIED, UNKNOWN, GridSpec
from seg_perception.synthetic.street import (
    CAR,
    PAVEMENT,
    ROAD,
    Box,
    Cylinder,
    Sphere,
    StreetWorld,
    random_street,
    render,
)

INTR = CameraIntrinsics.from_fov(96, 72, 60.0)
POSE = CameraPose((0.0, 0.0, 1.2), (0.0, math.radians(10), 0.0))
GRID = GridSpec("base_link", 0.1, -1.0, 9.0, -5.0, 5.0, 8.0)


def test_segment_tests_agree_with_the_renderer():
    world = random_street(3, x_range=(-5.0, 30.0))
    scene = render(world, INTR, POSE)
    o = POSE.position
    hit = scene.primitive_index >= 0
    rays = (scene.points - o) / scene.depth[..., None]
    d = scene.depth[hit]
    r = rays[hit]
    before = o + 0.995 * d[:, None] * r
    after = o + 1.005 * d[:, None] * r
    idx = scene.primitive_index[hit]
    blocked_before = np.zeros(len(d), bool)
    for prim in world.primitives:
        blocked_before |= segment_blocked(o, before, prim)
    assert not blocked_before.any()  # nothing in front of the renderer's first hit
    blocked_after = np.array([segment_blocked(o, after[i : i + 1], world.primitives[k])[0] for i, k in enumerate(idx)])
    assert blocked_after.all()  # and the hit primitive is entered just behind it


def test_empty_world_is_free_where_seen_and_never_occupied():
    world = StreetWorld(road_half_width=2.0, sidewalk_width=1.0)
    t = occupancy_truth(world, INTR, POSE, GRID, {ROAD}, {CAR})
    assert len(t.edge_points) == 0 and not (t.state == OCCUPIED).any()
    xs, ys = GRID.cell_centers()
    cx, cy = np.meshgrid(xs, ys)
    p = np.stack([cx.ravel(), cy.ravel(), np.zeros(cx.size)], axis=1)
    p_opt = (p - POSE.position) @ POSE.rotation_optical
    uv = INTR.project(np.where(p_opt[:, 2:] > 0, p_opt, 1.0))
    in_view = (p_opt[:, 2] > 0) & (np.abs(uv[:, 0] - 47.5) < 47) & (np.abs(uv[:, 1] - 35.5) < 35)
    in_view &= np.hypot(cx.ravel(), cy.ravel()) < GRID.max_range - 0.1
    road = np.abs(cy.ravel()) < 1.95
    state = t.state.ravel()
    assert np.all(state[in_view & road] == FREE)
    assert np.all(state[in_view & ~road & (np.abs(cy.ravel()) > 3.05)] == UNKNOWN)  # VOID verge
    assert np.all(state[~t.seen.ravel()] == UNKNOWN)
    # Pavement counts once it is drivable.
    t2 = occupancy_truth(world, INTR, POSE, GRID, {ROAD, PAVEMENT}, {CAR})
    assert (t2.state == FREE).sum() > (t.state == FREE).sum()


def test_box_front_edge_visible_back_hidden_and_shadow_unknown():
    box = Box((5.0, -1.0, 0.0), (7.0, 1.0, 1.5), CAR, (200, 0, 0))
    world = StreetWorld(road_half_width=4.0, primitives=[box])
    t = occupancy_truth(world, INTR, POSE, GRID, {ROAD}, {CAR})
    e = t.edge_points
    assert len(e) > 100
    assert np.allclose(e[:, 0], 5.0)  # the front face only; sides face away from a camera at y = 0
    assert np.all(np.abs(e[:, 1]) <= 1.0 + 1e-9)
    inner = np.abs(e[:, 1]) < 0.99  # corner points also carry the side's normal
    assert inner.sum() > 100 and np.all(t.edge_facing[inner] > 0.9)
    assert np.all(t.state.ravel()[GRID.cell_index(np.array([5.05]), np.array([0.05]))] == OCCUPIED)
    shadow = GRID.cell_index(np.array([6.0, 7.5, 7.9]), np.array([0.0, 0.3, -0.2]))
    assert np.all(t.state.ravel()[shadow] == UNKNOWN)
    front = GRID.cell_index(np.array([3.0, 4.5, 4.85]), np.array([0.0, 0.5, -0.5]))
    assert np.all(t.state.ravel()[front] == FREE)
    # A camera beside the box sees one side too, at an angle.
    side = CameraPose((0.0, -3.0, 1.2), (0.0, math.radians(10), math.radians(20)))
    t2 = occupancy_truth(world, INTR, side, GRID, {ROAD}, {CAR})
    assert np.any(np.isclose(t2.edge_points[:, 1], -1.0) & (t2.edge_points[:, 0] > 5.5))


def test_occluders_that_are_not_obstacles_hide_ground_but_mark_nothing():
    tree = [Cylinder(4.0, 0.0, 0.3, 0.0, 2.0, 5, (80, 60, 40)), Sphere(4.0, 0.0, 2.8, 1.0, 5, (50, 120, 40))]
    world = StreetWorld(road_half_width=4.0, primitives=tree)
    t = occupancy_truth(world, INTR, POSE, GRID, {ROAD}, {CAR})
    assert not (t.state == OCCUPIED).any()
    assert t.state.ravel()[GRID.cell_index(np.array([5.0]), np.array([0.0]))][0] == UNKNOWN
    t2 = occupancy_truth(world, INTR, POSE, GRID, {ROAD}, {5})  # trunk as obstacle: its front arc
    assert len(t2.edge_points) and np.all(np.hypot(t2.edge_points[:, 0] - 4.0, t2.edge_points[:, 1]) < 0.31)


def test_grazing_faces_are_flagged():
    # Box side at y = 0.02 in line with the camera at y = 0: seen edge-on.
    box = Box((4.0, 0.02, 0.0), (8.0, 1.8, 1.5), CAR, (0, 0, 200))
    world = StreetWorld(road_half_width=4.0, primitives=[box])
    t = occupancy_truth(world, INTR, POSE, GRID, {ROAD}, {CAR})
    g = t.grazing_cells(math.sin(math.radians(15)))
    assert g.sum() >= 20
    side_cells = GRID.cell_index(np.array([5.0, 6.0, 7.0]), np.array([0.05, 0.05, 0.05]))
    assert g.ravel()[side_cells].all()


def test_footprints_and_ray_distance():
    box = Box((2.0, -1.0, 0.0), (3.0, 1.0, 1.0), CAR, (0, 0, 0))
    cyl = Cylinder(0.0, 4.0, 0.5, 0.0, 1.0, CAR, (0, 0, 0))
    floating = Sphere(0.0, -4.0, 3.0, 1.0, CAR, (0, 0, 0))
    world = StreetWorld(primitives=[box, cyl, floating])
    pts, nrm = footprint_boundary(box, 0.1)
    assert np.allclose(np.abs(nrm).sum(axis=1), 1.0)
    assert footprint_boundary(floating, 0.1) is None
    d = footprint_ray_distance(world, {CAR}, np.array([0.0, math.pi / 2, -math.pi / 2, math.pi]))
    np.testing.assert_allclose(d[:2], [2.0, 3.5], atol=1e-9)
    assert np.isinf(d[2]) and np.isinf(d[3])
    # Grazing the box corner by 1 mm does not count once footprints are eroded.
    a = math.atan2(1.0 - 0.001, 2.0)
    assert np.isfinite(footprint_ray_distance(world, {CAR}, np.array([a]))[0])
    assert np.isinf(footprint_ray_distance(world, {CAR}, np.array([a]), erode=0.025)[0])


def test_obstacle_course_is_deterministic_and_framed():
    w1 = obstacle_course(7, INTR, POSE, GRID)
    w2 = obstacle_course(7, INTR, POSE, GRID)
    assert w1.primitives == w2.primitives and len(w1.primitives) >= 3
    t = occupancy_truth(w1, INTR, POSE, GRID, {ROAD, PAVEMENT}, {CAR, 2, 7, 9, 10})
    assert len(np.unique(t.edge_primitive)) >= 2


def test_metrics_and_scan_checks_can_fail():
    box = Box((5.0, -1.0, 0.0), (7.0, 1.0, 1.5), CAR, (200, 0, 0))
    world = StreetWorld(road_half_width=4.0, primitives=[box])
    t = occupancy_truth(world, INTR, POSE, GRID, {ROAD}, {CAR})
    perfect = grid_metrics(t.state, t)
    assert perfect["free_iou"] == 1.0 and perfect["false_free"] == 0.0 and perfect["edge_recall"] == 1.0
    all_free = grid_metrics(np.zeros_like(t.state), t)
    assert all_free["false_free"] > 0.3 and all_free["edge_recall"] == 0.0
    angles = np.linspace(-0.15, 0.15, 31)
    reach = np.full(31, 8.0)
    exact = 5.0 / np.cos(angles)
    ok = scan_checks(exact, angles[0], angles[1] - angles[0], reach, t, world, {CAR})
    assert not any(ok[k].any() for k in ("off_obstacle", "too_far", "inf_through_obstacle"))
    bad = scan_checks(exact + 0.3, angles[0], angles[1] - angles[0], reach, t, world, {CAR})
    assert bad["off_obstacle"].all() and bad["too_far"].any()
    cleared = scan_checks(np.full(31, np.inf), angles[0], angles[1] - angles[0], reach, t, world, {CAR})
    assert cleared["inf_through_obstacle"].all()


@pytest.mark.parametrize("supersample", [3, 7])
def test_refinement_makes_the_truth_insensitive_to_sampling(supersample):
    world = obstacle_course(3, INTR, POSE, GRID)
    drv, obs = {ROAD, PAVEMENT}, {CAR, 2, 7, 9, 10}
    ref = occupancy_truth(world, INTR, POSE, GRID, drv, obs, supersample=9, refine_samples=41)
    t = occupancy_truth(world, INTR, POSE, GRID, drv, obs, supersample=supersample)
    differ = (t.state != ref.state).sum()
    assert differ <= 0.003 * (ref.state == FREE).sum() + 2
