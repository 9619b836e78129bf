#!/usr/bin/env python3
"""The baseline for scripts/bench_stream.py: the 50-line segmentation node anyone would write first.

Subscribe, run ONNX Runtime in the callback, resize the labels, publish mono8. No
newest-frame worker, grid, queries or diagnostics. On SIGINT it prints one JSON line
with the frames it received and labelled.
"""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import rclpy
import yaml
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from seg_perception.ros.transport import apply_default_profile

model = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "models" / "camvid.onnx"
card = yaml.safe_load(model.with_suffix(".yaml").read_text())
opts = ort.SessionOptions()
opts.intra_op_num_threads = 2
session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
mean, std = np.array(card["mean"], np.float32), np.array(card["std"], np.float32)
net_h, net_w = card["input_size"]
counts = {"received": 0, "labelled": 0}

apply_default_profile()
rclpy.init()
node = rclpy.create_node("naive_seg")
pub = node.create_publisher(Image, "~/labels", 10)


def on_image(msg: Image) -> None:
    counts["received"] += 1
    rgb = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
    x = cv2.resize(rgb, (net_w, net_h)).astype(np.float32) / 255.0
    x = ((x - mean) / std).transpose(2, 0, 1)[None]
    logits = session.run(None, {session.get_inputs()[0].name: x})[0][0]
    labels = np.argmax(logits, axis=0).astype(np.uint8)
    labels = cv2.resize(labels, (msg.width, msg.height), interpolation=cv2.INTER_NEAREST)
    out = Image(header=msg.header, height=msg.height, width=msg.width, encoding="mono8", step=msg.width)
    out.data = labels.tobytes()
    pub.publish(out)
    counts["labelled"] += 1


node.create_subscription(Image, "image", on_image, qos_profile_sensor_data)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
    pass
print(json.dumps(counts), flush=True)
