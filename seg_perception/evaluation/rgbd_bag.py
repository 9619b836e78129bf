"""RGB-D in bags: the depth topic, the truth topics, the rig's params file, and reading them by stamp.

A synthetic RGB-D bag (``make-bag --synthetic``) adds, with the colour frame's header:

- ``/camera/aligned_depth_to_color/image_raw``  sensor_msgs/Image ``16UC1`` millimetres, 0 = no
  reading, registered to the colour image (the RealSense name)
- ``/truth/occupancy_grid``   nav_msgs/OccupancyGrid: the world's exact occupancy around
  ``base_link`` (frame_id ``base_link``, the rig's grid geometry)
- ``/truth/objects``          visualization_msgs/MarkerArray: one CUBE per visible object,
  ``ns`` = class name, ``id`` = primitive index, pose = centre and scale = extent of its
  visible surface (camera optical frame, metres)

and ``seg_perception.yaml`` in the bag folder: the node parameters of the rig (camera pose,
grid, camera_info, classes), which ``eval-bag`` uses when no ``--camera-config`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from seg_perception.conversions.image import depth_msg_to_numpy, depth_to_image_msg
from seg_perception.depth.image import depth_to_metres
from seg_perception.errors import BagError, ImageError
from seg_perception.evaluation.bag_topics import is_depth_name
from seg_perception.evaluation.bags import IMAGE, OCCUPANCY_GRID, BagReader, stamp_ns
from seg_perception.synthetic.rgbd import depth_mm

DEPTH_TOPIC = "/camera/aligned_depth_to_color/image_raw"
TRUTH_GRID_TOPIC = "/truth/occupancy_grid"
TRUTH_OBJECTS_TOPIC = "/truth/objects"
MARKER_ARRAY = "visualization_msgs/msg/MarkerArray"
PARAMS_FILE = "seg_perception.yaml"
#: the farthest depth a 16UC1 image holds (metres)
MAX_DEPTH_M = 65.535


class RgbdExtras(Protocol):
    """What a frame adds to a bag: depth (float32 m, NaN = none), exact occupancy in ``grid`` (a GridSpec)
    and objects (``synthetic.rgbd_truth.TruthObject``); the last three may be None."""

    depth_m: np.ndarray
    truth_grid: np.ndarray | None
    grid: Any
    objects: list[Any] | None


@dataclass(frozen=True)
class TruthPosition:
    """A true object of a bag: class name, id, visible-surface centre and extent (optical frame, m)."""

    name: str
    index: int
    centre: np.ndarray
    extent: np.ndarray


def depth_message(msgs: Any, depth_m: np.ndarray, header: Any) -> Any:
    """sensor_msgs/Image ``16UC1`` of ``depth_m`` (rosbags class of the ``Messages`` builder).

    Millimetres, rounded; depth beyond 65.535 m (what 16 bits hold) becomes 0 = no reading.
    """
    t = msgs.typestore.types
    with np.errstate(invalid="ignore"):
        depth_m = np.where(depth_m <= MAX_DEPTH_M, depth_m, np.nan)
    msg = depth_to_image_msg(
        depth_mm(depth_m),
        "16UC1",
        msg_cls=lambda: t[IMAGE](
            header=header, height=0, width=0, encoding="", is_bigendian=0, step=0, data=np.zeros(0, np.uint8)
        ),
    )
    msg.header = header
    msg.data = np.frombuffer(bytes(msg.data), dtype=np.uint8)  # rosbags serializes numpy arrays
    return msg


def _marker(t: Any, header: Any, ns: str, index: int, action: int, centre: Any, extent: Any) -> Any:
    """A visualization_msgs/Marker CUBE (``action`` 0 add, 3 delete all) at ``centre`` of size ``extent``."""
    pose = t["geometry_msgs/msg/Pose"](
        position=t["geometry_msgs/msg/Point"](x=float(centre[0]), y=float(centre[1]), z=float(centre[2])),
        orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
    )
    scale = t["geometry_msgs/msg/Vector3"](x=float(extent[0]), y=float(extent[1]), z=float(extent[2]))
    empty = np.zeros(0, np.uint8)
    return t["visualization_msgs/msg/Marker"](
        header=header,
        ns=ns,
        id=int(index),
        type=1,
        action=action,
        pose=pose,
        scale=scale,
        color=t["std_msgs/msg/ColorRGBA"](r=1.0, g=1.0, b=0.0, a=0.5),
        lifetime=t["builtin_interfaces/msg/Duration"](sec=0, nanosec=0),
        frame_locked=False,
        points=[],
        colors=[],
        texture_resource="",
        texture=t["sensor_msgs/msg/CompressedImage"](header=header, format="", data=empty),
        uv_coordinates=[],
        text="",
        mesh_resource="",
        mesh_file=t["visualization_msgs/msg/MeshFile"](filename="", data=empty),
        mesh_use_embedded_materials=False,
    )


def objects_message(msgs: Any, objects: list[Any], header: Any, class_names: tuple[str, ...]) -> Any:
    """visualization_msgs/MarkerArray of ``TruthObject``-like items (label, index, centre, extent).

    The first marker is a DELETEALL carrying the frame's header, so a frame without objects
    still has a stamp (readers skip it).
    """
    t = msgs.typestore.types
    markers = [_marker(t, header, "", 0, 3, (0, 0, 0), (0, 0, 0))]
    markers += [_marker(t, header, class_names[o.label], o.index, 0, o.centre, o.extent) for o in objects]
    return t[MARKER_ARRAY](markers=markers)


def write_params(bag: Path, params: dict[str, Any]) -> Path:
    """``bag/seg_perception.yaml`` holding ``params`` as node parameters for any node name."""
    path = Path(bag) / PARAMS_FILE
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}, sort_keys=False))
    return path


def params_beside(bag: str | Path) -> Path | None:
    """The rig's params file in a bag folder, or None."""
    path = Path(bag) / PARAMS_FILE
    return path if Path(bag).is_dir() and path.is_file() else None


def find_depth_topic(reader: BagReader, depth_topic: str | None = None) -> str | None:
    """``depth_topic`` ("none" disables), else ``DEPTH_TOPIC`` or the one Image topic with a depth name."""
    topics = reader.topics
    if depth_topic is not None:
        if depth_topic.lower() in ("", "none"):
            return None
        if depth_topic not in topics or topics[depth_topic].msgtype != IMAGE:
            raise BagError(f"depth topic {depth_topic} is not a {IMAGE} topic of the bag")
        return depth_topic
    if DEPTH_TOPIC in topics and topics[DEPTH_TOPIC].msgtype == IMAGE:
        return DEPTH_TOPIC
    named = [t for t in reader.topics_of_type([IMAGE]) if is_depth_name(t)]
    return named[0] if len(named) == 1 else None


class StampIndex:
    """Raw messages of one topic by header stamp, decoded on lookup (like ``matching.GroundTruth``)."""

    def __init__(self, reader: BagReader, topic: str | None, msgtype: str) -> None:
        self.reader, self.topic, self.msgtype = reader, topic, msgtype
        self._raw: dict[int, bytes] = {}
        if topic is not None and topic in reader.topics and reader.topics[topic].msgtype == msgtype:
            for m in reader.messages([topic]):
                msg = m.decode()
                head = msg.header if hasattr(msg, "header") else (msg.markers[0].header if msg.markers else None)
                if head is not None:
                    self._raw[stamp_ns(head)] = bytes(m.raw)

    def __len__(self) -> int:
        return len(self._raw)

    def get(self, ns: int) -> Any:
        raw = self._raw.get(ns)
        return None if raw is None else self.reader.deserialize(raw, self.msgtype, str(self.topic))


def depth_at(index: StampIndex, ns: int) -> np.ndarray | None:
    """float32 metres (NaN = none) of the depth frame stamped ``ns``, or None; BagError for bad depth."""
    msg = index.get(ns)
    if msg is None:
        return None
    try:
        return depth_to_metres(*depth_msg_to_numpy(msg)).metres
    except ImageError as err:
        raise BagError(f"depth on {index.topic}: {err}") from err


def grid_at(index: StampIndex, ns: int) -> np.ndarray | None:
    """int8 (rows, cols) of the truth OccupancyGrid stamped ``ns``, or None."""
    msg = index.get(ns)
    if msg is None:
        return None
    return np.asarray(msg.data, dtype=np.int8).reshape(int(msg.info.height), int(msg.info.width))


def positions_at(index: StampIndex, ns: int) -> list[TruthPosition] | None:
    """The true objects stamped ``ns`` (None: no truth for this frame)."""
    msg = index.get(ns)
    if msg is None:
        return None
    return [
        TruthPosition(
            str(m.ns),
            int(m.id),
            np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z]),
            np.array([m.scale.x, m.scale.y, m.scale.z]),
        )
        for m in msg.markers
        if int(m.action) == 0
    ]


__all__ = [
    "DEPTH_TOPIC",
    "MARKER_ARRAY",
    "OCCUPANCY_GRID",
    "PARAMS_FILE",
    "TRUTH_GRID_TOPIC",
    "TRUTH_OBJECTS_TOPIC",
    "RgbdExtras",
    "StampIndex",
    "TruthPosition",
    "depth_at",
    "depth_message",
    "find_depth_topic",
    "grid_at",
    "objects_message",
    "params_beside",
    "positions_at",
    "write_params",
]
