"""RGB-D over DDS: depth matched by stamp, ~/labeled_points, query positions, bad depth counted, ~/label_info."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.conversions.image import depth_to_image_msg, image_msg_to_numpy, numpy_to_image_msg
from seg_perception.conversions.pointcloud import cloud_msg_to_numpy
from seg_perception.depth.cloud import labeled_points
from seg_perception.depth.position import object_position
from seg_perception.geometry.camera import intrinsics_from_camera_info
from seg_perception.ros.label_info import LABEL_INFO_QOS
from seg_perception.srv import SegmentQuery
from seg_perception.synthetic.rgbd import depth_mm, optical_depth, render_tabletop

from .conftest import diag_count, query

pytestmark = pytest.mark.ros


def test_depth_points_positions_and_bad_depth(harness, start_node, tiny_model):
    node = start_node({"model_path": str(tiny_model), "depth.enabled": True, "depth.points_decimation": 2,
                       "diagnostics_period": 0.2, "query.embeddings": "disabled", "warn_throttle": 0.01})
    scene = render_tabletop(120, 160)
    depth_m = optical_depth(scene)
    info = CameraInfo(width=160, height=120)
    info.k = [float(v) for v in scene.intrinsics.k.ravel()]
    info.d = [0.0] * 5
    info.header.frame_id = "cam_optical"

    labels = harness.collect(Image, "/seg_perception/labels")
    clouds = harness.collect(PointCloud2, "/seg_perception/labeled_points")
    diags = harness.collect(DiagnosticArray, "/diagnostics")
    img_pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    depth_pub = harness.node.create_publisher(Image, "depth", qos_profile_sensor_data)
    info_pub = harness.node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    client = harness.node.create_client(SegmentQuery, "/seg_perception/segment_query")
    assert client.wait_for_service(timeout_sec=30), node.output

    def frame(sec: int, depth_msg: Image | None) -> bool:
        rgb = numpy_to_image_msg(scene.rgb, "rgb8", msg_cls=Image)
        rgb.header.stamp.sec, rgb.header.frame_id = sec, "cam_optical"
        if depth_msg is not None:
            depth_msg.header.stamp.sec = depth_msg.header.stamp.sec or sec
        end = time.monotonic() + 30
        while time.monotonic() < end:
            info_pub.publish(info)
            if depth_msg is not None:
                depth_pub.publish(depth_msg)
            img_pub.publish(rgb)
            if harness.wait_for(lambda: labels and labels[-1].header.stamp.sec == sec, 0.4):
                return True
        return False

    # 16UC1 millimetres, the same stamp: points and positions
    assert harness.wait_for(lambda: client.service_is_ready(), 5)
    assert frame(100, depth_to_image_msg(depth_mm(depth_m), "16UC1", msg_cls=Image)), node.output
    assert harness.wait_for(lambda: any(c.header.stamp.sec == 100 for c in clouds), 10), node.output
    cloud = next(c for c in clouds if c.header.stamp.sec == 100)
    assert cloud.header.frame_id == "cam_optical"
    got = cloud_msg_to_numpy(cloud)
    lab = image_msg_to_numpy(next(m for m in labels if m.header.stamp.sec == 100))
    metres = depth_mm(depth_m).astype(np.float32) / 1000.0
    metres[metres == 0] = np.nan
    intr = intrinsics_from_camera_info(info)
    want = labeled_points(metres, lab, intr, stride=2)
    assert got["x"].size == len(want.xyz) > 1000
    np.testing.assert_allclose(np.stack([got["x"], got["y"], got["z"]], 1), want.xyz, atol=1e-5)
    np.testing.assert_array_equal(got["label"], want.label)

    top = int(np.bincount(lab.ravel(), minlength=11)[:11].argmax())
    res = query(client, f"all {CAMVID_CLASSES[top]}")
    assert res.found and res.has_position, res.message
    pos = object_position(image_msg_to_numpy(res.mask) > 0, metres, intr)
    assert pos is not None
    assert (res.position.point.x, res.position.point.y, res.position.point.z) == pytest.approx(pos.centre, abs=1e-6)
    assert (res.extent.x, res.extent.y, res.extent.z) == pytest.approx(pos.extent, abs=1e-6)
    assert res.position.header.frame_id == "cam_optical" and res.position.header.stamp.sec == 100

    # a depth frame whose stamp is far from the colour frame: labels flow, no depth, counted
    far = depth_to_image_msg(depth_m, "32FC1", msg_cls=Image)
    far.header.stamp.sec = 50
    assert frame(101, far), node.output
    assert harness.wait_for(lambda: diag_count(diags, "published_depth_unmatched") > 0, 10), node.output
    assert not query(client, f"all {CAMVID_CLASSES[top]}").has_position

    # the wrong encoding on the depth topic: rejected with a reason, labels still flow
    mono = numpy_to_image_msg(np.zeros((120, 160), np.uint8), "mono8", msg_cls=Image)
    assert frame(102, mono), node.output
    assert harness.wait_for(lambda: diag_count(diags, "published_depth_rejected") > 0, 10), node.output
    assert "depth frame rejected" in node.output and "mono8" in node.output


def test_label_info_is_latched_for_late_joiners(harness, start_node, tiny_model):
    vision_msgs = pytest.importorskip("vision_msgs.msg", reason="vision_msgs not built (make setup builds a copy)")
    node = start_node({"model_path": str(tiny_model)})
    client = harness.node.create_client(SegmentQuery, "/seg_perception/segment_query")
    assert client.wait_for_service(timeout_sec=30), node.output
    time.sleep(0.5)  # the node published long before this subscriber exists
    got = harness.collect(vision_msgs.LabelInfo, "/seg_perception/label_info", LABEL_INFO_QOS)
    assert harness.wait_for(lambda: len(got) > 0, 20), node.output
    assert [(c.class_id, c.class_name) for c in got[0].class_map] == list(enumerate(CAMVID_CLASSES))
