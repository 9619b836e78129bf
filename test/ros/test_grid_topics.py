"""~/occupancy_grid and ~/obstacle_scan over DDS: stamps, metadata, content = the core mapper, bad camera info."""

from __future__ import annotations

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, LaserScan

from seg_perception.assembly import build_mapper
from seg_perception.conversions.image import image_msg_to_numpy, numpy_to_image_msg
from seg_perception.geometry.camera_info import intrinsics_for_image
from seg_perception.model_spec import ModelSpec
from seg_perception.node_config import NodeConfig
from seg_perception.synthetic.street import render_street

from .conftest import diag_count

pytestmark = pytest.mark.ros


def _info(fx: float = 100.0, w: int = 120, h: int = 90) -> CameraInfo:
    msg = CameraInfo(width=w, height=h)
    msg.k = [fx, 0.0, (w - 1) / 2, 0.0, fx, (h - 1) / 2, 0.0, 0.0, 1.0]
    msg.d = [0.0] * 5
    msg.distortion_model = "plumb_bob"
    return msg


def test_grid_and_scan_follow_the_image(harness, start_node, tiny_model):
    params = {
        "model_path": str(tiny_model),
        "camera_pose.xyz": [0.0, 0.0, 1.5],
        "camera_pose.rpy": [0.0, 0.2, 0.0],
        "grid.x_max": 12.0,
        "grid.y_min": -6.0,
        "grid.y_max": 6.0,
        "diagnostics_period": 0.2,
    }
    node = start_node(params)
    labels = harness.collect(Image, "/seg_perception/labels")
    grids = harness.collect(OccupancyGrid, "/seg_perception/occupancy_grid")
    scans = harness.collect(LaserScan, "/seg_perception/obstacle_scan")
    img_pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    info_pub = harness.node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    rgb = render_street(8, 90, 120).rgb
    msg = numpy_to_image_msg(rgb, "rgb8", msg_cls=Image)
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = 77, 5, "cam"

    # Before camera info: labels flow, no grid, one warning.
    assert harness.publish_until(img_pub, msg, lambda: len(labels) > 0), node.output
    assert not grids
    info = _info()
    info.header.frame_id = "cam"
    assert harness.publish_until(info_pub, info, lambda: False, timeout=1.0) is False
    assert harness.publish_until(img_pub, msg, lambda: len(grids) > 0 and len(scans) > 0), node.output
    assert node.output.count("no camera_info received yet") == 1

    g = grids[-1]
    assert (g.header.stamp.sec, g.header.stamp.nanosec, g.header.frame_id) == (77, 5, "base_link")
    assert (g.info.width, g.info.height) == (120, 120) and g.info.resolution == pytest.approx(0.1)
    assert (g.info.origin.position.x, g.info.origin.position.y) == pytest.approx((0.0, -6.0))
    s = scans[-1]
    assert (s.header.stamp.sec, s.header.frame_id) == (77, "base_link")

    # Same labels through the ROS-free mapper give the same grid (one geometry for node and tools).
    cfg = NodeConfig.from_params({k: v for k, v in params.items() if k != "diagnostics_period"})
    mapper = build_mapper(cfg, ModelSpec.for_model(tiny_model))
    mapper.set_camera_info(info)
    expected = mapper.process(image_msg_to_numpy(labels[-1])).grid
    np.testing.assert_array_equal(np.asarray(g.data, np.int8).reshape(g.info.height, g.info.width), expected)


def test_bad_camera_info_warns_and_labels_keep_flowing(harness, start_node, tiny_model):
    node = start_node({"model_path": str(tiny_model), "diagnostics_period": 0.2, "warn_throttle": 0.01})
    labels = harness.collect(Image, "/seg_perception/labels")
    diags = harness.collect(DiagnosticArray, "/diagnostics")
    harness.collect(OccupancyGrid, "/seg_perception/occupancy_grid")  # the grid is built only while wanted
    img_pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    info_pub = harness.node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    bad = _info(fx=0.0)
    msg = numpy_to_image_msg(render_street(9, 90, 120).rgb, "rgb8", msg_cls=Image)

    def step() -> bool:
        info_pub.publish(bad)
        return diag_count(diags, "published_grid_errors") > 0

    assert harness.publish_until(img_pub, msg, step, timeout=30), node.output
    n = len(labels)
    assert harness.publish_until(img_pub, msg, lambda: len(labels) > n)
    assert "occupancy grid skipped" in node.output and "focal" in node.output
    assert node.proc.poll() is None


def test_grid_and_scan_cost_nothing_until_someone_subscribes(harness, start_node, tiny_model):
    node = start_node({"model_path": str(tiny_model), "diagnostics_period": 0.2})
    labels = harness.collect(Image, "/seg_perception/labels")
    diags = harness.collect(DiagnosticArray, "/diagnostics")
    img_pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    info_pub = harness.node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    msg = numpy_to_image_msg(render_street(8, 90, 120).rgb, "rgb8", msg_cls=Image)
    assert harness.publish_until(img_pub, msg, lambda: len(labels) > 0), node.output  # the node is up
    assert harness.publish_until(info_pub, _info(), lambda: False, timeout=1.0) is False
    n = len(labels)
    assert harness.publish_until(img_pub, msg, lambda: len(labels) >= n + 5), node.output
    assert harness.wait_for(lambda: diag_count(diags, "published_labels") >= n + 5)
    assert diag_count(diags, "published_occupancy_grid") == 0 and diag_count(diags, "published_obstacle_scan") == 0
    assert "no camera_info received yet" not in node.output
    scans = harness.collect(LaserScan, "/seg_perception/obstacle_scan")
    assert harness.publish_until(img_pub, msg, lambda: len(scans) > 0), node.output


@pytest.mark.parametrize("rectified", [False, True])
def test_rectified_and_raw_camera_info_and_the_floor_below_base_link(harness, start_node, tiny_model, rectified):
    """image_rectified picks P without distortion (else K and D); grid.ground_z lowers the floor."""
    params = {
        "model_path": str(tiny_model),
        "camera_pose.xyz": [0.0, 0.0, 1.0],
        "camera_pose.rpy": [0.0, 0.2, 0.0],
        "grid.ground_z": -0.3,
        "grid.x_max": 12.0,
        "grid.y_min": -6.0,
        "grid.y_max": 6.0,
        "image_rectified": rectified,
    }
    node = start_node(params)
    labels = harness.collect(Image, "/seg_perception/labels")
    grids = harness.collect(OccupancyGrid, "/seg_perception/occupancy_grid")
    img_pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    info_pub = harness.node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    info = _info()
    info.d = [-0.25, 0.08, 0.0, 0.0, 0.0]  # strong barrel distortion in the raw camera
    info.p = [90.0, 0.0, 60.0, 0.0, 0.0, 90.0, 45.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    msg = numpy_to_image_msg(render_street(8, 90, 120).rgb, "rgb8", msg_cls=Image)

    def step() -> bool:
        info_pub.publish(info)
        return len(grids) > 0 and len(labels) > 0

    assert harness.publish_until(img_pub, msg, step, timeout=30), node.output
    g = grids[-1]
    got = np.asarray(g.data, np.int8).reshape(g.info.height, g.info.width)
    lab = image_msg_to_numpy(next(m for m in labels if m.header.stamp == g.header.stamp))
    cfg = NodeConfig.from_params(params)
    want = build_mapper(cfg, ModelSpec.for_model(tiny_model))
    want.set_intrinsics(intrinsics_for_image(info, rectified))
    np.testing.assert_array_equal(got, want.process(lab).grid)
    other = build_mapper(cfg, ModelSpec.for_model(tiny_model))
    other.set_intrinsics(intrinsics_for_image(info, not rectified))
    assert not np.array_equal(got, other.process(lab).grid)  # the choice matters for this camera
