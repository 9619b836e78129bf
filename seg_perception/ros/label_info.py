"""``~/label_info`` (vision_msgs/LabelInfo): the loaded model's class id -> name map, latched.

Reliable + transient local, so Nav2's ``semantic_segmentation_layer`` and late joiners get
it. vision_msgs is optional: without it (no package on the machine) the topic is not
offered and the node says so once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

__all__ = ["LABEL_INFO_QOS", "publish_label_info"]

LABEL_INFO_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def publish_label_info(node: Node, class_names: Sequence[str], threshold: float = 0.0) -> Any | None:
    """Create the latched publisher and publish the map once; returns the publisher (None without vision_msgs).

    ``threshold`` is 0: labels are the arg-max class, no confidence cut-off is applied.
    """
    try:
        from vision_msgs.msg import LabelInfo, VisionClass
    except ImportError as err:
        node.get_logger().warning(f"~/label_info not published: vision_msgs is not installed ({err})")
        return None
    pub = node.create_publisher(LabelInfo, "~/label_info", LABEL_INFO_QOS)
    msg = LabelInfo()
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.class_map = [VisionClass(class_id=i, class_name=str(name)) for i, name in enumerate(class_names)]
    msg.threshold = float(threshold)
    pub.publish(msg)
    return pub
