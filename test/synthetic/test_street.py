"""Synthetic street scenes: deterministic, exact labels consistent with the ray-cast geometry."""

from __future__ import annotations

import numpy as np

from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.synthetic.street import (
    CAR,
    PEDESTRIAN,
    ROAD,
    SKY,
    Box,
    Cylinder,
    StreetWorld,
    render,
    render_street,
    street_sequence,
)


def test_seeded_and_deterministic():
    a, b, c = render_street(5, 60, 80), render_street(5, 60, 80), render_street(6, 60, 80)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)
    assert a.rgb.shape == (60, 80, 3) and a.rgb.dtype == np.uint8 and a.labels.dtype == np.uint8
    assert set(np.unique(a.labels)) <= set(range(12)) and {SKY, ROAD} <= set(np.unique(a.labels))


def test_labels_agree_with_hit_geometry():
    s = render_street(11, 90, 120)
    ground = s.primitive_index == -1
    np.testing.assert_allclose(s.points[ground][:, 2], 0.0, atol=1e-6)
    np.testing.assert_array_equal(
        s.labels[ground], s.world.ground_label(s.points[ground][:, 0], s.points[ground][:, 1])
    )
    sky = s.primitive_index == -2
    assert (s.labels[sky] == SKY).all() and np.isinf(s.depth[sky]).all()
    for i, prim in enumerate(s.world.primitives):
        hit = s.primitive_index == i
        assert (s.labels[hit] == prim.label).all()


def test_known_objects_appear_where_projected():
    k = CameraIntrinsics(160, 120, np.array([[100.0, 0, 79.5], [0, 100.0, 59.5], [0, 0, 1]]))
    pose = CameraPose((0.0, 0.0, 1.5), (0.0, 0.0, 0.0))
    world = StreetWorld(
        primitives=[
            Box((10.0, -1.0, 0.0), (14.0, 1.0, 1.5), CAR, (200, 30, 30)),
            Cylinder(8.0, 3.0, 0.25, 0.0, 1.8, PEDESTRIAN, (40, 40, 200)),
        ]
    )
    s = render(world, k, pose)
    # Centre of the car's front face (x=10, y=0, z=0.75) projects to u = 79.5, v = 59.5 + 100 * 0.75 / 10.
    assert s.labels[int(round(59.5 + 7.5)), 80] == CAR
    # The pedestrian at y=+3 (left) is left of the image centre: u = 79.5 - 100 * 3 / 8.
    assert s.labels[60, int(round(79.5 - 37.5))] == PEDESTRIAN
    car = s.rgb[s.labels == CAR].mean(0)
    assert car[0] > 2 * car[1] and car[0] > 2 * car[2]  # red stays red under the shading


def test_sequence_moves_forward_in_one_world():
    frames = list(street_sequence(3, 3, 48, 64))
    assert [f.pose.xyz[0] for f in frames] == [0.0, 0.6, 1.2]
    assert all(f.world is frames[0].world for f in frames)
