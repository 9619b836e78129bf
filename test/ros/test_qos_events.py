"""QoS the ROS way: an incompatible camera is warned about and counted; rclpy's QoS overrides apply."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from seg_perception.conversions.image import numpy_to_image_msg
from seg_perception.synthetic.street import render_street

from .conftest import diag_count

pytestmark = pytest.mark.ros


def test_best_effort_camera_on_a_reliable_subscription_is_reported(harness, start_node, tiny_model):
    node = start_node({"model_path": str(tiny_model), "qos.reliability": "reliable", "diagnostics_period": 0.2,
                       "warn_throttle": 0.01})
    diags = harness.collect(DiagnosticArray, "/diagnostics")
    labels = harness.collect(Image, "/seg_perception/labels")
    pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)  # best effort
    msg = numpy_to_image_msg(render_street(1, 60, 80).rgb, "rgb8", msg_cls=Image)
    assert harness.publish_until(pub, msg, lambda: diag_count(diags, "published_incompatible_qos") > 0, 30), node.output
    assert not labels  # nothing flows over an incompatible link ...
    assert "incompatible QoS" in node.output and "qos.reliability" in node.output  # ... and the node says why


def test_standard_qos_override_parameter_wins(harness, start_node, tiny_model):
    # qos.reliability says reliable, rclpy's standard override says best_effort: the camera now connects
    node = start_node({"model_path": str(tiny_model), "qos.reliability": "reliable",
                       "qos_overrides./image.subscription.reliability": "best_effort"})
    labels = harness.collect(Image, "/seg_perception/labels")
    pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    msg = numpy_to_image_msg(render_street(1, 60, 80).rgb, "rgb8", msg_cls=Image)
    assert harness.publish_until(pub, msg, lambda: len(labels) > 0, 30), node.output
