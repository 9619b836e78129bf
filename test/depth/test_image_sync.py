"""Depth decoding (REP-118), size matching and stamp synchronisation."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from seg_perception.depth.image import depth_to_metres, match_size
from seg_perception.depth.sync import DepthBuffer
from seg_perception.errors import ImageError


def test_16uc1_millimetres_and_32fc1_metres_with_invalid_readings() -> None:
    mm = np.array([[0, 1000], [1500, 65535]], np.uint16)
    d = depth_to_metres(mm, "16UC1")
    assert d.invalid == 1 and np.isnan(d.metres[0, 0])
    assert d.metres[0, 1] == pytest.approx(1.0) and d.metres[1, 1] == pytest.approx(65.535)
    m = np.array([[np.nan, -1.0, 0.0], [np.inf, 2.5, 0.3]], np.float32)
    f = depth_to_metres(m, "32FC1")
    assert f.invalid == 4 and f.metres[1, 1] == pytest.approx(2.5) and f.metres[1, 2] == pytest.approx(0.3)
    assert np.isnan(f.metres[0]).all() and np.isnan(f.metres[1, 0])


def test_wrong_encoding_or_dtype_is_refused_with_the_reason() -> None:
    with pytest.raises(ImageError, match="mono8"):
        depth_to_metres(np.zeros((2, 2), np.uint8), "mono8")
    with pytest.raises(ImageError, match="uint16"):
        depth_to_metres(np.zeros((2, 2), np.float32), "16UC1")
    with pytest.raises(ImageError, match="H x W"):
        depth_to_metres(np.zeros((2, 2, 3), np.float32), "32FC1")


def test_match_size_uses_nearest_neighbour_never_blending() -> None:
    src = np.array([[1.0, 5.0], [np.nan, 2.0]], np.float32)
    d = depth_to_metres(src, "32FC1")
    up = match_size(d, (4, 4))
    assert up.resized and up.metres.shape == (4, 4)
    assert set(np.unique(up.metres[np.isfinite(up.metres)])) <= {1.0, 5.0, 2.0}
    assert up.invalid == 4
    assert match_size(d, (2, 2)) is d


def test_sync_matches_within_slop_and_counts_misses() -> None:
    buf = DepthBuffer(slop_s=0.010, capacity=3)
    for k, stamp in enumerate((1_000_000_000, 1_033_000_000, 1_066_000_000)):
        buf.push(stamp, f"d{k}")
    assert buf.match(1_034_000_000) == "d1"  # 1 ms skew
    assert buf.match(1_050_000_000) is None  # 16 ms from the nearest: outside the slop
    buf.push(1_100_000_000, "d3")  # capacity 3: d0 is forgotten
    assert buf.match(1_000_000_000) is None
    assert (buf.matched, buf.unmatched) == (1, 2)


def test_sync_waits_briefly_for_a_depth_frame_still_in_flight() -> None:
    buf = DepthBuffer(slop_s=0.005)
    buf.push(0, "old")

    def late() -> None:
        time.sleep(0.05)
        buf.push(2_000_000_000, "late")

    t = threading.Thread(target=late)
    t.start()
    assert buf.match(2_001_000_000, wait_s=5.0) == "late"
    t.join()
    # a newer depth already there: no waiting for a match that cannot come
    t0 = time.monotonic()
    assert buf.match(1_000_000_000, wait_s=5.0) is None
    assert time.monotonic() - t0 < 1.0
