"""~/segment_query over DDS for detector classes: "cup" on the coffee photo with the detector, and without."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from seg_perception.conversions.image import image_msg_to_numpy, numpy_to_image_msg
from seg_perception.detection.base import MODEL_FILE, model_dir
from seg_perception.query.tabletop import cup_polygon_mask
from seg_perception.srv import SegmentQuery

from .conftest import query

pytestmark = pytest.mark.ros


def _coffee_node(harness, start_node, tiny_model, env: dict[str, str] | None = None, **params: object):
    """The node with the coffee photo segmented once; returns (client, rgb, node process)."""
    data = pytest.importorskip("skimage.data")
    rgb = np.ascontiguousarray(data.coffee())
    node = start_node({"model_path": str(tiny_model), "query.embeddings": "disabled", **params}, env=env)
    client = harness.node.create_client(SegmentQuery, "/seg_perception/segment_query")
    assert client.wait_for_service(timeout_sec=30), node.output
    labels = harness.collect(Image, "/seg_perception/labels")
    pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    msg = numpy_to_image_msg(rgb, "rgb8", msg_cls=Image)
    msg.header.stamp.sec, msg.header.frame_id = 700, "cam_cup"
    assert harness.publish_until(pub, msg, lambda: len(labels) > 0), node.output
    return client, rgb, node


@pytest.mark.skipif(not (model_dir() / MODEL_FILE).is_file(), reason="detector not fetched (make setup)")
def test_cup_found_over_dds_with_detector(harness, start_node, tiny_model):
    pytest.importorskip("ai_edge_litert")

    client, rgb, node = _coffee_node(harness, start_node, tiny_model)
    res = query(client, "the red cup")
    assert res.found, res.message + "\n" + node.output
    assert res.matched_class == "Coffee cup" and "detector class" in res.message and "mask quality" in res.message
    assert (res.mask.header.stamp.sec, res.mask.header.frame_id) == (700, "cam_cup")
    mask = image_msg_to_numpy(res.mask) > 0
    truth = cup_polygon_mask().astype(np.uint8)
    assert np.count_nonzero(mask & (truth > 0)) / np.count_nonzero(mask | (truth > 0)) >= 0.80
    ys, xs = np.nonzero(mask)
    assert (res.roi.x_offset, res.roi.y_offset, res.roi.width, res.roi.height) == (
        xs.min(),
        ys.min(),
        xs.max() - xs.min() + 1,
        ys.max() - ys.min() + 1,
    )
    assert 0.0 < res.score <= 1.0 and res.pixel_count == int(mask.sum())
    blue = query(client, "the blue cup")
    assert not blue.found and "seen:" in blue.message
    assert not query(client, "dog").found
    assert query(client, "road").matched_class == "road"  # segmentation classes still answer


def test_cup_without_detector_says_how_to_get_it(harness, start_node, tiny_model, tmp_path):
    client, _, node = _coffee_node(harness, start_node, tiny_model, env={"SEG_PERCEPTION_MODELS": str(tmp_path)})
    res = query(client, "cup")
    assert not res.found and res.matched_class == "Coffee cup", res.message
    assert "detector not available" in res.message and "fetch-models" in res.message, res.message
    assert query(client, "road").matched_class == "road"


def test_detector_switched_off_by_parameter(harness, start_node, tiny_model):
    client, _, node = _coffee_node(harness, start_node, tiny_model, **{"query.detector": "disabled"})
    res = query(client, "cup")
    assert not res.found and res.matched_class != "Coffee cup", res.message
    assert query(client, "road").matched_class == "road"
