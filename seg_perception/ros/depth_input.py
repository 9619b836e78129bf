"""The optional RGB-D side of the node: the ``depth`` topic, stamp matching, ``~/labeled_points``.

Only wiring: decoding, matching, back-projection and positions are core code
(``seg_perception.depth``, ``conversions``). Bad depth input (wrong encoding, no match
within ``depth.slop``, depth without camera_info) is warned about (throttled), counted
in /diagnostics (``published_depth_*``) and never stops the labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, PointCloud2, PointField

from seg_perception.conversions.image import depth_msg_to_numpy
from seg_perception.conversions.pointcloud import points_to_cloud_msg
from seg_perception.depth.cloud import NormalizedRays, labeled_points
from seg_perception.depth.image import DepthImage, depth_to_metres, match_size
from seg_perception.depth.position import ObjectPosition, object_position
from seg_perception.depth.sync import DepthBuffer
from seg_perception.errors import ImageError
from seg_perception.geometry.camera import CameraIntrinsics
from seg_perception.runtime_stats import PipelineStats

__all__ = ["DepthInput", "stamp_ns"]


def stamp_ns(header: Any) -> int:
    """A header's stamp in integer nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class DepthInput:
    """Subscribes ``depth`` (sensor-data QoS), matches it to colour frames, publishes ``~/labeled_points``.

    Args:
        node: the segmentation node (topics are relative to it).
        stats: the node's counters.
        warn: ``warn(key, text)``, the node's throttled warning.
        slop_s: initial ``depth.slop``.
    """

    def __init__(self, node: Node, stats: PipelineStats, warn: Callable[[str, str], None], slop_s: float) -> None:
        self._stats, self._warn = stats, warn
        self._buffer = DepthBuffer(slop_s=slop_s, capacity=8)
        self.rays = NormalizedRays()  # worker thread: points
        self._query_rays = NormalizedRays()  # executor thread: positions (the caches are not shared across threads)
        self._sub = node.create_subscription(Image, "depth", self._on_depth, qos_profile_sensor_data)
        self.points_pub = node.create_publisher(PointCloud2, "~/labeled_points", 10)

    def entities(self) -> tuple[Any, ...]:
        """The subscription and publisher (withdrawn when a lifecycle node deactivates)."""
        return self._sub, self.points_pub

    def _on_depth(self, msg: Image) -> None:
        self._buffer.push(stamp_ns(msg.header), msg)
        self._stats.on_publish("depth_received")

    def for_frame(self, header: Any, shape: tuple[int, int], slop_s: float, have_info: bool) -> DepthImage | None:
        """The depth of the colour frame with ``header`` at ``shape`` = (H, W), or None (warned, counted)."""
        self._buffer.slop_ns = int(round(slop_s * 1e9))
        msg = self._buffer.match(stamp_ns(header), wait_s=slop_s)
        if msg is None:
            self._stats.on_publish("depth_unmatched")
            self._warn(
                "depth_sync",
                f"no depth frame within depth.slop = {slop_s * 1e3:.0f} ms of the colour frame "
                f"at {header.stamp.sec}.{header.stamp.nanosec:09d}; this frame has no depth",
            )
            return None
        try:
            depth = depth_to_metres(*depth_msg_to_numpy(msg))
        except ImageError as err:
            self._stats.on_publish("depth_rejected")
            self._warn("depth_input", f"depth frame rejected: {err}")
            return None
        if not have_info:
            self._stats.on_publish("depth_without_camera_info")
            self._warn("depth_info", "depth frames arrive but no camera_info yet: depth needs the colour intrinsics")
            return None
        if depth.metres.shape != tuple(shape):
            self._warn(
                "depth_size",
                f"depth {depth.metres.shape[1]}x{depth.metres.shape[0]} scaled to the colour "
                f"image {shape[1]}x{shape[0]} (nearest neighbour)",
            )
            depth = match_size(depth, shape)
        if depth.invalid == depth.metres.size:
            self._stats.on_publish("depth_empty")
            self._warn("depth_empty", "depth frame has no valid reading (all 0, NaN, inf or negative)")
        self._stats.on_publish("depth_matched")
        return depth

    def publish_points(
        self,
        depth: DepthImage,
        labels: Any,
        rgb: Any,
        intrinsics: CameraIntrinsics,
        header: Any,
        stride: int,
        with_rgb: bool,
    ) -> None:
        """``~/labeled_points`` of one frame, only while someone subscribes (optical frame, the image's header)."""
        if self.points_pub.get_subscription_count() == 0:
            return
        pts = labeled_points(depth.metres, labels, intrinsics, stride, rgb if with_rgb else None, self.rays)
        self.points_pub.publish(
            points_to_cloud_msg(pts.xyz, pts.label, header, pts.rgb, msg_cls=PointCloud2, field_cls=PointField)
        )
        self._stats.on_publish("labeled_points")

    def position(self, mask: Any, depth: Any, intrinsics: CameraIntrinsics) -> ObjectPosition | None:
        """Robust centre and extent of ``mask``'s depth points (see ``depth.position``)."""
        return object_position(mask, depth, intrinsics, rays=self._query_rays)
