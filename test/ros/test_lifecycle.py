"""The managed node through lifecycle_msgs services: configure, activate, deactivate, cleanup; a failing configure."""

from __future__ import annotations

import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from seg_perception.conversions.image import numpy_to_image_msg
from seg_perception.synthetic.street import render_street

from .conftest import call_service

pytestmark = pytest.mark.ros


def test_transitions_gate_the_pipeline(harness, start_node, tiny_model):
    node = start_node({"model_path": str(tiny_model)}, executable="segmentation_lifecycle_node")
    change = harness.node.create_client(ChangeState, "/seg_perception/change_state")
    get = harness.node.create_client(GetState, "/seg_perception/get_state")
    assert change.wait_for_service(timeout_sec=30) and get.wait_for_service(timeout_sec=30), node.output

    def state() -> int:
        return call_service(get, GetState.Request()).current_state.id

    def transition(tid: int) -> bool:
        return call_service(change, ChangeState.Request(transition=Transition(id=tid))).success

    labels = harness.collect(Image, "/seg_perception/labels")
    pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    msg = numpy_to_image_msg(render_street(5, 60, 80).rgb, "rgb8", msg_cls=Image)

    assert state() == State.PRIMARY_STATE_UNCONFIGURED
    assert pub.get_subscription_count() == 0  # nothing subscribed before activate
    assert transition(Transition.TRANSITION_CONFIGURE), node.output
    assert state() == State.PRIMARY_STATE_INACTIVE
    assert not harness.publish_until(pub, msg, lambda: len(labels) > 0, timeout=2.0)  # inactive: no output
    assert transition(Transition.TRANSITION_ACTIVATE) and state() == State.PRIMARY_STATE_ACTIVE
    assert harness.publish_until(pub, msg, lambda: len(labels) > 0, timeout=30), node.output
    assert transition(Transition.TRANSITION_DEACTIVATE) and state() == State.PRIMARY_STATE_INACTIVE
    assert harness.wait_for(lambda: pub.get_subscription_count() == 0, 10)
    n = len(labels)
    assert not harness.publish_until(pub, msg, lambda: len(labels) > n, timeout=2.0)
    assert transition(Transition.TRANSITION_CLEANUP) and state() == State.PRIMARY_STATE_UNCONFIGURED
    # configure and activate again: the pipeline comes back
    assert transition(Transition.TRANSITION_CONFIGURE) and transition(Transition.TRANSITION_ACTIVATE)
    assert harness.publish_until(pub, msg, lambda: len(labels) > n, timeout=30), node.output
    assert node.proc.poll() is None


def test_a_bad_model_fails_configure_with_the_reason(harness, start_node, tmp_path):
    node = start_node({"model_path": str(tmp_path / "missing.onnx")}, executable="segmentation_lifecycle_node")
    change = harness.node.create_client(ChangeState, "/seg_perception/change_state")
    get = harness.node.create_client(GetState, "/seg_perception/get_state")
    assert change.wait_for_service(timeout_sec=30), node.output
    res = call_service(change, ChangeState.Request(transition=Transition(id=Transition.TRANSITION_CONFIGURE)))
    assert not res.success
    assert call_service(get, GetState.Request()).current_state.id == State.PRIMARY_STATE_UNCONFIGURED
    assert harness.wait_for(lambda: "configure failed" in node.output and "missing.onnx" in node.output, 10)
    assert node.proc.poll() is None
