"""Random street scenes with obstacles placed where a given camera sees them, for the occupancy tests."""

from __future__ import annotations

import numpy as np

from oracles.occupancy_truth import in_image, to_optical
from oracles.solids import footprint_boundary
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.geometry.grid_spec import GridSpec
from seg_perception.synthetic.street import (
    BICYCLIST,
    CAR,
    FENCE,
    PEDESTRIAN,
    POLE,
    SIGN,
    TREE,
    Box,
    Cylinder,
    Primitive,
    Sphere,
    StreetWorld,
)

_EDGE_ON_MARGIN = 0.4  # obstacle_course keeps box faces at least this far (metres) out of line with the camera


def _framed(intrinsics: CameraIntrinsics, pose: CameraPose, prim: Primitive) -> bool:
    """Whether no part of the primitive's footprint lies below the image bottom (cut off by the view).

    An obstacle cut by the image bottom can only be reported at the near edge of the view
    (it is at least that close): a separate case, kept out of the exact-geometry scenes.
    """
    fb = footprint_boundary(prim, 0.05)
    if fb is None:
        return True
    p = np.concatenate([fb[0], np.zeros((len(fb[0]), 1))], axis=1)
    p_opt = to_optical(pose, p)
    if np.any(p_opt[:, 2] <= 1e-6):
        return False
    uv = intrinsics.project(p_opt)
    across = (uv[:, 0] >= -0.5) & (uv[:, 0] <= intrinsics.width - 0.5)
    return not np.any(across & (uv[:, 1] > intrinsics.height - 0.5))


def obstacle_course(
    seed: int,
    intrinsics: CameraIntrinsics,
    pose: CameraPose,
    grid: GridSpec,
    n_obstacles: int | None = None,
    occluders: bool = True,
) -> StreetWorld:
    """A street with obstacles placed where the camera sees them: a scene for occupancy tests.

    Cars, pedestrians, poles, a cyclist and a fence segment (``n_obstacles``, default one
    per 10 m^2 of range disk area, 2 to 6) stand at random ground points between 0.3 and
    0.9 of ``grid.max_range`` from the camera that project into the image, with no part of
    their footprint below the image bottom and no box face in line with the camera;
    with ``occluders``, a tree (TREE trunk and crown) and a road sign on a thin post (SIGN)
    add occlusion by classes that are usually neither drivable nor obstacle. Deterministic
    for a given seed and camera.
    """
    rng = np.random.default_rng(seed)
    cam = pose.position
    if n_obstacles is None:
        n_obstacles = int(np.clip(round(grid.max_range**2 / 10.0), 2, 6))
    world = StreetWorld(
        road_half_width=float(rng.uniform(2.5, 5.0)),
        road_center=float(cam[1] + rng.uniform(-1.0, 1.0)),
        sidewalk_width=float(rng.uniform(1.5, 3.0)),
    )
    # Candidate stand points: in range, in the grid and in view.
    r = grid.max_range * np.sqrt(rng.uniform(0.09, 0.81, 4000))
    yaw = pose.rpy[2]
    a = yaw + rng.uniform(-np.pi / 2, np.pi / 2, 4000)
    pts = np.stack([cam[0] + r * np.cos(a), cam[1] + r * np.sin(a)], axis=1)
    ok = (grid.cell_index(pts[:, 0], pts[:, 1]) >= 0) & in_image(intrinsics, pose, pts)
    pts = pts[ok]
    placed: list[tuple[float, float, float]] = []  # (x, y, radius) of placed footprints
    prims: list[Primitive] = []
    kinds = [CAR, PEDESTRIAN, POLE, CAR, BICYCLIST, FENCE, PEDESTRIAN, POLE, CAR]
    for i in range(n_obstacles):
        kind = kinds[i % len(kinds)]
        for x, y in pts[rng.permutation(len(pts))[:50]]:
            if kind == CAR:
                ln, wd, ht = rng.uniform(3.8, 4.6), rng.uniform(1.6, 1.9), rng.uniform(1.3, 1.6)
                prim: Primitive = Box((x, y - wd / 2, 0.0), (x + ln, y + wd / 2, ht), CAR, (180, 40, 40))
                cx, cy, rad = x + ln / 2, y, 0.5 * np.hypot(ln, wd)
            elif kind == BICYCLIST:
                prim = Box((x, y - 0.25, 0.0), (x + 1.7, y + 0.25, 1.75), BICYCLIST, (40, 60, 150))
                cx, cy, rad = x + 0.85, y, 0.9
            elif kind == FENCE:
                ln = rng.uniform(2.0, 5.0)
                prim = Box((x, y, 0.0), (x + ln, y + 0.08, 1.1), FENCE, (120, 100, 70))
                cx, cy, rad = x + ln / 2, y, ln / 2
            elif kind == PEDESTRIAN:
                prim = Cylinder(x, y, 0.25, 0.0, float(rng.uniform(1.5, 1.9)), PEDESTRIAN, (200, 180, 60))
                cx, cy, rad = x, y, 0.25
            else:
                prim = Cylinder(x, y, 0.08, 0.0, float(rng.uniform(3.0, 5.0)), POLE, (110, 110, 115))
                cx, cy, rad = x, y, 0.08
            if np.hypot(cx - cam[0], cy - cam[1]) < rad + 0.5:
                continue
            if not _framed(intrinsics, pose, prim):
                continue
            if isinstance(prim, Box) and (
                min(abs(cam[0] - prim.lo[0]), abs(cam[0] - prim.hi[0])) < _EDGE_ON_MARGIN
                or min(abs(cam[1] - prim.lo[1]), abs(cam[1] - prim.hi[1])) < _EDGE_ON_MARGIN
            ):
                # A face in line with the camera is seen edge-on: no image evidence of it at all.
                continue
            if all(np.hypot(cx - px, cy - py) > rad + pr + 0.3 for px, py, pr in placed):
                placed.append((cx, cy, rad))
                prims.append(prim)
                break
    if occluders and len(pts):
        for x, y in pts[rng.permutation(len(pts))[:50]]:
            if all(np.hypot(x - px, y - py) > pr + 2.5 for px, py, pr in placed):
                h = float(rng.uniform(1.8, 2.6))
                prims.append(Cylinder(float(x), float(y), 0.15, 0.0, h, TREE, (85, 60, 40)))
                prims.append(Sphere(float(x), float(y), h + 0.9, 1.1, TREE, (60, 120, 50)))
                placed.append((float(x), float(y), 1.1))
                break
        for x, y in pts[rng.permutation(len(pts))[:50]]:
            if all(np.hypot(x - px, y - py) > pr + 1.0 for px, py, pr in placed):
                prims.append(Cylinder(float(x), float(y), 0.03, 0.0, 2.2, SIGN, (150, 150, 150)))
                prims.append(Box((x - 0.05, y - 0.35, 1.6), (x + 0.05, y + 0.35, 2.3), SIGN, (220, 30, 30)))
                placed.append((float(x), float(y), 0.35))
                break
    world.primitives = prims
    return world


__all__ = ["obstacle_course"]
