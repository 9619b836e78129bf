"""~/segment_query over DDS: answers before any frame, header of the frame used, frames keep flowing during queries."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.conversions.image import image_msg_to_numpy, numpy_to_image_msg
from seg_perception.srv import SegmentQuery
from seg_perception.synthetic.street import render_street

from .conftest import query

pytestmark = pytest.mark.ros


def test_queries_answer_from_the_newest_frame_without_blocking_images(harness, start_node, tiny_model):
    node = start_node({"model_path": str(tiny_model), "query.embeddings": "disabled"})
    client = harness.node.create_client(SegmentQuery, "/seg_perception/segment_query")
    assert client.wait_for_service(timeout_sec=30), node.output

    before = query(client, "road")
    assert not before.found and "no frame received yet" in before.message
    assert not query(client, "").found and not query(client, "x" * 10_000).found

    labels = harness.collect(Image, "/seg_perception/labels")
    pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    rgb = render_street(4, 90, 120).rgb
    msg = numpy_to_image_msg(rgb, "rgb8", msg_cls=Image)
    msg.header.stamp.sec, msg.header.frame_id = 500, "cam_q"
    assert harness.publish_until(pub, msg, lambda: len(labels) > 0)
    frame_labels = image_msg_to_numpy(labels[-1])

    # Ask for the class most present in the frame: the mask must be exactly its pixels.
    names = CAMVID_CLASSES
    top = int(np.bincount(frame_labels.ravel(), minlength=11)[:11].argmax())
    res = query(client, f"all {names[top]}")
    assert res.found, res.message
    assert res.matched_class == names[top]
    assert (res.mask.header.stamp.sec, res.mask.header.frame_id) == (500, "cam_q")
    mask = image_msg_to_numpy(res.mask)
    np.testing.assert_array_equal(mask == 255, frame_labels == top)
    assert res.pixel_count == int((frame_labels == top).sum())
    ys, xs = np.nonzero(mask)
    assert (res.roi.x_offset, res.roi.y_offset) == (xs.min(), ys.min())
    assert (res.roi.width, res.roi.height) == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)

    # Ground ranges: without camera_info "nearest" ranks by image row; with it, by metres on the ground.
    by_row = query(client, f"nearest {names[top]}")
    assert by_row.found and " m)" not in by_row.message, by_row.message
    info = CameraInfo(width=120, height=90)
    info.k = [100.0, 0.0, 59.5, 0.0, 100.0, 44.5, 0.0, 0.0, 1.0]
    info.d = [0.0] * 5
    info_pub = harness.node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    assert harness.publish_until(info_pub, info, lambda: " m)" in query(client, f"nearest {names[top]}").message)

    # Frames keep flowing while a second thread hammers the service: every frame published one
    # at a time is labelled (counted, not timed), and answers keep coming in between.
    stop = threading.Event()
    answers: list = []

    def hammer():
        while not stop.is_set():
            answers.append(query(client, "the car on the left"))

    t = threading.Thread(target=hammer)
    t.start()
    labelled = 0
    answers_between = 0
    try:
        for k in range(20):
            m = numpy_to_image_msg(rgb, "rgb8", msg_cls=Image)
            m.header.stamp.sec = 1000 + k
            n_answers = len(answers)
            if harness.publish_until(pub, m, lambda k=k: labels[-1].header.stamp.sec == 1000 + k, timeout=30):
                labelled += 1
            answers_between += len(answers) > n_answers
    finally:
        stop.set()
        t.join()
    assert labelled == 20
    assert len(answers) >= 5 and answers_between >= 5, (len(answers), answers_between)
