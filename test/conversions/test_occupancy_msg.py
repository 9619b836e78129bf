"""numpy grid <-> nav_msgs/OccupancyGrid and obstacle scan -> sensor_msgs/LaserScan, with the real
message classes (and their serialization) from the environment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.conversions.occupancy import grid_to_msg, msg_to_grid, ranges_to_scan_msg, scan_msg_to_ranges
from seg_perception.errors import GeometryError
from seg_perception.geometry.grid_spec import OCCUPIED, UNKNOWN, GridSpec
from seg_perception.geometry.scan import ScanSpec

nav_msgs = pytest.importorskip("nav_msgs.msg")
sensor_msgs = pytest.importorskip("sensor_msgs.msg")

SPEC = GridSpec("base_link", 0.25, -1.0, 4.0, -2.0, 1.0, 5.0)  # 20 cols x 12 rows


def marked_grid():
    g = np.full(SPEC.shape, UNKNOWN, np.int8)
    g[:, :10] = 0
    # One occupied cell at a known place: x = 2.1 m, y = 0.6 m -> col 12, row 10.
    g[SPEC.cell_index(2.1, 0.6) // SPEC.width, SPEC.cell_index(2.1, 0.6) % SPEC.width] = OCCUPIED
    return g


def test_grid_metadata_and_row_major_layout():
    g = marked_grid()
    msg = grid_to_msg(g, SPEC, stamp=(12, 345))
    assert isinstance(msg, nav_msgs.OccupancyGrid)
    assert msg.header.frame_id == "base_link" and (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)
    info = msg.info
    assert (info.width, info.height) == (20, 12) and info.resolution == pytest.approx(0.25)
    assert (info.origin.position.x, info.origin.position.y) == (-1.0, -2.0)
    assert info.origin.orientation.w == 1.0 and info.origin.orientation.z == 0.0
    data = np.array(msg.data, dtype=np.int8)
    k = int(np.flatnonzero(data == OCCUPIED)[0])
    row, col = divmod(k, info.width)  # nav_msgs: data[row * width + col]
    # The cell's centre from the message's own metadata is the marked point's cell.
    x = info.origin.position.x + (col + 0.5) * info.resolution
    y = info.origin.position.y + (row + 0.5) * info.resolution
    assert abs(x - 2.1) <= info.resolution / 2 and abs(y - 0.6) <= info.resolution / 2
    assert (row, col) == (10, 12)


def test_round_trip_through_serialization():
    serialization = pytest.importorskip("rclpy.serialization")
    g = marked_grid()
    msg = grid_to_msg(g, SPEC, stamp=3.25)
    raw = serialization.serialize_message(msg)
    back = serialization.deserialize_message(raw, nav_msgs.OccupancyGrid)
    grid, meta = msg_to_grid(back)
    assert np.array_equal(grid, g) and grid.dtype == np.int8
    assert meta.stamp == (3, 250_000_000)
    assert meta.to_grid_spec(max_range=5.0) == SPEC


def test_reads_duck_typed_messages_with_numpy_data():
    class Obj:
        pass

    msg = grid_to_msg(marked_grid(), SPEC)
    duck = Obj()
    duck.header, duck.info = msg.header, msg.info
    duck.data = np.array(msg.data, dtype=np.int8)  # as rosbags stores int8[]
    grid, meta = msg_to_grid(duck)
    assert np.array_equal(grid, marked_grid()) and meta.width == 20


def test_bad_grids_raise():
    with pytest.raises(GeometryError):
        grid_to_msg(np.zeros((3, 3), np.int8), SPEC)
    with pytest.raises(GeometryError):
        grid_to_msg(np.full(SPEC.shape, 101, np.int16), SPEC)
    ok = grid_to_msg(np.full(SPEC.shape, 100, np.int16), SPEC)
    assert set(ok.data) == {100}
    msg = grid_to_msg(marked_grid(), SPEC)
    msg.info.width = 19
    with pytest.raises(GeometryError):
        msg_to_grid(msg)
    with pytest.raises(GeometryError):
        msg_to_grid(object())


def test_laser_scan_fields_and_special_values():
    spec = ScanSpec(angle_min=-0.5, angle_increment=0.01, n_beams=101, range_min=0.0, range_max=9.5, clear_range=8.0)
    ranges = np.full(101, np.nan, np.float32)
    ranges[10:20] = np.inf
    ranges[50] = 3.25
    msg = ranges_to_scan_msg(ranges, spec, "base_link", stamp=(1, 2))
    assert isinstance(msg, sensor_msgs.LaserScan)
    assert msg.header.frame_id == "base_link"
    assert msg.angle_max == pytest.approx(0.5) and msg.angle_increment == pytest.approx(0.01)
    assert (msg.range_min, msg.range_max) == (0.0, pytest.approx(9.5))
    serialization = pytest.importorskip("rclpy.serialization")
    back = serialization.deserialize_message(serialization.serialize_message(msg), sensor_msgs.LaserScan)
    r, a = scan_msg_to_ranges(back)
    assert np.isnan(r[0]) and np.isposinf(r[15]) and r[50] == pytest.approx(3.25)
    assert a[50] == pytest.approx(0.0, abs=1e-6) and len(a) == 101  # float32 fields
    with pytest.raises(GeometryError):
        ranges_to_scan_msg(ranges[:10], spec, "base_link")


@pytest.mark.parametrize("stamp", [(5, 6), 5.000000006, None])
def test_stamp_forms(stamp):
    from builtin_interfaces.msg import Time

    msg = grid_to_msg(marked_grid(), SPEC, stamp=stamp)
    expect = (0, 0) if stamp is None else (5, 6)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == expect
    msg2 = grid_to_msg(marked_grid(), SPEC, stamp=Time(sec=7, nanosec=8))
    assert msg2.info.map_load_time.sec == 7
    hdr = msg2.header
    msg3 = grid_to_msg(marked_grid(), SPEC, header=hdr)
    assert msg3.header.stamp.sec == 7 and math.isclose(msg3.info.resolution, 0.25)
