"""Message data handed to rclpy as array.array: same bytes on the wire as the old ``bytes`` path."""

from __future__ import annotations

import array

import numpy as np
import pytest

from seg_perception.conversions.buffers import byte_array
from seg_perception.conversions.image import image_msg_to_numpy, numpy_to_image_msg


def test_byte_array_holds_the_same_bytes_for_each_typecode() -> None:
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    assert byte_array(u8).tobytes() == u8.tobytes()
    i8 = rng.integers(-1, 101, (4, 6), dtype=np.int8)
    out = byte_array(i8, "b")
    assert out.typecode == "b" and out.tobytes() == i8.tobytes()
    f32 = rng.standard_normal(9).astype(np.float32)
    assert np.array_equal(np.frombuffer(byte_array(f32, "f"), np.float32), f32)
    # A non-contiguous view is made contiguous first.
    assert byte_array(u8[:, ::2]).tobytes() == np.ascontiguousarray(u8[:, ::2]).tobytes()


def test_rclpy_image_serializes_identically_to_the_bytes_path() -> None:
    pytest.importorskip("rclpy")
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    new = numpy_to_image_msg(rgb, "rgb8", msg_cls=Image)
    assert isinstance(new.data, array.array) and new.data.typecode == "B"
    old = Image(height=48, width=64, encoding="rgb8", is_bigendian=0, step=64 * 3)
    old.data = rgb.tobytes()
    wire_new, wire_old = serialize_message(new), serialize_message(old)
    # Same length, and the same pixel bytes at the end (CDR alignment padding is not initialised).
    assert len(wire_new) == len(wire_old) and wire_new[-rgb.size :] == wire_old[-rgb.size :] == rgb.tobytes()
    back = deserialize_message(wire_new, Image)
    assert (back.height, back.width, back.encoding, back.step) == (48, 64, "rgb8", 192)
    assert np.array_equal(image_msg_to_numpy(back), rgb)
