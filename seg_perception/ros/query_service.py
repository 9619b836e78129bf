"""``~/segment_query``: answers from the node's newest Frame, with ground ranges and depth positions.

Wiring only: grounding and selection are ``query/``, ranges ``geometry.ground_range``,
positions ``depth.position``. The service runs on the executor thread and reads one Frame
snapshot per answer, so it never waits for (or slows) the image worker.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from sensor_msgs.msg import Image, RegionOfInterest

from seg_perception.conversions.image import numpy_to_image_msg
from seg_perception.errors import GeometryError
from seg_perception.geometry.ground_range import GroundRangeCache
from seg_perception.pipeline import Frame
from seg_perception.query.engine import QueryAnswer, QueryEngine

__all__ = ["QueryService"]


class QueryService:
    """The query engine and its service on ``node`` (a SegmentationNode).

    Args:
        node: provides ``latest`` (newest Frame or None), ``camera``, ``mapper``, ``depth_input``,
            ``intrinsics(shape)``, ``stats`` and ``warn_throttled``.
        engine: the configured QueryEngine.
    """

    def __init__(self, node: Any, engine: QueryEngine) -> None:
        from seg_perception.srv import SegmentQuery  # generated into the installed package by colcon

        self._node, self.engine = node, engine
        self._ranges = GroundRangeCache()
        self._group = MutuallyExclusiveCallbackGroup()
        self.service = node.create_service(SegmentQuery, "~/segment_query", self._on_query, callback_group=self._group)

    def destroy(self) -> None:
        self._node.destroy_service(self.service)

    def _on_query(self, request: Any, response: Any) -> Any:
        node = self._node
        frame = node.latest  # one snapshot for the whole answer
        ans: QueryAnswer = self.engine.answer_frame(request.query, frame, self.ranges_for(frame))
        response.found = bool(ans.found)
        response.message = ans.message
        response.matched_class = ans.matched_class
        response.score = float(ans.score)
        response.pixel_count = int(ans.pixel_count)
        x, y, w, h = (int(v) for v in ans.roi)
        response.roi = RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h)
        if frame is not None and ans.mask.size:
            response.mask = numpy_to_image_msg(ans.mask, "mono8", msg_cls=Image)
            response.mask.header.stamp.sec, response.mask.header.stamp.nanosec = frame.stamp
            response.mask.header.frame_id = frame.frame_id
            self._fill_position(response, ans, frame)
        node.stats.on_publish("query_answers")
        return response

    def _fill_position(self, response: Any, ans: QueryAnswer, frame: Frame) -> None:
        """has_position/position/extent from the frame's depth under the answer's mask (optical frame)."""
        depth_input = self._node.depth_input
        if not ans.found or frame.depth is None or depth_input is None:
            return
        intrinsics = self._node.intrinsics(frame.labels.shape[:2])
        pos = depth_input.position(ans.mask, frame.depth, intrinsics) if intrinsics is not None else None
        if pos is None:
            return
        response.has_position = True
        response.position.header = response.mask.header
        response.position.point.x, response.position.point.y, response.position.point.z = pos.centre
        response.extent.x, response.extent.y, response.extent.z = pos.extent

    def ranges_for(self, frame: Frame | None) -> np.ndarray | None:
        """Per-pixel ground range (metres, H x W float32) for nearest/farthest; None without camera_info.

        Uses the newest CameraInfo (rescaled to the frame) and the grid's camera pose (parameters
        or TF, floor at grid.ground_z), as the occupancy grid does; without them the engine ranks
        by image rows.
        """
        node = self._node
        if frame is None or node.camera.info is None:
            return None
        try:
            intrinsics = node.intrinsics(frame.labels.shape[:2])
            if intrinsics is None:
                return None
            m = node.mapper
            return self._ranges.get(intrinsics, m.ground_pose, frame.labels.shape[:2], m.grid.max_range)
        except GeometryError as err:
            node.warn_throttled("ranges", f"query ranges unavailable, using image rows: {err}")
            return None
