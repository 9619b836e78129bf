"""Reading ROS 2 (and ROS 1) bags without a ROS runtime (``rosbags``): ``BagReader`` and shared names.

Reading uses the definitions embedded in the bag (falling back to Kilted), so bags from
other writers and distributions, and ROS 1 ``.bag`` files, are readable. A truncated
MCAP or sqlite3 bag (a robot that lost power) is read up to its first damaged record
unless ``strict``; ``BagReader.damage`` then says what was lost (see ``bag_salvage``).
"""

from __future__ import annotations

import logging
import sqlite3
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from seg_perception.errors import BagError
from seg_perception.evaluation.bag_salvage import BagDamage, salvage_bag

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
    missing or corrupt bag. A truncated ROS 2 bag is read up to its first damaged record
    and ``damage`` describes the loss, unless ``strict`` (then it is a BagError too).
    """

    def __init__(self, path: str | Path, *, strict: bool = False) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        self.strict = strict
        self._reader: Any = None
        self._errors = _bag_read_errors()
        #: what a truncated bag lost (None: the bag read as recorded)
        self.damage: BagDamage | None = None

    def __enter__(self) -> BagReader:
        from rosbags.highlevel import AnyReader

        try:
            reader = AnyReader([self.path], default_typestore=get_typestore())
            reader.open()
        except self._errors as err:
            reason = f"cannot open bag {self.path}: {err or type(err).__name__}"
            if self.strict:
                raise BagError(reason) from err
            salvaged = salvage_bag(self.path, reason, get_typestore())  # BagError when nothing is readable
            self.damage = salvaged.damage
            reader = salvaged
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
        """Topic name -> type and message count (from the bag's index; readable messages when salvaged)."""
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
        """Messages of ``topics`` (receive-time order; file order when salvaged).

        A bag unreadable midway raises BagError when ``strict``; otherwise reading stops
        there and ``damage`` records it.
        """
        conns = [c for c in self._reader.connections if c.topic in set(topics)]
        if not conns:
            return
        it = self._reader.messages(connections=conns)
        read = 0
        while True:
            try:
                conn, t, raw = next(it)
            except StopIteration:
                return
            except self._errors as err:
                reason = f"bag {self.path} is corrupt or truncated: {err or type(err).__name__}"
                if self.strict:
                    raise BagError(reason) from err
                if self.damage is None:
                    self.damage = BagDamage(str(self.path), reason, where=f"after {read} messages of {list(topics)}")
                log.debug("%s", reason)
                return
            read += 1
            yield BagMessage(conn.topic, conn.msgtype, int(t), raw, self)
