"""Writing ROS 2 bags without a ROS runtime (``rosbags``): message builders, ``BagWriter``, ``make_bag``.

Bags written here are ordinary rosbag2 recordings (``metadata.yaml`` + one ``.mcap`` or
``.db3`` file, metadata version 9 with type hashes) that ``ros2 bag info`` and ``ros2 bag
play`` accept. Message classes come from the ROS 2 Kilted typestore of ``rosbags``.

Dataset bags (``make_bag``) carry, per frame, with one shared header (stamp, frame_id):

- ``/camera/image_raw``            sensor_msgs/Image ``rgb8`` (lossless)
- ``/camera/image_raw/compressed`` sensor_msgs/CompressedImage (only when asked: jpeg or png)
- ``/camera/camera_info``          sensor_msgs/CameraInfo
- ``/camera/labels_gt``            sensor_msgs/Image ``mono8`` ground-truth class ids
- RGB-D frames (a third tuple element, ``rgbd_bag.RgbdExtras``): the depth and truth topics
  of ``rgbd_bag`` (synthetic data; CamVid has no depth)

Stamps start at ``start_ns`` and advance by 1/rate seconds; the bag's receive time of
each message equals its header stamp.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.conversions.image import encode_compressed, image_fields
from seg_perception.errors import BagError
from seg_perception.evaluation.bags import (
    CAMERA_INFO,
    CAMERA_INFO_TOPIC,
    COMPRESSED,
    COMPRESSED_TOPIC,
    DEFAULT_START_NS,
    FRAME_ID,
    GT_TOPIC,
    IMAGE,
    IMAGE_TOPIC,
    OCCUPANCY_GRID,
    STORAGE_FORMATS,
    get_typestore,
    stamp_ns,
)
from seg_perception.evaluation.camera_config import camera_for_image
from seg_perception.evaluation.rgbd_bag import (
    DEPTH_TOPIC,
    MARKER_ARRAY,
    TRUTH_GRID_TOPIC,
    TRUTH_OBJECTS_TOPIC,
    RgbdExtras,
    depth_message,
    objects_message,
)
from seg_perception.geometry.camera import CameraIntrinsics


class Messages:
    """Builds ``rosbags`` message dataclasses from numpy data (one typestore)."""

    def __init__(self, typestore: Any | None = None) -> None:
        self.typestore = typestore or get_typestore()
        self._t = self.typestore.types

    def header(self, ns: int, frame_id: str) -> Any:
        time = self._t["builtin_interfaces/msg/Time"](sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))
        return self._t["std_msgs/msg/Header"](stamp=time, frame_id=str(frame_id))

    def copy_header(self, header: Any) -> Any:
        return self.header(stamp_ns(header), header.frame_id)

    def image(self, arr: np.ndarray, encoding: str, header: Any) -> Any:
        """sensor_msgs/Image of HxW (mono8) or HxWxC uint8 ``arr`` in ``encoding``."""
        return self._t[IMAGE](header=header, **image_fields(arr, encoding))

    def compressed(self, rgb: np.ndarray, fmt: str, header: Any, quality: int = 95) -> Any:
        """sensor_msgs/CompressedImage of HxWx3 uint8 RGB as ``jpeg`` or ``png``."""
        name, data = encode_compressed(rgb, fmt, quality)
        return self._t[COMPRESSED](header=header, format=name, data=data)

    def camera_info(self, cam: CameraIntrinsics, header: Any) -> Any:
        """sensor_msgs/CameraInfo of ``cam`` (plumb_bob, or rational_polynomial for 8 coefficients)."""
        k = np.asarray(cam.k, np.float64)
        p = np.zeros((3, 4))
        p[:, :3] = k
        d = np.asarray(cam.d, np.float64).ravel()
        if d.size == 0:
            d = np.zeros(5)
        roi = self._t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return self._t[CAMERA_INFO](
            header=header,
            height=int(cam.height),
            width=int(cam.width),
            distortion_model="rational_polynomial" if d.size == 8 else "plumb_bob",
            d=d,
            k=k.reshape(-1),
            r=np.eye(3).reshape(-1),
            p=p.reshape(-1),
            binning_x=0,
            binning_y=0,
            roi=roi,
        )

    def occupancy_grid(
        self,
        grid: np.ndarray,
        header: Any,
        resolution: float = 0.1,
        origin_xy: tuple[float, float] = (0.0, 0.0),
    ) -> Any:
        """nav_msgs/OccupancyGrid of an int8 (rows = y cells, columns = x cells) grid.

        ``origin_xy`` is the metric position (m) of cell (0, 0)'s corner in ``header.frame_id``.
        """
        g = np.asarray(grid)
        if g.ndim != 2:
            raise BagError(f"occupancy grid must be 2-D, got shape {g.shape}")
        t = self._t
        point = t["geometry_msgs/msg/Point"](x=float(origin_xy[0]), y=float(origin_xy[1]), z=0.0)
        quat = t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)
        info = t["nav_msgs/msg/MapMetaData"](
            map_load_time=header.stamp,
            resolution=float(resolution),
            width=int(g.shape[1]),
            height=int(g.shape[0]),
            origin=t["geometry_msgs/msg/Pose"](position=point, orientation=quat),
        )
        return t[OCCUPANCY_GRID](header=header, info=info, data=np.ascontiguousarray(g, dtype=np.int8).reshape(-1))


class BagWriter:
    """Writes a rosbag2 recording (``mcap`` or ``sqlite3`` storage). Use as a context manager.

    Args:
        path: output bag folder; must not exist yet.
        storage: "mcap" or "sqlite3".
        typestore: message types (default: Kilted).
    """

    def __init__(self, path: str | Path, storage: str = "mcap", typestore: Any | None = None) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGE_FORMATS:
            raise BagError(f"storage format must be one of {STORAGE_FORMATS}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"output bag {self.path} already exists; choose a new path")
        if not self.path.parent.is_dir():
            raise BagError(f"folder {self.path.parent} for output bag does not exist")
        self.typestore = typestore or get_typestore()
        self.msgs = Messages(self.typestore)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._connections: dict[str, Any] = {}
        self._open = False
        #: True once the bag folder exists on disk (created by this writer)
        self.created = False

    def __enter__(self) -> BagWriter:
        from rosbags.rosbag2 import WriterError

        try:
            self._writer.open()
        except (WriterError, OSError) as err:
            raise BagError(f"cannot create bag {self.path}: {err}") from err
        self._open = self.created = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._open:
            self._open = False
            self._writer.close()

    def add_topic(self, topic: str, msgtype: str, typestore: Any | None = None) -> None:
        """Declare ``topic`` of ``msgtype`` (types from ``typestore`` or the writer's)."""
        from rosbags.rosbag2 import WriterError
        from rosbags.typesys import TypesysError

        if topic in self._connections:
            return
        try:
            conn = self._writer.add_connection(topic, msgtype, typestore=typestore or self.typestore)
        except (WriterError, TypesysError, KeyError) as err:
            raise BagError(f"cannot add topic {topic} ({msgtype}) to bag {self.path}: {err}") from err
        self._connections[topic] = conn

    def write(self, topic: str, msg: Any, log_ns: int) -> None:
        """Serialize ``msg`` (CDR) on a declared ``topic`` with receive time ``log_ns``."""
        conn = self._connections[topic]
        self._writer.write(conn, int(log_ns), self.typestore.serialize_cdr(msg, conn.msgtype))

    def write_raw(self, topic: str, data: bytes | memoryview, log_ns: int) -> None:
        """Write already CDR-serialized ``data`` on a declared ``topic``."""
        self._writer.write(self._connections[topic], int(log_ns), data)


@dataclass
class MakeBagResult:
    path: Path
    frames: int
    storage: str
    topics: dict[str, str]
    camera_source: str
    duration_s: float


def make_bag(
    frames: Iterable[tuple[np.ndarray, np.ndarray | None] | tuple[np.ndarray, np.ndarray | None, Any]],
    out: str | Path,
    *,
    rate_hz: float = 15.0,
    storage: str = "mcap",
    compressed: str | None = None,
    camera_config: str | Path | None = None,
    frame_id: str = FRAME_ID,
    start_ns: int = DEFAULT_START_NS,
    on_frame: Callable[[int], None] | None = None,
    class_names: tuple[str, ...] = CAMVID_CLASSES,
    camera: CameraIntrinsics | None = None,
) -> MakeBagResult:
    """Write a camera stream of (HxWx3 uint8 RGB, HxW uint8 labels or None[, RGB-D extras]) frames as a bag.

    Args:
        frames: images with optional ground truth, in time order.
        out: output bag folder (must not exist).
        rate_hz: frame rate; frame i is stamped ``start_ns + round(i * 1e9 / rate_hz)``.
        storage: "mcap" or "sqlite3".
        compressed: also write ``/camera/image_raw/compressed`` as "jpeg" or "png"; None = no.
        camera_config: node params file with camera_info (see ``camera_for_image``).
        frame_id: header frame_id (camera optical frame).
        on_frame: called with the frame index after each frame (progress).
        class_names: names of the truth objects' class ids (RGB-D extras only).
        camera: the frames' intrinsics (synthetic data); overrides ``camera_config``.
    """
    if not rate_hz > 0:
        raise BagError(f"rate must be > 0 Hz, got {rate_hz}")
    if compressed not in (None, "jpeg", "png"):
        raise BagError(f"compressed format must be jpeg or png, got {compressed!r}")
    period_ns = 1e9 / rate_hz
    topics = {IMAGE_TOPIC: IMAGE, CAMERA_INFO_TOPIC: CAMERA_INFO}
    if compressed:
        topics[COMPRESSED_TOPIC] = COMPRESSED
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise BagError("no frames to write")
    out = Path(out)
    n = 0
    cam: CameraIntrinsics | None = None
    cam_source = ""
    size: tuple[int, int] | None = None
    last_ns = start_ns
    writer = BagWriter(out, storage)
    try:
        with writer:
            msgs = writer.msgs
            for name, msgtype in topics.items():
                writer.add_topic(name, msgtype)
            for item in itertools.chain([first], it):
                rgb, labels = item[0], item[1]
                h, w = rgb.shape[:2]
                if cam is None:
                    cam, cam_source = (
                        (camera, "the renderer") if camera is not None else camera_for_image(w, h, camera_config)
                    )
                    size = (h, w)
                elif size != (h, w):
                    # One CameraInfo per stream: a size change means the frames are not one camera.
                    raise BagError(f"frame {n} is {w}x{h} but the stream started at {size[1]}x{size[0]}")
                ns = start_ns + round(n * period_ns)
                header = msgs.header(ns, frame_id)
                # camera_info first: a player sends same-stamp messages in write order, and a node
                # needs the intrinsics when the image arrives.
                writer.write(CAMERA_INFO_TOPIC, msgs.camera_info(cam, header), ns)
                writer.write(IMAGE_TOPIC, msgs.image(rgb, "rgb8", header), ns)
                if compressed:
                    writer.write(COMPRESSED_TOPIC, msgs.compressed(rgb, compressed, header), ns)
                if labels is not None:
                    if labels.shape != (h, w):
                        raise BagError(f"frame {n}: labels {labels.shape[::-1]} differ from image {w}x{h}")
                    if GT_TOPIC not in topics:
                        writer.add_topic(GT_TOPIC, IMAGE)
                        topics[GT_TOPIC] = IMAGE
                    writer.write(GT_TOPIC, msgs.image(labels, "mono8", header), ns)
                if len(item) > 2 and item[2] is not None:
                    _write_rgbd(writer, topics, item[2], header, ns, (h, w), n, class_names)
                last_ns = ns
                n += 1
                if on_frame:
                    on_frame(n)
    except BaseException:
        # A half-written bag would pass for a complete one; remove what this call created.
        if writer.created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return MakeBagResult(out, n, storage, topics, cam_source, (last_ns - start_ns) / 1e9)


def _write_rgbd(
    writer: BagWriter,
    topics: dict[str, str],
    extras: RgbdExtras,
    header: Any,
    ns: int,
    size: tuple[int, int],
    n: int,
    class_names: tuple[str, ...],
) -> None:
    """Depth (16UC1 mm) and, when the frame has them, the truth grid and objects (``rgbd_bag``)."""
    if extras.depth_m.shape != size:
        raise BagError(f"frame {n}: depth {extras.depth_m.shape[::-1]} differs from image {size[1]}x{size[0]}")
    out: list[tuple[str, str, Any]] = [(DEPTH_TOPIC, IMAGE, depth_message(writer.msgs, extras.depth_m, header))]
    grid = getattr(extras, "truth_grid", None)
    if grid is not None:
        spec = extras.grid
        grid_hdr = writer.msgs.header(ns, spec.frame_id)
        out.append(
            (
                TRUTH_GRID_TOPIC,
                OCCUPANCY_GRID,
                writer.msgs.occupancy_grid(grid, grid_hdr, spec.resolution, (spec.x_min, spec.y_min)),
            )
        )
    objects = getattr(extras, "objects", None)
    if objects is not None:
        out.append((TRUTH_OBJECTS_TOPIC, MARKER_ARRAY, objects_message(writer.msgs, objects, header, class_names)))
    for topic, msgtype, msg in out:
        if topic not in topics:
            writer.add_topic(topic, msgtype)
            topics[topic] = msgtype
        writer.write(topic, msg, ns)
