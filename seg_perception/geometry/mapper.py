"""Per-camera-stream occupancy front end: a GroundProjector (and ObstacleScanner) cached for the current
camera info, pose and label size, rebuilt only when one of those changes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from seg_perception.errors import GeometryError, ImageError
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose, intrinsics_from_camera_info_checked
from seg_perception.geometry.classes import class_lut
from seg_perception.geometry.grid_spec import GridSpec
from seg_perception.geometry.projection import GroundProjector
from seg_perception.geometry.scan import DEFAULT_ANGLE_INCREMENT, ObstacleScanner
from seg_perception.geometry.transforms import pose_over_ground


class OccupancyMapper:
    """Per-camera-stream front end: keeps a GroundProjector (and ObstacleScanner) for the current
    camera info, pose and label size, and rebuilds them only when one of those changes.

    Args:
        grid: grid geometry and ``max_range``.
        pose: camera body pose in the grid frame.
        drivable_classes, obstacle_classes: class ids.
        scan_angle_increment: obstacle-scan beam spacing, radians; None disables the scan.
        link_distance: see GroundProjector.

    Typical use: docs/occupancy.md, "Python API".
    """

    def __init__(
        self,
        grid: GridSpec,
        pose: CameraPose,
        drivable_classes: Iterable[int],
        obstacle_classes: Iterable[int],
        scan_angle_increment: float | None = None,
        link_distance: float | None = None,
    ) -> None:
        self.grid = grid
        self.pose = pose
        self.drivable_classes = frozenset(int(c) for c in drivable_classes)
        self.obstacle_classes = frozenset(int(c) for c in obstacle_classes)
        #: (256,) bool lookups of the class sets (also what the depth-aware grid uses)
        self.drivable_lut = class_lut(self.drivable_classes, "drivable_classes")
        self.obstacle_lut = class_lut(self.obstacle_classes, "obstacle_classes")
        self.scan_angle_increment = DEFAULT_ANGLE_INCREMENT if scan_angle_increment is None else scan_angle_increment
        self.link_distance = link_distance
        self.intrinsics: CameraIntrinsics | None = None
        self.projector: GroundProjector | None = None
        self.scanner: ObstacleScanner | None = None
        self.rebuilds = 0

    def set_camera_info(self, msg: object) -> bool:
        """Use a sensor_msgs/CameraInfo-like message (duck-typed). Returns True when the intrinsics changed.

        Raises GeometryError for unusable camera info (zero focal length, NaN, bad size).
        """
        return self.set_intrinsics(intrinsics_from_camera_info_checked(msg))

    def set_intrinsics(self, intrinsics: CameraIntrinsics) -> bool:
        """Returns True when the intrinsics differ from the current ones (the lookup is then rebuilt lazily)."""
        cur = self.intrinsics
        if (
            cur is not None
            and (cur.width, cur.height) == (intrinsics.width, intrinsics.height)
            and np.array_equal(cur.k, intrinsics.k)
            and np.array_equal(cur.d, intrinsics.d)
        ):
            return False
        self.intrinsics = intrinsics
        self.projector = None
        return True

    def set_pose(self, pose: CameraPose, tol_m: float = 1e-3, tol_rad: float = 1e-4) -> bool:
        """Use a new camera pose (e.g. from TF). Changes below ``tol_m`` / ``tol_rad`` are ignored so
        that jitter in a static transform does not rebuild the lookup every frame. Returns True when
        the lookup will be rebuilt."""
        cur = self.pose
        if np.all(np.abs(np.subtract(pose.xyz, cur.xyz)) <= tol_m) and np.all(
            np.abs(np.angle(np.exp(1j * np.subtract(pose.rpy, cur.rpy)))) <= tol_rad
        ):
            return False
        self.pose = pose
        self.projector = None
        return True

    def _ensure(self, shape: tuple[int, int]) -> GroundProjector:
        if self.intrinsics is None:
            raise GeometryError("no camera info received yet")
        size = (shape[1], shape[0])
        if self.projector is None or self.projector.label_size != size:
            # Clear first: if the build raises, the stale lookup must not be used for the new size.
            self.projector = None
            self.scanner = None
            projector = GroundProjector(
                self.intrinsics,
                self.ground_pose,
                self.grid,
                self.drivable_classes,
                self.obstacle_classes,
                label_size=size,
                link_distance=self.link_distance,
            )
            if self.scan_angle_increment:
                self.scanner = ObstacleScanner.for_projector(projector, angle_increment=self.scan_angle_increment)
            self.projector = projector
            self.rebuilds += 1
        return self.projector

    @property
    def ground_pose(self) -> CameraPose:
        """The camera pose with the floor at z = 0 (``grid.ground_z`` applied); what projection uses."""
        return pose_over_ground(self.pose, self.grid.ground_z)

    def scanner_for(self, shape: tuple[int, int]) -> ObstacleScanner | None:
        """The obstacle scanner for (H, W) label images (building the lookup if needed)."""
        self._ensure(shape)
        return self.scanner

    def process(self, labels: np.ndarray) -> MapperOutput:
        """Grid (and scan) of one (H, W) label image; rebuilds the lookup if the size changed."""
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ImageError(f"labels must be a 2-D (H, W) array, got shape {labels.shape}")
        projector = self._ensure(labels.shape)
        result = projector.project(labels)
        ranges = self.scanner.scan(result) if self.scanner is not None else None
        return MapperOutput(grid=result.grid, contacts=result.contacts, scan_ranges=ranges)


@dataclass(frozen=True)
class MapperOutput:
    """Per-frame output of OccupancyMapper.

    Attributes:
        grid: (rows, cols) int8 occupancy grid (see OccupancyResult).
        contacts: (N, 2) float64 contact points, grid frame, metres.
        scan_ranges: (n_beams,) float32 obstacle scan ranges (see scan.ObstacleScanner), or None.
    """

    grid: np.ndarray
    contacts: np.ndarray
    scan_ranges: np.ndarray | None


__all__ = ["MapperOutput", "OccupancyMapper"]
