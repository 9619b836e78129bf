"""Pinhole camera model, REP-103 poses, per-pixel rays, and reading them from CameraInfo or parameters.

Frames:
- *grid frame*: the robot's ground frame (e.g. ``base_link``), x forward, y left,
  z up, metres; the ground is the plane z = 0.
- *camera body frame*: REP-103 body axes of the camera (x forward, y left, z up);
  its pose in the grid frame is ``CameraPose(xyz, rpy)``; positive pitch looks down.
- *optical frame*: REP-103 optical axes (z forward, x right, y down), the frame in
  which ``K`` maps a direction to pixel coordinates.

Pixel coordinates follow ROS/OpenCV: ``u`` is the column, ``v`` the row, and the
integer coordinate is the pixel centre.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seg_perception.errors import GeometryError

# Columns are the optical axes expressed in body axes: optical x (right) = body -y,
# optical y (down) = body -z, optical z (forward) = body x.
R_BODY_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])

# Distortion models whose coefficients CameraIntrinsics implements (sensor_msgs/distortion_models.hpp names).
SUPPORTED_DISTORTION_MODELS = ("", "plumb_bob", "rational_polynomial")


def rotation_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Rotation matrix (3x3 float64) of fixed-axis roll, pitch, yaw: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class CameraPose:
    """Camera body pose in the grid frame.

    Attributes:
        xyz: camera position (x forward, y left, z up), metres.
        rpy: roll, pitch, yaw of the camera body in radians (REP-103; positive pitch
            looks down, positive yaw looks left).
    """

    xyz: tuple[float, float, float] = (0.0, 0.0, 1.0)
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        for name in ("xyz", "rpy"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3 or not np.all(np.isfinite(value)):
                raise GeometryError(f"camera pose {name} must be 3 finite numbers, got {getattr(self, name)!r}")
            object.__setattr__(self, name, value)

    @property
    def rotation_body(self) -> np.ndarray:
        """Rotation grid <- camera body (3x3)."""
        return rotation_from_rpy(*self.rpy)

    @property
    def rotation_optical(self) -> np.ndarray:
        """Rotation grid <- camera optical frame (3x3)."""
        return self.rotation_body @ R_BODY_FROM_OPTICAL

    @property
    def position(self) -> np.ndarray:
        """Camera centre in the grid frame, shape (3,), metres."""
        return np.asarray(self.xyz, dtype=np.float64)


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics with optional plumb-bob distortion (as in sensor_msgs/CameraInfo).

    Attributes:
        width, height: image size in pixels the intrinsics refer to.
        k: 3x3 camera matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels.
        d: distortion coefficients (k1, k2, p1, p2[, k3]); empty or all zero for none.
    """

    width: int
    height: int
    k: np.ndarray
    d: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        k = np.asarray(self.k, dtype=np.float64).reshape(3, 3)
        d = np.asarray(self.d, dtype=np.float64).ravel()
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "d", d)
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise GeometryError(f"camera size must be positive, got {self.width}x{self.height}")
        if not (np.all(np.isfinite(k)) and np.all(np.isfinite(d))):
            raise GeometryError("camera intrinsics contain NaN or infinite values")
        if k[0, 0] <= 0 or k[1, 1] <= 0:
            raise GeometryError(f"focal lengths must be positive, got fx={k[0, 0]}, fy={k[1, 1]}")
        if d.size not in (0, 4, 5, 8):
            raise GeometryError(f"distortion must have 0, 4, 5 or 8 coefficients (plumb_bob/rational), got {d.size}")

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> CameraIntrinsics:
        """Ideal pinhole with square pixels and the principal point at the image centre."""
        f = (width / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
        return cls(width, height, np.array([[f, 0, (width - 1) / 2.0], [0, f, (height - 1) / 2.0], [0, 0, 1]]))

    @property
    def has_distortion(self) -> bool:
        return bool(self.d.size and np.any(self.d != 0))

    def scaled(self, width: int, height: int) -> CameraIntrinsics:
        """Intrinsics for the same camera resampled to ``width`` x ``height`` pixels."""
        sx, sy = width / self.width, height / self.height
        k = self.k.copy()
        # Pixel centres sit at integer coordinates, so the scale acts on (c + 0.5).
        k[0, 0] *= sx
        k[0, 2] = (k[0, 2] + 0.5) * sx - 0.5
        k[1, 1] *= sy
        k[1, 2] = (k[1, 2] + 0.5) * sy - 0.5
        return CameraIntrinsics(width, height, k, self.d.copy())

    def distort_normalized(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply plumb-bob (or rational) distortion to normalized coordinates."""
        d = np.zeros(8)
        d[: self.d.size] = self.d
        k1, k2, p1, p2, k3, k4, k5, k6 = d
        r2 = x * x + y * y
        radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        return xd, yd

    def project(self, points_optical: np.ndarray) -> np.ndarray:
        """Project Nx3 optical-frame points (z > 0) to Nx2 pixel coordinates (u, v)."""
        p = np.asarray(points_optical, dtype=np.float64)
        x, y = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
        if self.has_distortion:
            x, y = self.distort_normalized(x, y)
        u = self.k[0, 0] * x + self.k[0, 1] * y + self.k[0, 2]
        v = self.k[1, 1] * y + self.k[1, 2]
        return np.stack([u, v], axis=1)

    def undistort_pixels(self, u: np.ndarray, v: np.ndarray, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """Normalized undistorted coordinates (x, y) of pixel coordinates (u, v).

        Distortion is inverted by fixed-point iteration (as OpenCV's undistortPoints).
        """
        fx, fy, cx, cy, skew = self.k[0, 0], self.k[1, 1], self.k[0, 2], self.k[1, 2], self.k[0, 1]
        yd = (v - cy) / fy
        xd = (u - cx - skew * yd) / fx
        if not self.has_distortion:
            return xd, yd
        d = np.zeros(8)
        d[: self.d.size] = self.d
        k1, k2, p1, p2, k3, k4, k5, k6 = d
        x, y = xd.copy(), yd.copy()
        for _ in range(iterations):
            r2 = x * x + y * y
            icdist = (1 + r2 * (k4 + r2 * (k5 + r2 * k6))) / (1 + r2 * (k1 + r2 * (k2 + r2 * k3)))
            dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
            dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
            x = (xd - dx) * icdist
            y = (yd - dy) * icdist
        return x, y

    def pixel_rays_optical(self) -> np.ndarray:
        """Unit ray directions through every pixel centre, optical frame, shape (H, W, 3) float64."""
        v, u = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64)
        x, y = self.undistort_pixels(u, v)
        rays = np.stack([x, y, np.ones_like(x)], axis=-1)
        return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def pixel_rays_grid(intrinsics: CameraIntrinsics, pose: CameraPose) -> np.ndarray:
    """Unit ray directions through every pixel centre in the grid frame, shape (H, W, 3) float64."""
    return intrinsics.pixel_rays_optical() @ pose.rotation_optical.T


def intrinsics_from_camera_info(msg: object) -> CameraIntrinsics:
    """Build intrinsics from a sensor_msgs/CameraInfo-like object (fields width, height, k, d).

    Works with rclpy messages and rosbags' dataclasses alike (duck-typed).
    """
    try:
        k = np.asarray(msg.k, dtype=np.float64)  # type: ignore[attr-defined]
        d = np.asarray(msg.d, dtype=np.float64)  # type: ignore[attr-defined]
        width, height = int(msg.width), int(msg.height)  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError) as err:
        raise GeometryError(f"not a CameraInfo message: {err}") from err
    if k.size != 9:
        raise GeometryError(f"CameraInfo.k must have 9 values, got {k.size}")
    return CameraIntrinsics(width, height, k.reshape(3, 3), d)


def as_pose(xyz: Sequence[float], rpy: Sequence[float]) -> CameraPose:
    """CameraPose from parameter lists, validated."""
    return CameraPose(tuple(xyz), tuple(rpy))  # type: ignore[arg-type]


def intrinsics_from_camera_info_checked(msg: object) -> CameraIntrinsics:
    """``intrinsics_from_camera_info`` plus a check of ``distortion_model``.

    A non-zero ``d`` under a model other than plumb_bob / rational_polynomial (e.g.
    ``equidistant``) would be applied with the wrong formula, so it raises GeometryError.
    """
    intrinsics = intrinsics_from_camera_info(msg)
    model = str(getattr(msg, "distortion_model", "") or "")
    if intrinsics.has_distortion and model not in SUPPORTED_DISTORTION_MODELS:
        raise GeometryError(
            f"unsupported distortion_model {model!r} with non-zero D; supported: {SUPPORTED_DISTORTION_MODELS[1:]}"
        )
    return intrinsics


def intrinsics_from_parameters(params: Mapping[str, Any], prefix: str = "camera_info.") -> CameraIntrinsics:
    """Intrinsics from flat parameters ``camera_info.width``, ``.height``, ``.k`` (9 values), ``.d`` (optional).

    Raises:
        GeometryError: missing or malformed values.
    """
    try:
        width = int(params[prefix + "width"])
        height = int(params[prefix + "height"])
        k = np.asarray(params[prefix + "k"], dtype=np.float64)
        d = np.asarray(params.get(prefix + "d", []) or [], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise GeometryError(f"camera_info parameters incomplete or malformed: {err!r}") from err
    if k.size != 9:
        raise GeometryError(f"{prefix}k must have 9 values, got {k.size}")
    return CameraIntrinsics(width, height, k.reshape(3, 3), d)


def pose_from_parameters(params: Mapping[str, Any], prefix: str = "camera_pose.") -> CameraPose:
    """CameraPose from ``camera_pose.xyz`` (metres) and ``camera_pose.rpy`` (radians)."""
    try:
        return as_pose(params[prefix + "xyz"], params[prefix + "rpy"])
    except (KeyError, TypeError, ValueError) as err:
        raise GeometryError(f"camera_pose parameters incomplete or malformed: {err!r}") from err
