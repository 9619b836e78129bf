"""PointCloud2 and depth Image conversions: round trips, serialized over rclpy, layout checks."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, PointCloud2, PointField

from seg_perception.conversions.image import depth_msg_to_numpy, depth_to_image_msg
from seg_perception.conversions.pointcloud import cloud_msg_to_numpy, points_to_cloud_msg
from seg_perception.errors import ImageError


@pytest.mark.parametrize("with_rgb", [False, True])
def test_cloud_round_trip_through_serialization(with_rgb: bool) -> None:
    rng = np.random.default_rng(0)
    xyz = rng.normal(0, 2, (257, 3)).astype(np.float32)
    label = rng.integers(0, 11, 257).astype(np.uint8)
    rgb = rng.integers(0, 256, (257, 3)).astype(np.uint8) if with_rgb else None
    header = Image().header
    header.stamp.sec, header.stamp.nanosec, header.frame_id = 12, 34, "camera_color_optical_frame"
    msg = points_to_cloud_msg(xyz, label, header, rgb, msg_cls=PointCloud2, field_cls=PointField)
    assert msg.point_step == (20 if with_rgb else 16) and msg.row_step == msg.point_step * 257
    assert [f.name for f in msg.fields] == ["x", "y", "z", "label"] + (["rgb"] if with_rgb else [])
    back = deserialize_message(serialize_message(msg), PointCloud2)
    assert (back.header.stamp.sec, back.header.stamp.nanosec, back.header.frame_id) == (12, 34,
                                                                                       "camera_color_optical_frame")
    got = cloud_msg_to_numpy(back)
    np.testing.assert_array_equal(np.stack([got["x"], got["y"], got["z"]], 1), xyz)
    np.testing.assert_array_equal(got["label"], label)
    if with_rgb:
        packed = got["rgb"]
        np.testing.assert_array_equal(np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], 1), rgb)


def test_cloud_reader_follows_offsets_and_refuses_bad_layouts() -> None:
    msg = points_to_cloud_msg(np.ones((3, 3)), np.array([1, 2, 3]), msg_cls=PointCloud2, field_cls=PointField)
    msg.fields[3].offset = 15  # label would straddle point_step 16: fine (1 byte) ...
    assert cloud_msg_to_numpy(msg)["label"].tolist() == [0, 0, 0]
    msg.fields[0].offset = 14  # ... a float32 at 14 does not fit
    with pytest.raises(ImageError, match="does not fit"):
        cloud_msg_to_numpy(msg)
    short = points_to_cloud_msg(np.ones((3, 3)), np.zeros(3), msg_cls=PointCloud2, field_cls=PointField)
    short.width = 4
    with pytest.raises(ImageError, match="bytes"):
        cloud_msg_to_numpy(short)
    with pytest.raises(ImageError, match="labels"):
        points_to_cloud_msg(np.ones((3, 3)), np.zeros(2), msg_cls=PointCloud2, field_cls=PointField)


@pytest.mark.parametrize(("encoding", "dtype"), [("16UC1", np.uint16), ("32FC1", np.float32)])
def test_depth_image_round_trip(encoding: str, dtype: type) -> None:
    arr = (np.arange(12).reshape(3, 4) * 7).astype(dtype)
    msg = depth_to_image_msg(arr, encoding, msg_cls=Image)
    back, enc = depth_msg_to_numpy(deserialize_message(serialize_message(msg), Image))
    assert enc == encoding and back.dtype == dtype
    np.testing.assert_array_equal(back, arr)


def test_depth_big_endian_padded_rows_and_bad_encodings() -> None:
    arr = np.array([[1, 2], [300, 65535]], np.uint16)
    msg = Image(height=2, width=2, encoding="16UC1", is_bigendian=1, step=6)
    msg.data = np.concatenate([np.r_[arr[0].astype(">u2").view(np.uint8), 0, 0],
                               np.r_[arr[1].astype(">u2").view(np.uint8), 0, 0]]).astype(np.uint8).tobytes()
    back, _ = depth_msg_to_numpy(msg)
    np.testing.assert_array_equal(back, arr)
    with pytest.raises(ImageError, match="mono8"):
        depth_msg_to_numpy(Image(height=2, width=2, encoding="mono8", step=2, data=bytes(4)))
    with pytest.raises(ImageError, match="bytes"):
        depth_msg_to_numpy(Image(height=2, width=2, encoding="32FC1", step=8, data=bytes(8)))
