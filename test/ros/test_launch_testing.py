"""launch_testing: `camera.launch.py` + images in -> labels out with the input header.

Run by `colcon test` on a ROS 2 install with launch_testing; skipped in the
self-contained environment (launch_testing is not on PyPI).
"""

from __future__ import annotations

import os
import time
import unittest

import pytest

pytest.importorskip("launch_testing", reason="launch_testing is not installed (not on PyPI)")

import launch
import launch_testing
import launch_testing.actions
import numpy as np
import rclpy
from ament_index_python.packages import get_package_share_directory
from launch.launch_description_sources import PythonLaunchDescriptionSource
from sensor_msgs.msg import Image

pytestmark = pytest.mark.ros


@pytest.mark.launch_test
def generate_test_description():
    share = get_package_share_directory("seg_perception")
    model = os.environ.get("SEG_PERCEPTION_TEST_MODEL", "")
    camera = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "camera.launch.py")),
        launch_arguments={"image_topic": "/test_cam/image", "model_path": model}.items(),
    )
    return launch.LaunchDescription([camera, launch_testing.actions.ReadyToTest()])


class TestLabelsArrive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node("launch_test_client")

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_labels_with_input_header(self):
        got = []
        self.node.create_subscription(Image, "/seg_perception/labels", got.append, 10)
        pub = self.node.create_publisher(Image, "/test_cam/image", 10)
        img = Image(height=48, width=64, encoding="rgb8", step=64 * 3)
        img.data = np.random.default_rng(0).integers(0, 255, 48 * 64 * 3, dtype=np.uint8).tobytes()
        img.header.stamp.sec, img.header.frame_id = 42, "test_cam"
        end = time.time() + 60
        while time.time() < end and not got:
            pub.publish(img)
            rclpy.spin_once(self.node, timeout_sec=0.5)
        self.assertTrue(got, "no labels received")
        self.assertEqual((got[0].header.stamp.sec, got[0].header.frame_id), (42, "test_cam"))
        self.assertEqual((got[0].width, got[0].height, got[0].encoding), (64, 48, "mono8"))
