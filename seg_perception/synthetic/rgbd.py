"""Exact synthetic RGB-D: REP-118 depth images of rendered scenes, and a small tabletop scene.

``optical_depth`` turns a rendered scene's hit points into the depth an RGB-D camera
registered to the colour image reports: the z coordinate in the camera optical frame
(not the ray length), metres, NaN where the ray hits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.synthetic.street import (
    BICYCLIST,
    CAR,
    FENCE,
    PEDESTRIAN,
    Box,
    Cylinder,
    StreetWorld,
    SyntheticScene,
    render,
)

__all__ = ["optical_depth", "depth_mm", "tabletop_world", "render_tabletop", "TABLETOP_OBJECTS", "Ramp"]

#: name -> primitive index in ``tabletop_world().primitives`` (the table is 0)
TABLETOP_OBJECTS = {"table": 0, "box": 1, "cup": 2, "bottle": 3}


@dataclass(frozen=True)
class Ramp:
    """A ramp rising along x: the surface z = rise (x - x0) / (x1 - x0) over [x0, x1] x [y0, y1], metres."""

    x0: float
    x1: float
    y0: float
    y1: float
    rise: float
    label: int
    color: tuple[int, int, int]

    def height(self, x: np.ndarray) -> np.ndarray:
        """Surface height (metres) at grid x (clipped to the ramp's span)."""
        return self.rise * (np.clip(x, self.x0, self.x1) - self.x0) / (self.x1 - self.x0)

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance (inf for a miss) and surface normal of rays o + t d with the ramp's top."""
        s = self.rise / (self.x1 - self.x0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (s * (o[0] - self.x0) - o[2]) / (d[..., 2] - s * d[..., 0])
            x = o[0] + t * d[..., 0]
            y = o[1] + t * d[..., 1]
            ok = np.isfinite(t) & (t > 1e-6) & (x >= self.x0) & (x <= self.x1) & (y >= self.y0) & (y <= self.y1)
        normal = np.broadcast_to(np.array([-s, 0.0, 1.0]) / np.hypot(s, 1.0), d.shape)
        return np.where(ok, t, np.inf), normal


def optical_depth(scene: SyntheticScene) -> np.ndarray:
    """float32 H x W depth (optical z, metres) of ``scene``; NaN where nothing was hit."""
    rel = scene.points - scene.pose.position  # grid frame, NaN for sky
    z = rel @ scene.pose.rotation_optical[:, 2]  # optical z axis expressed in the grid frame
    return np.where(np.isfinite(z) & (z > 0), z, np.nan).astype(np.float32)


def depth_mm(depth_m: np.ndarray) -> np.ndarray:
    """``16UC1`` millimetres of a metres image (0 = no reading), as a camera driver publishes."""
    mm = np.where(np.isfinite(depth_m), np.round(depth_m * 1000.0), 0)
    return np.clip(mm, 0, 65535).astype(np.uint16)


def tabletop_world(table_x: float = 1.0) -> StreetWorld:
    """A table (0.7 m high) with a box, a cup and a bottle on it, on a lawn (VOID ground).

    Labels reuse CamVid ids (table FENCE, box CAR, cup PEDESTRIAN, bottle BICYCLIST) so the
    scene runs through the same tools; only the masks matter for positions.
    """
    top = 0.70
    prims = [
        Box((table_x - 0.45, -0.6, 0.0), (table_x + 0.45, 0.6, top), FENCE, (150, 110, 70)),
        Box((table_x - 0.15, 0.20, top), (table_x + 0.05, 0.40, top + 0.15), CAR, (200, 60, 50)),
        Cylinder(table_x - 0.05, -0.05, 0.04, top, top + 0.10, PEDESTRIAN, (230, 230, 220)),
        Cylinder(table_x + 0.10, -0.30, 0.035, top, top + 0.25, BICYCLIST, (40, 120, 60)),
    ]
    return StreetWorld(road_half_width=0.0, sidewalk_width=0.0, primitives=prims)


def render_tabletop(
    height: int = 240, width: int = 320, pose: CameraPose | None = None, hfov_deg: float = 69.0, seed: int = 0
) -> SyntheticScene:
    """The tabletop seen from a manipulator's head camera (1.3 m high, looking down 0.6 rad)."""
    intr = CameraIntrinsics.from_fov(width, height, hfov_deg)
    return render(tabletop_world(), intr, pose or CameraPose((0.0, 0.0, 1.3), (0.0, 0.6, 0.0)), seed)
