"""Labelled points <-> sensor_msgs/PointCloud2.

Layout written (little-endian, unorganised: height 1, width N, dense):

=========  ======  =======  ==============================================
field      offset  type     meaning
=========  ======  =======  ==============================================
x, y, z    0/4/8   FLOAT32  metres, camera optical frame (REP-103)
label      12      UINT8    class id of the pixel
rgb        16      FLOAT32  optional; 0x00RRGGBB bits as a float (PCL style)
=========  ======  =======  ==============================================

``point_step`` is 16 (20 with rgb). Duck-typed: the message and PointField classes are
passed in, so rclpy messages and rosbags' dataclasses both work; reading goes through
field names, offsets and datatypes, so clouds from other producers read too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seg_perception.conversions.buffers import byte_array
from seg_perception.conversions.image import copy_header
from seg_perception.errors import ImageError

__all__ = ["POINTFIELD_DTYPES", "points_to_cloud_msg", "cloud_msg_to_numpy"]

#: sensor_msgs/PointField datatype constants -> numpy dtype
POINTFIELD_DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.int8),
    2: np.dtype(np.uint8),
    3: np.dtype(np.int16),
    4: np.dtype(np.uint16),
    5: np.dtype(np.int32),
    6: np.dtype(np.uint32),
    7: np.dtype(np.float32),
    8: np.dtype(np.float64),
}
_FLOAT32, _UINT8 = 7, 2


def _layout(with_rgb: bool) -> np.dtype:
    names = ["x", "y", "z", "label"] + (["rgb"] if with_rgb else [])
    formats = ["<f4", "<f4", "<f4", "u1"] + (["<u4"] if with_rgb else [])
    offsets = [0, 4, 8, 12] + ([16] if with_rgb else [])
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": 20 if with_rgb else 16})


def points_to_cloud_msg(
    xyz: np.ndarray,
    label: np.ndarray,
    header: Any = None,
    rgb: np.ndarray | None = None,
    *,
    msg_cls: type,
    field_cls: type,
) -> Any:
    """A PointCloud2 of N points: ``xyz`` float N x 3 metres, ``label`` uint8 N, optional ``rgb`` uint8 N x 3.

    Raises:
        ImageError: lengths disagree.
    """
    pts = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    lab = np.asarray(label, dtype=np.uint8).ravel()
    if lab.size != len(pts) or (rgb is not None and len(rgb) != len(pts)):
        raise ImageError(
            f"point cloud: {len(pts)} points but {lab.size} labels"
            + ("" if rgb is None else f" and {len(rgb)} colours")
        )
    layout = _layout(rgb is not None)
    rec = np.zeros(len(pts), dtype=layout)
    rec["x"], rec["y"], rec["z"], rec["label"] = pts[:, 0], pts[:, 1], pts[:, 2], lab
    if rgb is not None:
        c = np.asarray(rgb, dtype=np.uint32).reshape(-1, 3)
        rec["rgb"] = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    msg = msg_cls()
    fields = []
    for name in layout.names:
        f = field_cls()
        f.name, f.offset = name, int(layout.fields[name][1])
        f.datatype = _UINT8 if name == "label" else _FLOAT32
        f.count = 1
        fields.append(f)
    msg.fields = fields
    msg.height, msg.width = 1, len(pts)
    msg.is_bigendian, msg.is_dense = False, True
    msg.point_step, msg.row_step = layout.itemsize, layout.itemsize * len(pts)
    msg.data = byte_array(rec.view(np.uint8).reshape(-1))
    if header is not None:
        copy_header(msg.header, header)
    return msg


def cloud_msg_to_numpy(msg: Any) -> dict[str, np.ndarray]:
    """Every field of a PointCloud2 as a 1-D array of ``height x width`` values (``rgb`` as uint32 bits).

    Raises:
        ImageError: malformed layout (unknown datatype, fields outside ``point_step``, short data).
    """
    try:
        n = int(msg.height) * int(msg.width)
        step, bigendian = int(msg.point_step), bool(msg.is_bigendian)
        specs = [(str(f.name), int(f.offset), int(f.datatype), int(f.count)) for f in msg.fields]
        data = msg.data
    except (AttributeError, TypeError, ValueError) as err:
        raise ImageError(f"not a PointCloud2 message: {err}") from err
    order = ">" if bigendian else "<"
    names, formats, offsets = [], [], []
    for name, offset, datatype, count in specs:
        if datatype not in POINTFIELD_DTYPES:
            raise ImageError(f"point field {name!r} has unknown datatype {datatype}")
        dt = POINTFIELD_DTYPES[datatype].newbyteorder(order)
        if name == "rgb" and datatype == _FLOAT32:
            dt = np.dtype(np.uint32).newbyteorder(order)  # packed colour bits, not a number
        if offset + dt.itemsize * max(count, 1) > step:
            raise ImageError(f"point field {name!r} at offset {offset} does not fit point_step {step}")
        names.append(name)
        formats.append((dt, (count,)) if count > 1 else dt)
        offsets.append(offset)
    layout = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": step})
    buf = np.frombuffer(memoryview(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    if buf.size < n * step:
        raise ImageError(f"point cloud data has {buf.size} bytes, expected {n} x {step}")
    rec = buf[: n * step].view(layout)
    return {
        name: np.ascontiguousarray(rec[name]).astype(rec[name].dtype.newbyteorder("="), copy=False) for name in names
    }
