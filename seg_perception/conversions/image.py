"""sensor_msgs/Image and sensor_msgs/CompressedImage <-> numpy.

This module owns encodings, ``step`` (row stride, bytes) and channel order. The
functions are duck-typed: they read ``height``, ``width``, ``encoding``, ``step``,
``data`` (Image) or ``format``, ``data`` (CompressedImage) from any object, so they
serve rclpy messages and ``rosbags`` message dataclasses alike. The results are
identical to cv_bridge's ``imgmsg_to_cv2`` / ``cv2_to_imgmsg`` /
``compressed_imgmsg_to_cv2`` for the 8-bit encodings below (tested).

Why not call cv_bridge: ROS 2's cv_bridge is a compiled package absent from PyPI (and
from the self-contained environment), and the node needs only these copies with
strict validation of ``step``/``data`` sizes that cv_bridge does not perform.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from seg_perception.conversions.buffers import byte_array
from seg_perception.errors import ImageError

#: encoding -> number of 8-bit channels
ENCODINGS: dict[str, int] = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC1": 1, "8UC3": 3, "8UC4": 4}
#: encodings the node accepts as camera input
INPUT_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
_TO_RGB = {
    "rgb8": None,
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
}
MAX_SIDE = 16384  # refuse absurd sizes before allocating


def _buffer(data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(memoryview(data), dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_msg_to_numpy(msg: Any) -> np.ndarray:
    """The pixels of an Image message in its own encoding: HxW (1 channel) or HxWxC uint8.

    Padded rows (``step`` > width x channels) are cropped. Raises ImageError for an
    unsupported encoding, an inconsistent ``step``, or ``data`` shorter than
    ``height x step``. The result may share memory with the message data.
    """
    height, width, step, encoding, data = _image_fields(msg)
    if encoding not in ENCODINGS:
        raise ImageError(f"unsupported encoding '{encoding}' (supported: {', '.join(INPUT_ENCODINGS)})")
    channels = ENCODINGS[encoding]
    arr = _pixel_rows(height, width, step, data, (width * channels, "width x channels"), encoding, "image")
    return arr.reshape(height, width) if channels == 1 else arr.reshape(height, width, channels)


def _image_fields(msg: Any) -> tuple[int, int, int, str, Any]:
    """(height, width, step, encoding, data) of a sensor_msgs/Image-like object."""
    try:
        return int(msg.height), int(msg.width), int(msg.step), str(msg.encoding), msg.data
    except (AttributeError, TypeError, ValueError) as err:
        raise ImageError(f"not an Image message: {err}") from err


def _pixel_rows(
    height: int, width: int, step: int, data: Any, row: tuple[int, str], encoding: str, what: str
) -> np.ndarray:
    """The (height, row) uint8 pixel bytes of ``data`` (rows of ``step`` bytes, padding cropped).

    ``row`` is (bytes of pixels per row, how they are counted, for the error on a short ``step``);
    ``what`` names the image in the error on a bad size.
    """
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise ImageError(f"invalid {what} size {width}x{height}")
    row_bytes, row_name = row
    if step < row_bytes:
        raise ImageError(f"step {step} is smaller than {row_name} = {row_bytes} for {encoding}")
    buf = _buffer(data)
    # The last row needs only `row_bytes` bytes, but a well-formed message carries height x step.
    if buf.size < height * step:
        raise ImageError(f"data has {buf.size} bytes, expected height x step = {height * step}")
    return buf[: height * step].reshape(height, step)[:, :row_bytes]


def to_rgb(arr: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an image in ``encoding`` (see INPUT_ENCODINGS) to contiguous HxWx3 uint8 RGB."""
    if encoding not in _TO_RGB:
        raise ImageError(f"cannot convert encoding '{encoding}' to RGB (supported: {', '.join(INPUT_ENCODINGS)})")
    code = _TO_RGB[encoding]
    if code is None:
        return np.ascontiguousarray(arr)
    return cv2.cvtColor(np.ascontiguousarray(arr), code)


def image_msg_to_rgb(msg: Any) -> np.ndarray:
    """An Image message (rgb8, bgr8, rgba8, bgra8, mono8) as contiguous HxWx3 uint8 RGB."""
    encoding = str(getattr(msg, "encoding", ""))
    if encoding not in INPUT_ENCODINGS:
        raise ImageError(f"unsupported encoding '{encoding}' (supported: {', '.join(INPUT_ENCODINGS)})")
    return to_rgb(image_msg_to_numpy(msg), encoding)


def compressed_msg_to_numpy(msg: Any) -> np.ndarray:
    """Decode a CompressedImage (jpeg, png) like cv_bridge: BGR HxWx3, or HxW for grey images."""
    try:
        buf = _buffer(msg.data)
        fmt = str(msg.format)
    except (AttributeError, TypeError, ValueError) as err:
        raise ImageError(f"not a CompressedImage message: {err}") from err
    if buf.size == 0:
        raise ImageError(f"compressed image ({fmt or 'no format'}) has no data")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"cannot decode compressed image (format '{fmt}', {buf.size} bytes)")
    if img.dtype != np.uint8:
        raise ImageError(f"compressed image decodes to {img.dtype}; only 8-bit images are supported")
    return img


def compressed_msg_to_rgb(msg: Any) -> np.ndarray:
    """Decode a CompressedImage (jpeg, png) to contiguous HxWx3 uint8 RGB."""
    img = compressed_msg_to_numpy(msg)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def any_image_msg_to_rgb(msg: Any) -> np.ndarray:
    """Image or CompressedImage (told apart by the ``format`` field) to HxWx3 uint8 RGB."""
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return compressed_msg_to_rgb(msg)
    return image_msg_to_rgb(msg)


def copy_header(dst: Any, src: Any) -> None:
    """Copy stamp and frame_id from header ``src`` into header ``dst`` (field by field, any message flavour)."""
    dst.stamp.sec = int(src.stamp.sec)
    dst.stamp.nanosec = int(src.stamp.nanosec)
    dst.frame_id = str(src.frame_id)


def image_fields(arr: np.ndarray, encoding: str) -> dict[str, Any]:
    """Image message fields (height, width, encoding, is_bigendian, step, data) for ``arr``, rows unpadded.

    ``data`` is a 1-D uint8 numpy array (what rosbags' message classes take); ``arr``
    is HxW or HxWxC uint8 matching ``encoding``.
    """
    if encoding not in ENCODINGS:
        raise ImageError(f"unsupported encoding '{encoding}'")
    channels = ENCODINGS[encoding]
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        raise ImageError(f"{encoding} needs uint8 pixels, got {arr.dtype}")
    if arr.ndim == 3 and channels == 1 and arr.shape[2] == 1:
        arr = arr[..., 0]
    expected_ndim = 2 if channels == 1 else 3
    if arr.ndim != expected_ndim or (channels > 1 and arr.shape[2] != channels):
        raise ImageError(f"{encoding} needs {'HxW' if channels == 1 else f'HxWx{channels}'} pixels, got {arr.shape}")
    return {
        "height": int(arr.shape[0]),
        "width": int(arr.shape[1]),
        "encoding": encoding,
        "is_bigendian": 0,
        "step": int(arr.shape[1] * channels),
        "data": np.ascontiguousarray(arr).reshape(-1),
    }


def numpy_to_image_msg(arr: np.ndarray, encoding: str, header: Any = None, *, msg_cls: type) -> Any:
    """A ``msg_cls`` (a sensor_msgs/Image class, any flavour) holding ``arr`` in ``encoding``.

    ``header``'s stamp and frame_id are copied; ``msg_cls`` must be constructible with
    no arguments (rclpy's ``sensor_msgs.msg.Image`` is). The class is passed in so this
    module never imports a ROS package.
    """
    fields = image_fields(arr, encoding)
    msg = msg_cls()
    for key in ("height", "width", "encoding", "is_bigendian", "step"):
        setattr(msg, key, fields[key])
    msg.data = byte_array(fields["data"])
    if header is not None:
        copy_header(msg.header, header)
    return msg


def encode_compressed(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> tuple[str, np.ndarray]:
    """Encode HxWx3 uint8 RGB as ``jpeg`` or ``png``: (format string, 1-D uint8 bytes)."""
    ext = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}.get(fmt)
    if ext is None:
        raise ImageError(f"compressed format must be jpeg or png, got {fmt!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageError(f"cannot encode image as {fmt}")
    return ("jpeg" if ext == ".jpg" else "png"), buf.reshape(-1)


def rgb_to_compressed_msg(
    rgb: np.ndarray, fmt: str = "jpeg", header: Any = None, *, msg_cls: type, quality: int = 90
) -> Any:
    """A ``msg_cls`` (a sensor_msgs/CompressedImage class) of HxWx3 uint8 RGB as ``jpeg`` or ``png``."""
    fmt_name, data = encode_compressed(rgb, fmt, quality)
    msg = msg_cls()
    msg.format = fmt_name
    msg.data = byte_array(data)
    if header is not None:
        copy_header(msg.header, header)
    return msg


#: depth encodings (REP-118) -> numpy dtype of one pixel
DEPTH_DTYPES: dict[str, np.dtype] = {
    "16UC1": np.dtype(np.uint16),
    "mono16": np.dtype(np.uint16),
    "32FC1": np.dtype(np.float32),
}


def depth_msg_to_numpy(msg: Any) -> tuple[np.ndarray, str]:
    """(H x W uint16 or float32 array in native byte order, encoding) of a depth Image message.

    Raises ImageError for another encoding (e.g. ``mono8`` on the depth topic), an
    inconsistent ``step`` or short ``data``. Values are as sent (millimetres or metres).
    """
    height, width, step, encoding, data = _image_fields(msg)
    try:
        bigendian = bool(msg.is_bigendian)
    except AttributeError as err:
        raise ImageError(f"not an Image message: {err}") from err
    if encoding not in DEPTH_DTYPES:
        raise ImageError(f"depth encoding '{encoding}' not supported (use 16UC1 millimetres or 32FC1 metres)")
    dtype = DEPTH_DTYPES[encoding].newbyteorder(">" if bigendian else "<")
    row = (width * dtype.itemsize, f"width x {dtype.itemsize} bytes")
    rows = _pixel_rows(height, width, step, data, row, encoding, "depth image")
    arr = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
    return arr.astype(DEPTH_DTYPES[encoding], copy=False), encoding


def depth_to_image_msg(arr: np.ndarray, encoding: str, header: Any = None, *, msg_cls: type) -> Any:
    """A ``msg_cls`` depth Image (``16UC1`` uint16 mm or ``32FC1`` float32 m, little-endian) of H x W ``arr``."""
    if encoding not in DEPTH_DTYPES:
        raise ImageError(f"depth encoding '{encoding}' not supported (use 16UC1 or 32FC1)")
    a = np.asarray(arr)
    if a.ndim != 2 or a.dtype != DEPTH_DTYPES[encoding]:
        raise ImageError(f"{encoding} needs H x W {DEPTH_DTYPES[encoding].name}, got {a.shape} {a.dtype}")
    msg = msg_cls()
    msg.height, msg.width, msg.encoding, msg.is_bigendian = int(a.shape[0]), int(a.shape[1]), encoding, 0
    msg.step = int(a.shape[1] * a.dtype.itemsize)
    msg.data = byte_array(np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"))).view(np.uint8).reshape(-1))
    if header is not None:
        copy_header(msg.header, header)
    return msg
