"""Camera poses from TF transforms (pure arithmetic; the node looks the transform up).

A TF lookup ``grid_frame <- image frame_id`` gives the camera *optical* frame (REP-103 for
image topics: z forward, x right, y down) as a translation and a unit quaternion (x, y, z, w).
:func:`pose_from_optical_transform` turns it into the body-frame :class:`CameraPose` the
grid projection uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seg_perception.errors import GeometryError
from seg_perception.geometry.camera import R_BODY_FROM_OPTICAL, CameraPose

__all__ = ["rotation_from_quaternion", "pose_from_optical_transform", "pose_over_ground"]


def rotation_from_quaternion(q: Sequence[float]) -> np.ndarray:
    """3x3 rotation of a quaternion (x, y, z, w); normalised first.

    Raises:
        GeometryError: not 4 finite numbers, or zero length.
    """
    v = np.asarray(q, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(v)) if v.size == 4 else 0.0
    if v.size != 4 or not np.all(np.isfinite(v)) or norm < 1e-9:
        raise GeometryError(f"quaternion must be 4 finite numbers (x, y, z, w) of non-zero length, got {q!r}")
    x, y, z, w = v / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def pose_from_optical_transform(translation: Sequence[float], quaternion: Sequence[float]) -> CameraPose:
    """Camera body pose in the grid frame from the transform grid <- camera optical frame.

    Args:
        translation: optical-frame origin in the grid frame, metres (x, y, z).
        quaternion: rotation grid <- optical as (x, y, z, w).
    """
    r_body = rotation_from_quaternion(quaternion) @ R_BODY_FROM_OPTICAL.T  # grid <- camera body
    rpy = rpy_from_rotation(r_body)
    xyz = tuple(float(v) for v in translation)
    return CameraPose(xyz, rpy)  # type: ignore[arg-type]


def rpy_from_rotation(r: np.ndarray) -> tuple[float, float, float]:
    """Fixed-axis roll, pitch, yaw (R = Rz(yaw) Ry(pitch) Rx(roll)) of a 3x3 rotation, radians.

    At pitch = +-90 degrees roll and yaw turn about the same axis (gimbal lock); roll is then
    set to 0 and yaw carries the whole turn, so the angles still rebuild ``r`` exactly.
    """
    c_pitch = float(np.hypot(r[0, 0], r[1, 0]))
    pitch = float(np.arctan2(-r[2, 0], c_pitch))  # atan2, not asin: exact near +-90 degrees
    if c_pitch < 1e-9:
        return 0.0, pitch, float(np.arctan2(-r[0, 1], r[1, 1]))
    return float(np.arctan2(r[2, 1], r[2, 2])), pitch, float(np.arctan2(r[1, 0], r[0, 0]))


def pose_over_ground(pose: CameraPose, ground_z: float) -> CameraPose:
    """``pose`` with the ground plane moved from z = ``ground_z`` to z = 0 of the grid frame.

    For a grid frame above the floor (REP-120 ``base_link`` is often 0.1-0.4 m up; the floor
    is then at ``ground_z`` = -that height): x and y, hence every cell, stay; the camera's
    height above the floor is ``z - ground_z``.
    """
    x, y, z = pose.xyz
    return CameraPose((x, y, z - float(ground_z)), pose.rpy)
