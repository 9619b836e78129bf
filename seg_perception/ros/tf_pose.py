"""Camera pose from TF at the image stamp (parameter ``use_tf``; needs tf2_ros, optional)."""

from __future__ import annotations

from typing import Any

from rclpy.node import Node

from seg_perception.errors import ConfigError
from seg_perception.geometry.transforms import pose_from_optical_transform

__all__ = ["TfPoseSource"]


class TfPoseSource:
    """Camera body pose in the grid frame from TF at the image stamp (``use_tf``; needs tf2_ros).

    The image's frame_id is taken as the camera *optical* frame (REP-103 convention for
    image topics). Untested in this project's CI: tf2_ros is not on PyPI.
    """

    def __init__(self, node: Node, grid_frame: str) -> None:
        try:
            from tf2_ros import Buffer, TransformListener
        except ImportError as err:
            raise ConfigError(f"parameter use_tf: tf2_ros is not installed ({err}); set use_tf to false") from err
        self._node, self._grid_frame = node, grid_frame
        self._buffer = Buffer()
        self._listener = TransformListener(self._buffer, node)

    def pose(self, header: Any) -> Any:
        """CameraPose at the image stamp, or None (warned, throttled) when TF has no transform."""
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            tf = self._buffer.lookup_transform(
                self._grid_frame, header.frame_id, Time.from_msg(header.stamp), timeout=Duration(seconds=0.05)
            )
        except Exception as err:  # noqa: BLE001 - tf2 raises several unrelated exception types
            self._node.warn_throttled("tf", f"no transform {self._grid_frame} <- {header.frame_id}: {err}")
            return None
        t, q = tf.transform.translation, tf.transform.rotation
        return pose_from_optical_transform((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))
