"""Intrinsics of the image that actually arrives, from its sensor_msgs/CameraInfo (REP-104).

* ``rectified=False`` (raw images): K and D of the message.
* ``rectified=True`` (``image_rect`` topics): the rectified camera, P's left 3x3 with zero
  distortion; applying D to an already rectified image would distort it a second time.
* ``roi`` (non-zero width and height): the image is that crop of the full sensor, so the
  principal point shifts by the offset and the size is the ROI's.
* ``binning_x``/``binning_y`` > 1: the image is the (cropped) sensor downsampled by those
  factors, applied after the ROI as REP-104 says.
"""

from __future__ import annotations

import numpy as np

from seg_perception.errors import GeometryError
from seg_perception.geometry.camera import CameraIntrinsics, intrinsics_from_camera_info_checked

__all__ = ["intrinsics_for_image"]


def intrinsics_for_image(msg: object, rectified: bool = False) -> CameraIntrinsics:
    """Intrinsics of the published image described by the CameraInfo-like ``msg`` (duck-typed).

    Raises:
        GeometryError: unusable K/D (see ``intrinsics_from_camera_info_checked``), an empty P
            when ``rectified``, or an ROI outside the sensor.
    """
    base = intrinsics_from_camera_info_checked(msg)
    k, d = base.k.copy(), base.d
    if rectified:
        p = np.asarray(getattr(msg, "p", ()), dtype=np.float64).ravel()  # rclpy gives an ndarray: no `or`
        if p.size != 12 or not np.all(np.isfinite(p)) or p[0] <= 0 or p[5] <= 0:
            raise GeometryError("image_rectified is set but camera_info.p is empty or invalid (fx', fy' must be > 0)")
        p = p.reshape(3, 4)
        k = p[:, :3].copy()
        d = np.zeros(0)
    width, height = base.width, base.height
    roi = getattr(msg, "roi", None)
    rw, rh = (int(getattr(roi, "width", 0) or 0), int(getattr(roi, "height", 0) or 0)) if roi is not None else (0, 0)
    if rw > 0 and rh > 0:
        x0, y0 = int(roi.x_offset), int(roi.y_offset)  # type: ignore[union-attr]
        if x0 < 0 or y0 < 0 or x0 + rw > width or y0 + rh > height:
            raise GeometryError(f"camera_info roi {rw}x{rh}+{x0}+{y0} lies outside the {width}x{height} sensor")
        k[0, 2] -= x0
        k[1, 2] -= y0
        width, height = rw, rh
    bx = max(1, int(getattr(msg, "binning_x", 0) or 0))
    by = max(1, int(getattr(msg, "binning_y", 0) or 0))
    intrinsics = CameraIntrinsics(width, height, k, d)
    if bx > 1 or by > 1:
        intrinsics = intrinsics.scaled(width // bx, height // by)
    return intrinsics
