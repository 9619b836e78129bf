"""numpy arrays as the ``array.array`` that rclpy's array fields store without a per-element walk."""

from __future__ import annotations

import array

import numpy as np


def byte_array(arr: np.ndarray, typecode: str = "B") -> array.array:
    """``arr``'s bytes as an ``array.array`` (one memcpy, no per-element work).

    rclpy's generated setters for ``uint8[]``/``int8[]`` store an ``array.array`` of the
    right typecode as it is, but walk and range-check every element of ``bytes`` or a
    list (on Humble too), which costs milliseconds per camera frame.
    """
    out = array.array(typecode)
    out.frombytes(memoryview(np.ascontiguousarray(arr)).cast("B"))
    return out
