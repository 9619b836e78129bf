"""Pictures of an RGB-D frame: the labelled point cloud (3D and bird's-eye) and the depth grid beside the flat grid.

Drawn from the same core functions the node uses (``depth.cloud.labeled_points``,
``depth.grid.frame_depth_occupancy``, ``OccupancyMapper``) on the labels the node
published and the bag's depth (matched by stamp).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from seg_perception.depth.cloud import labeled_points, to_grid_frame
from seg_perception.depth.grid import frame_depth_occupancy
from seg_perception.evaluation.bags import IMAGE, OCCUPANCY_GRID, BagReader
from seg_perception.evaluation.matching import strip_indices
from seg_perception.evaluation.report import _figure, _save, grid_to_rgb
from seg_perception.evaluation.rgbd_bag import TRUTH_GRID_TOPIC, StampIndex, depth_at, find_depth_topic, grid_at
from seg_perception.geometry.camera import CameraIntrinsics
from seg_perception.geometry.classes import class_lut
from seg_perception.geometry.mapper import OccupancyMapper

__all__ = ["plot_rgbd_frame", "write_rgbd_pictures"]


def plot_rgbd_frame(
    labels: np.ndarray,
    depth_m: np.ndarray,
    intrinsics: CameraIntrinsics,
    mapper: OccupancyMapper,
    colors: np.ndarray,
    path: Path,
    truth: np.ndarray | None = None,
    stride: int = 4,
) -> Path:
    """One PNG: labelled points in 3D and from above (grid frame, class colours), depth grid, flat grid (, truth)."""
    pts = labeled_points(depth_m, labels, intrinsics, stride)
    xyz = to_grid_frame(pts.xyz, mapper.ground_pose)
    g = mapper.grid
    near = (np.hypot(xyz[:, 0], xyz[:, 1]) <= g.max_range) & (xyz[:, 2] < 4.0)
    xyz, lab = xyz[near], pts.label[near]
    rgb = np.asarray(colors, dtype=np.float64)[np.minimum(lab, len(colors) - 1)] / 255.0
    drivable = class_lut(mapper.drivable_classes, "drivable_classes")
    obstacle = class_lut(mapper.obstacle_classes, "obstacle_classes")
    depth_grid = frame_depth_occupancy(
        depth_m, labels, intrinsics, mapper.ground_pose, g, drivable, obstacle, stride=stride
    ).grid
    mapper.set_intrinsics(intrinsics)
    flat = mapper.process(labels).grid
    grids = [("depth-aware grid", depth_grid), ("flat-ground grid", flat)]
    if truth is not None and truth.shape == g.shape:
        grids.append(("exact occupancy", truth))
    n = 2 + len(grids)
    fig = _figure(4.2 * n, 4.2)
    ax = fig.add_subplot(1, n, 1, projection="3d")
    ax.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], c=rgb, s=1, depthshade=False)
    ax.set(xlabel="x (m)", ylabel="y (m)", zlabel="z (m)", title="labelled points (3D)")
    ax.view_init(elev=25, azim=-150)
    ax2 = fig.add_subplot(1, n, 2)
    ax2.scatter(-xyz[:, 1], xyz[:, 0], c=rgb, s=1)  # forward up, left on the left
    ax2.set(
        xlabel="-y (m)",
        ylabel="x (m)",
        title="labelled points (from above)",
        aspect="equal",
        xlim=(-g.y_max, -g.y_min),
        ylim=(g.x_min, g.x_max),
    )
    extent = (-g.y_max, -g.y_min, g.x_min, g.x_max)
    for i, (title, grid) in enumerate(grids):
        axg = fig.add_subplot(1, n, 3 + i)
        # grid rows are y, columns x: transpose so x is up, flip so left is on the left
        axg.imshow(grid_to_rgb(grid[::-1, :].T), extent=extent, interpolation="nearest")
        axg.plot([0.0], [0.0], "r^")
        axg.set(xlabel="-y (m)", ylabel="x (m)", title=title)
    return _save(fig, path)


def write_rgbd_pictures(
    bag: Path,
    labels_by_stamp: Mapping[int, np.ndarray],
    mapper: OccupancyMapper,
    intrinsics: CameraIntrinsics,
    colors: np.ndarray,
    out: Path,
    k: int = 4,
) -> list[Path]:
    """``out/NNNNN.png`` for ``k`` evenly spaced frames of ``labels_by_stamp`` that have depth in ``bag``."""
    paths: list[Path] = []
    stamps = sorted(labels_by_stamp)
    with BagReader(bag) as reader:
        topic = find_depth_topic(reader)
        if topic is None:
            return paths
        depth = StampIndex(reader, topic, IMAGE)
        truth = StampIndex(reader, TRUTH_GRID_TOPIC, OCCUPANCY_GRID)
        for i in sorted(strip_indices(len(stamps), k)):
            ns = stamps[i]
            d = depth_at(depth, ns)
            labels = labels_by_stamp[ns]
            if d is None or d.shape != labels.shape:
                continue
            intr = (
                intrinsics
                if (intrinsics.height, intrinsics.width) == d.shape
                else intrinsics.scaled(d.shape[1], d.shape[0])
            )
            paths.append(plot_rgbd_frame(labels, d, intr, mapper, colors, out / f"{i:05d}.png", grid_at(truth, ns)))
    return paths
