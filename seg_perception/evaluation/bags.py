"""ROS 2 bag reading and writing without a ROS runtime (``rosbags``: sqlite3 and MCAP).

Bags written here are ordinary rosbag2 recordings (``metadata.yaml`` + one ``.mcap`` or
``.db3`` file, metadata version 9 with type hashes) that ``ros2 bag info`` and ``ros2 bag
play`` accept. Message classes come from the ROS 2 Kilted typestore of ``rosbags``;
reading uses the definitions embedded in the bag (falling back to Kilted), so bags from
other writers and distributions, and ROS 1 ``.bag`` files, are readable too.

Dataset bags (``make_bag``) carry, per frame, with one shared header (stamp, frame_id):

- ``/camera/image_raw``            sensor_msgs/Image ``rgb8`` (lossless)
- ``/camera/image_raw/compressed`` sensor_msgs/CompressedImage (only when asked: jpeg or png)
- ``/camera/camera_info``          sensor_msgs/CameraInfo
- ``/camera/labels_gt``            sensor_msgs/Image ``mono8`` ground-truth class ids

Stamps start at ``start_ns`` and advance by 1/rate seconds; the bag's receive time of
each message equals its header stamp.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import sqlite3
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import yaml

from seg_perception.conversions.image import encode_compressed, image_fields
from seg_perception.errors import BagError, ConfigError, GeometryError
from seg_perception.geometry.camera import CameraIntrinsics

log = logging.getLogger(__name__)

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
OCCUPANCY_GRID = "nav_msgs/msg/OccupancyGrid"
IMAGE_TYPES = (IMAGE, COMPRESSED)

IMAGE_TOPIC = "/camera/image_raw"
COMPRESSED_TOPIC = "/camera/image_raw/compressed"
CAMERA_INFO_TOPIC = "/camera/camera_info"
GT_TOPIC = "/camera/labels_gt"
FRAME_ID = "camera_optical_frame"
#: 2020-09-13T12:26:40Z: a fixed start keeps generated bags byte-for-byte reproducible.
DEFAULT_START_NS = 1_600_000_000 * 10**9
#: Horizontal field of view of the fallback pinhole camera (the synthetic street camera's).
DEFAULT_HFOV_DEG = 62.0
STORAGE_FORMATS = ("mcap", "sqlite3")


def get_typestore() -> Any:
    """The ``rosbags`` typestore of the newest ROS 2 distribution it knows (Kilted or later)."""
    from rosbags.typesys import Stores
    from rosbags.typesys import get_typestore as _get

    for name in ("ROS2_KILTED", "ROS2_JAZZY", "ROS2_HUMBLE", "LATEST"):
        store = getattr(Stores, name, None)
        if store is not None:
            return _get(store)
    raise BagError("rosbags provides no ROS 2 typestore")  # pragma: no cover - every rosbags release has one


def stamp_ns(header: Any) -> int:
    """Header stamp as integer nanoseconds since the epoch."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def format_stamp(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


# --------------------------------------------------------------------------- messages


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


# --------------------------------------------------------------------------- camera config


def _ros_parameters(doc: Any, node_name: str = "seg_perception") -> dict:
    """The ``ros__parameters`` mapping for ``node_name`` (or ``/**``) of a ROS 2 params file."""
    if not isinstance(doc, dict):
        return {}
    for key in (node_name, f"/{node_name}", "/**"):
        section = doc.get(key)
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            return section["ros__parameters"]
    for section in doc.values():  # a namespaced node: /ns/seg_perception
        if isinstance(section, dict):
            found = _ros_parameters(section, node_name)
            if found:
                return found
    return {}


def _lookup(params: dict, dotted: str) -> Any:
    """A parameter given either nested (camera_info: {width: ..}) or flat ("camera_info.width")."""
    if dotted in params:
        return params[dotted]
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def default_camera_config_path() -> Path:
    """``config/camvid.yaml`` of the source tree (may not exist)."""
    return Path(__file__).resolve().parents[2] / "config" / "camvid.yaml"


def load_camera_config(path: str | Path) -> CameraIntrinsics | None:
    """Intrinsics from a node params file's ``camera_info.{width,height,k,d}``; None when it has none.

    Raises ConfigError when the file is unreadable or its camera_info values are invalid.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read camera config {path}: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"camera config {path} is not valid YAML: {err}") from err
    params = _ros_parameters(doc)
    values = {key: _lookup(params, f"camera_info.{key}") for key in ("width", "height", "k", "d")}
    if values["k"] is None or values["width"] is None or values["height"] is None:
        return None
    try:
        return CameraIntrinsics(
            int(values["width"]),
            int(values["height"]),
            np.asarray(values["k"], np.float64).reshape(3, 3),
            np.asarray(values["d"] if values["d"] is not None else [], np.float64),
        )
    except (GeometryError, TypeError, ValueError) as err:
        raise ConfigError(f"camera config {path}: invalid camera_info: {err}") from err


def camera_for_image(width: int, height: int, config: str | Path | None = None) -> tuple[CameraIntrinsics, str]:
    """Intrinsics for ``width`` x ``height`` images and where they came from.

    From ``config`` (a node params file; None = ``config/camvid.yaml`` when present),
    rescaled when the configured size differs from the images'; otherwise a pinhole
    with a 62 degree horizontal field of view, square pixels, the principal point at
    the image centre and no distortion. An explicitly given ``config`` that does not
    exist is an error.
    """
    path = Path(config) if config is not None else default_camera_config_path()
    if config is not None and not path.exists():
        raise ConfigError(f"camera config {path} does not exist")
    cam = load_camera_config(path) if path.exists() else None
    if cam is None:
        source = f"default pinhole (hfov {DEFAULT_HFOV_DEG} deg; no camera_info in {path})"
        return CameraIntrinsics.from_fov(width, height, DEFAULT_HFOV_DEG), source
    if (cam.width, cam.height) != (width, height):
        return cam.scaled(width, height), f"{path} (scaled from {cam.width}x{cam.height})"
    return cam, str(path)


# --------------------------------------------------------------------------- writing


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


# --------------------------------------------------------------------------- reading


#: Exceptions that mean "this bag is corrupt or truncated" when raised by rosbags/storage.
def _bag_read_errors() -> tuple[type[BaseException], ...]:
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag2 import ReaderError

    errs: list[type[BaseException]] = [AnyReaderError, ReaderError, sqlite3.Error, struct.error, EOFError, OSError]
    try:
        from rosbags.rosbag1 import ReaderError as Reader1Error

        errs.append(Reader1Error)
    except ImportError:  # pragma: no cover - rosbag1 support is part of rosbags
        pass
    try:  # rosbags' sqlite3 storage uses apsw when it is installed
        import apsw

        errs.append(apsw.Error)
    except ImportError:
        pass
    try:
        from rosbags.serde import SerdeError

        errs.append(SerdeError)
    except ImportError:  # pragma: no cover
        pass
    # Truncated MCAP chunks surface as decoding errors from the storage layer.
    errs.extend([ValueError, KeyError, IndexError, UnicodeDecodeError])
    return tuple(errs)


@dataclass
class BagMessage:
    """One stored message: topic, type, receive time (ns) and raw CDR (or ROS 1) bytes."""

    topic: str
    msgtype: str
    log_ns: int
    raw: bytes | memoryview
    _reader: BagReader

    def decode(self) -> Any:
        """The deserialized message (a rosbags dataclass)."""
        return self._reader.deserialize(self.raw, self.msgtype, self.topic)


@dataclass(frozen=True)
class TopicSummary:
    topic: str
    msgtype: str
    count: int


class BagReader:
    """Reads any rosbag2 folder (sqlite3 or MCAP), bare ``.mcap``/``.db3`` file or ROS 1 ``.bag``.

    Use as a context manager. Raises BagError (never a storage-library exception) for a
    missing, corrupt or truncated bag.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        self._reader: Any = None
        self._errors = _bag_read_errors()

    def __enter__(self) -> BagReader:
        from rosbags.highlevel import AnyReader

        try:
            reader = AnyReader([self.path], default_typestore=get_typestore())
            reader.open()
        except self._errors as err:
            raise BagError(f"cannot open bag {self.path}: {err or type(err).__name__}") from err
        self._reader = reader
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            try:
                reader.close()
            except self._errors as err:  # closing a corrupt file must not mask the first error
                log.debug("closing bag %s: %s", self.path, err)

    @property
    def is_ros2(self) -> bool:
        return bool(self._reader.is2)

    @property
    def typestore(self) -> Any:
        """Types registered from the bag's own definitions."""
        return self._reader.typestore

    @property
    def topics(self) -> dict[str, TopicSummary]:
        """Topic name -> type and message count (from the bag's index)."""
        return {
            name: TopicSummary(name, info.msgtype or "", int(info.msgcount))
            for name, info in self._reader.topics.items()
        }

    def topics_of_type(self, msgtypes: Iterable[str]) -> list[str]:
        wanted = set(msgtypes)
        return sorted(t.topic for t in self.topics.values() if t.msgtype in wanted)

    def image_topics(self) -> list[str]:
        """Topics carrying sensor_msgs/Image or sensor_msgs/CompressedImage."""
        return self.topics_of_type(IMAGE_TYPES)

    def deserialize(self, raw: bytes | memoryview, msgtype: str, topic: str = "") -> Any:
        try:
            return self._reader.deserialize(raw, msgtype)
        except self._errors as err:
            raise BagError(f"bag {self.path}: cannot decode a {msgtype} message on {topic}: {err}") from err

    def messages(self, topics: Sequence[str]) -> Iterator[BagMessage]:
        """Messages of ``topics`` in receive-time order; BagError when the bag is unreadable midway."""
        conns = [c for c in self._reader.connections if c.topic in set(topics)]
        if not conns:
            return
        it = self._reader.messages(connections=conns)
        while True:
            try:
                conn, t, raw = next(it)
            except StopIteration:
                return
            except self._errors as err:
                raise BagError(f"bag {self.path} is corrupt or truncated: {err or type(err).__name__}") from err
            yield BagMessage(conn.topic, conn.msgtype, int(t), raw, self)


# --------------------------------------------------------------------------- dataset -> bag


@dataclass
class MakeBagResult:
    path: Path
    frames: int
    storage: str
    topics: dict[str, str]
    camera_source: str
    duration_s: float


def make_bag(
    frames: Iterable[tuple[np.ndarray, np.ndarray | None]],
    out: str | Path,
    *,
    rate_hz: float = 15.0,
    storage: str = "mcap",
    compressed: str | None = None,
    camera_config: str | Path | None = None,
    frame_id: str = FRAME_ID,
    start_ns: int = DEFAULT_START_NS,
    on_frame: Callable[[int], None] | None = None,
) -> MakeBagResult:
    """Write a camera stream of (HxWx3 uint8 RGB, HxW uint8 labels or None) frames as a bag.

    Args:
        frames: images with optional ground truth, in time order.
        out: output bag folder (must not exist).
        rate_hz: frame rate; frame i is stamped ``start_ns + round(i * 1e9 / rate_hz)``.
        storage: "mcap" or "sqlite3".
        compressed: also write ``/camera/image_raw/compressed`` as "jpeg" or "png"; None = no.
        camera_config: node params file with camera_info (see ``camera_for_image``).
        frame_id: header frame_id (camera optical frame).
        on_frame: called with the frame index after each frame (progress).
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
            for rgb, labels in itertools.chain([first], it):
                h, w = rgb.shape[:2]
                if cam is None:
                    cam, cam_source = camera_for_image(w, h, camera_config)
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
