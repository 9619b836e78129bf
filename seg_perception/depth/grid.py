"""Depth-aware occupancy: labelled 3D points into the grid, free space cleared along each ray.

Rules (grid frame, z up, metres; see docs/rgbd.md):

* an obstacle-class point with ``z_min <= z <= z_max`` marks its cell occupied (an obstacle
  overhanging the ground lands where it is, not where its ray meets the floor);
* a drivable-class point with ``|z| <= ground_tolerance`` marks its cell free (ramps and
  kerbs within that height count as floor);
* the cells a ray crosses on its way to such a point, up to the cell before it, are free,
  unless a point marked them occupied (occupied wins);
* pixels without depth add nothing: their cells stay unknown unless other rays reach them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg_perception.depth.cloud import NormalizedRays, labeled_points, to_grid_frame
from seg_perception.errors import ConfigError
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.geometry.grid_spec import FREE, OCCUPIED, UNKNOWN, GridSpec

__all__ = ["DepthGridRules", "DepthGridResult", "depth_occupancy", "frame_depth_occupancy"]


@dataclass(frozen=True)
class DepthGridRules:
    """Height window (metres, grid frame) of what blocks and what counts as floor.

    Attributes:
        z_min, z_max: obstacle points between these heights block (robot body height).
        ground_tolerance: drivable points within this height of z = 0 are floor (ramps, kerbs).
    """

    z_min: float = 0.05
    z_max: float = 2.0
    ground_tolerance: float = 0.5

    def __post_init__(self) -> None:
        if not (np.isfinite(self.z_min) and np.isfinite(self.z_max) and self.z_max > self.z_min):
            raise ConfigError(f"depth grid height window needs z_max > z_min, got [{self.z_min}, {self.z_max}]")
        if not self.ground_tolerance > 0:
            raise ConfigError(f"depth ground_tolerance must be > 0 m, got {self.ground_tolerance}")


@dataclass(frozen=True)
class DepthGridResult:
    """int8 (rows, cols) grid (0 free, 100 occupied, -1 unknown) and N x 2 obstacle contacts (x, y, metres)."""

    grid: np.ndarray
    contacts: np.ndarray


class RayTable:
    """Free-space clearing by cell chains: each cell's parent is the cell one cell length closer
    to the camera along the straight line to the camera, so the chain from a cell back to the
    camera is a digital ray (within about half a cell of the true one). Built once per grid and
    camera position; clearing then walks chain levels, far to near, in vectorised steps.
    """

    def __init__(self, grid: GridSpec, camera_xy: tuple[float, float]) -> None:
        xs, ys = grid.cell_centers()
        cx, cy = np.meshgrid(xs, ys)
        dx, dy = cx.ravel() - camera_xy[0], cy.ravel() - camera_xy[1]
        r = np.hypot(dx, dy)
        step = np.minimum(grid.resolution, r)
        with np.errstate(invalid="ignore", divide="ignore"):
            px = cx.ravel() - np.where(r > 0, dx / r, 0.0) * step
            py = cy.ravel() - np.where(r > 0, dy / r, 0.0) * step
        parent = grid.cell_index(px, py)
        own = np.arange(grid.n_cells)
        parent[(r <= grid.resolution) | (parent == own)] = -1  # chains end next to the camera
        depth = np.where(parent < 0, 0, -1)
        for _ in range(4 * (grid.width + grid.height)):  # chain length is bounded by the grid's span
            todo = depth < 0
            if not todo.any():
                break
            ready = todo & (depth[np.where(parent >= 0, parent, 0)] >= 0)
            depth[ready] = depth[parent[ready]] + 1
        depth[depth < 0] = 0  # cycles cannot happen (parents are strictly closer); guard anyway
        order = np.argsort(-depth, kind="stable")
        self.parent = parent
        self._levels = np.split(order, np.flatnonzero(np.diff(depth[order])) + 1)

    def cleared(self, ends: np.ndarray) -> np.ndarray:
        """bool (n_cells,) of the cells on the chains from ``ends`` (flat cell indices) to the camera,
        the end cells themselves excluded unless another chain passes through them."""
        reached = np.zeros(self.parent.size + 1, dtype=bool)  # last slot swallows "no parent"
        first = self.parent[ends]
        reached[np.where(first >= 0, first, -1)] = True
        for level in self._levels:
            hit = level[reached[level]]
            if hit.size:
                nxt = self.parent[hit]
                reached[np.where(nxt >= 0, nxt, -1)] = True
        return reached[:-1]


_TABLES: dict[tuple, RayTable] = {}


def _ray_table(grid: GridSpec, camera_xy: tuple[float, float]) -> RayTable:
    """The RayTable for this grid and camera position (a few kept; the pose rarely changes)."""
    key = (
        grid.resolution,
        grid.x_min,
        grid.x_max,
        grid.y_min,
        grid.y_max,
        round(camera_xy[0], 4),
        round(camera_xy[1], 4),
    )
    table = _TABLES.get(key)
    if table is None:
        if len(_TABLES) >= 4:
            _TABLES.pop(next(iter(_TABLES)))
        table = _TABLES[key] = RayTable(grid, camera_xy)
    return table


def depth_occupancy(
    points_grid: np.ndarray,
    labels: np.ndarray,
    grid: GridSpec,
    camera_xy: tuple[float, float],
    drivable: np.ndarray,
    obstacle: np.ndarray,
    rules: DepthGridRules = DepthGridRules(),
) -> DepthGridResult:
    """Occupancy of one frame's labelled points.

    Args:
        points_grid: float N x 3 points in the grid frame (``depth.cloud.to_grid_frame``).
        labels: uint8 N class ids.
        grid: the grid geometry (``max_range`` applies around ``camera_xy``).
        camera_xy: camera position (x, y) in the grid frame, metres; rays start here.
        drivable, obstacle: bool lookup tables indexed by class id (length 256).
    """
    pts = np.asarray(points_grid, dtype=np.float64).reshape(-1, 3)
    lab = np.asarray(labels, dtype=np.uint8).ravel()
    x, y, z = pts[:, 0], pts[:, 1], pts[:, 2]
    near = np.hypot(x - camera_xy[0], y - camera_xy[1]) <= grid.max_range
    occ = near & obstacle[lab] & (z >= rules.z_min) & (z <= rules.z_max)
    floor = near & drivable[lab] & (np.abs(z) <= rules.ground_tolerance)
    out = np.full(grid.n_cells, UNKNOWN, dtype=np.int8)
    ends = grid.cell_index(x[occ | floor], y[occ | floor])
    ends = np.unique(ends[ends >= 0])
    if ends.size:
        out[_ray_table(grid, camera_xy).cleared(ends)] = FREE
    floor_cells = grid.cell_index(x[floor], y[floor])
    out[floor_cells[floor_cells >= 0]] = FREE
    occ_cells = grid.cell_index(x[occ], y[occ])
    out[occ_cells[occ_cells >= 0]] = OCCUPIED
    contacts = np.stack([x[occ], y[occ]], axis=1) if occ.any() else np.zeros((0, 2))
    return DepthGridResult(out.reshape(grid.shape), contacts)


def frame_depth_occupancy(
    depth_m: np.ndarray,
    labels: np.ndarray,
    intrinsics: CameraIntrinsics,
    pose: CameraPose,
    grid: GridSpec,
    drivable: np.ndarray,
    obstacle: np.ndarray,
    rules: DepthGridRules = DepthGridRules(),
    stride: int = 4,
    rays: NormalizedRays | None = None,
) -> DepthGridResult:
    """:func:`depth_occupancy` of one registered depth + label frame (every ``stride``-th pixel).

    ``depth_m`` float32 H x W metres (NaN = none) and ``labels`` uint8 H x W share ``intrinsics``;
    ``pose`` is the camera body pose in the grid frame.
    """
    pts = labeled_points(depth_m, labels, intrinsics, stride, rays=rays)
    cam = pose.position
    return depth_occupancy(
        to_grid_frame(pts.xyz, pose), pts.label, grid, (float(cam[0]), float(cam[1])), drivable, obstacle, rules
    )
