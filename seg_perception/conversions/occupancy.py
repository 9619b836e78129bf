"""numpy occupancy grid <-> nav_msgs/OccupancyGrid, and obstacle-scan ranges -> sensor_msgs/LaserScan.

Duck-typed: messages are built from ``msg_cls`` (default: the rclpy class, imported
lazily) by default-constructing it and setting fields, and read through attribute access
only, so rclpy messages and rosbags' message dataclasses both read back.

OccupancyGrid layout (nav_msgs): ``info.origin`` is the pose of the corner of cell
(row 0, col 0) in ``header.frame_id``; ``data[row * width + col]``, row = y index, col =
x index; values 0 free, 100 occupied, -1 unknown. A (height, width) numpy grid in C order
is exactly that.
"""

from __future__ import annotations

import array
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from seg_perception.conversions.buffers import byte_array
from seg_perception.errors import GeometryError
from seg_perception.geometry.grid_spec import GridSpec


@dataclass(frozen=True)
class GridMeta:
    """What an OccupancyGrid message says about its grid.

    Attributes:
        frame_id: header.frame_id.
        resolution: metres per cell.
        width, height: columns (x) and rows (y).
        origin_x, origin_y: position of the corner of cell (0, 0) in the frame, metres.
        origin_yaw: rotation of the grid about z, radians (0 for grids this package writes).
        stamp: header stamp as (sec, nanosec).
    """

    frame_id: str
    resolution: float
    width: int
    height: int
    origin_x: float
    origin_y: float
    origin_yaw: float
    stamp: tuple[int, int]

    def to_grid_spec(self, max_range: float | None = None) -> GridSpec:
        """A GridSpec with this extent (``max_range`` defaults to the grid diagonal)."""
        if abs(self.origin_yaw) > 1e-9:
            raise GeometryError(f"grid is rotated by {self.origin_yaw} rad; GridSpec is axis-aligned")
        x_max = self.origin_x + self.width * self.resolution
        y_max = self.origin_y + self.height * self.resolution
        rng = max_range if max_range is not None else math.hypot(x_max - self.origin_x, y_max - self.origin_y)
        return GridSpec(self.frame_id, self.resolution, self.origin_x, x_max, self.origin_y, y_max, rng)


def _stamp_parts(stamp: Any) -> tuple[int, int]:
    """(sec, nanosec) of a stamp given as (sec, nanosec), a Time-like object, or float seconds."""
    if stamp is None:
        return 0, 0
    if hasattr(stamp, "sec") and hasattr(stamp, "nanosec"):
        return int(stamp.sec), int(stamp.nanosec)
    if isinstance(stamp, (tuple, list)) and len(stamp) == 2:
        return int(stamp[0]), int(stamp[1])
    if isinstance(stamp, (int, float)):
        sec = math.floor(stamp)
        return int(sec), int(round((stamp - sec) * 1e9)) % 1_000_000_000
    raise GeometryError(f"cannot read a stamp from {stamp!r}")


def _fill_header(msg: Any, frame_id: str, stamp: Any, header: Any) -> None:
    if header is not None:
        msg.header = header
        return
    sec, nanosec = _stamp_parts(stamp)
    msg.header.frame_id = frame_id
    msg.header.stamp.sec = sec
    msg.header.stamp.nanosec = nanosec


def _import_msg(module: str, name: str) -> Any:
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as err:  # pragma: no cover - the pinned environment has the message packages
        raise GeometryError(f"{module}.{name} is not importable; pass msg_cls") from err


def grid_to_msg(
    grid: np.ndarray,
    spec: GridSpec,
    stamp: Any = None,
    header: Any = None,
    msg_cls: Any = None,
) -> Any:
    """nav_msgs/OccupancyGrid of a (spec.height, spec.width) int8 grid.

    Args:
        grid: (rows, cols) values in {-1, 0..100}; row = y index, col = x index.
        spec: extent, resolution and frame of the grid.
        stamp: header stamp: (sec, nanosec), a Time-like object, or float seconds; also
            used as ``info.map_load_time``.
        header: a ready std_msgs/Header (its frame_id should be ``spec.frame_id``);
            overrides ``stamp``.
        msg_cls: OccupancyGrid class (default nav_msgs.msg.OccupancyGrid).

    Raises:
        GeometryError: the grid's shape differs from ``spec.shape`` or values are out of range.
    """
    grid = np.asarray(grid)
    if grid.shape != spec.shape:
        raise GeometryError(f"grid shape {grid.shape} does not match the grid spec's (rows, cols) {spec.shape}")
    if grid.dtype != np.int8:
        if not np.issubdtype(grid.dtype, np.integer) or grid.size and (grid.min() < -1 or grid.max() > 100):
            raise GeometryError("occupancy values must be integers in -1..100")
        grid = grid.astype(np.int8)
    cls = msg_cls or _import_msg("nav_msgs.msg", "OccupancyGrid")
    msg = cls()
    _fill_header(msg, spec.frame_id, stamp, header)
    info = msg.info
    sec, nanosec = _stamp_parts(stamp if header is None else header.stamp)
    info.map_load_time.sec = sec
    info.map_load_time.nanosec = nanosec
    info.resolution = float(spec.resolution)
    info.width = int(spec.width)
    info.height = int(spec.height)
    info.origin.position.x = float(spec.x_min)
    info.origin.position.y = float(spec.y_min)
    info.origin.position.z = 0.0
    info.origin.orientation.x = 0.0
    info.origin.orientation.y = 0.0
    info.origin.orientation.z = 0.0
    info.origin.orientation.w = 1.0
    # array('b') is what rclpy stores; handing it over skips a per-element Python check.
    msg.data = byte_array(grid, "b")
    return msg


def msg_to_grid(msg: Any) -> tuple[np.ndarray, GridMeta]:
    """(rows, cols) int8 grid and its metadata from an OccupancyGrid-like message.

    Raises:
        GeometryError: not an OccupancyGrid, or len(data) != width * height.
    """
    try:
        info = msg.info
        width, height = int(info.width), int(info.height)
        data = msg.data
        q = info.origin.orientation
        yaw = math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
        meta = GridMeta(
            frame_id=str(msg.header.frame_id),
            resolution=float(info.resolution),
            width=width,
            height=height,
            origin_x=float(info.origin.position.x),
            origin_y=float(info.origin.position.y),
            origin_yaw=float(yaw),
            stamp=_stamp_parts(msg.header.stamp),
        )
    except (AttributeError, TypeError, ValueError) as err:
        raise GeometryError(f"not an OccupancyGrid message: {err}") from err
    if isinstance(data, (bytes, bytearray, array.array)):
        flat = np.frombuffer(bytes(data) if not isinstance(data, array.array) else data.tobytes(), dtype=np.int8)
    else:
        flat = np.asarray(data).astype(np.int8)
    if flat.size != width * height:
        raise GeometryError(f"OccupancyGrid data has {flat.size} values, width*height is {width * height}")
    return flat.reshape(height, width).copy(), meta


def ranges_to_scan_msg(
    ranges: np.ndarray,
    spec: Any,
    frame_id: str,
    stamp: Any = None,
    header: Any = None,
    msg_cls: Any = None,
    scan_time: float = 0.0,
) -> Any:
    """sensor_msgs/LaserScan of obstacle-scan ranges.

    Args:
        ranges: (n_beams,) metres; finite = obstacle, +inf = seen free to the view's end,
            NaN = no information (see seg_perception.geometry.scan).
        spec: beam layout with ``angle_min``, ``angle_increment``, ``n_beams``,
            ``range_min``, ``range_max`` (a ``ScanSpec``).
        frame_id: the grid frame (beams start at its origin).
        stamp, header: as in ``grid_to_msg``.
        msg_cls: LaserScan class (default sensor_msgs.msg.LaserScan).
        scan_time: seconds between scans (0 if unknown).
    """
    ranges = np.asarray(ranges, dtype=np.float32).ravel()
    if ranges.size != int(spec.n_beams):
        raise GeometryError(f"{ranges.size} ranges for a scan of {spec.n_beams} beams")
    cls = msg_cls or _import_msg("sensor_msgs.msg", "LaserScan")
    msg = cls()
    _fill_header(msg, frame_id, stamp, header)
    msg.angle_min = float(spec.angle_min)
    msg.angle_increment = float(spec.angle_increment)
    msg.angle_max = float(spec.angle_min + (int(spec.n_beams) - 1) * spec.angle_increment)
    msg.time_increment = 0.0
    msg.scan_time = float(scan_time)
    msg.range_min = float(spec.range_min)
    msg.range_max = float(spec.range_max)
    msg.ranges = byte_array(ranges, "f")
    msg.intensities = array.array("f")
    return msg


def scan_msg_to_ranges(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ranges float32 (n,), bearings float64 (n,) radians) of a LaserScan-like message."""
    try:
        ranges = np.asarray(msg.ranges, dtype=np.float32).ravel()
        angles = float(msg.angle_min) + np.arange(ranges.size) * float(msg.angle_increment)
    except (AttributeError, TypeError, ValueError) as err:
        raise GeometryError(f"not a LaserScan message: {err}") from err
    return ranges, angles
