"""Assemble core objects from a :class:`NodeConfig` and the model's metadata (ROS-free).

Sits above the core (geometry, pipeline) and beside ``node_config``: the node and
``eval-bag`` both call ``build_mapper`` so they use the same classes, pose and grid.
"""

from __future__ import annotations

import numpy as np

from seg_perception.geometry.camera import CameraPose
from seg_perception.geometry.classes import class_ids
from seg_perception.geometry.mapper import OccupancyMapper
from seg_perception.model_spec import ModelSpec
from seg_perception.node_config import NodeConfig


def grid_class_names(cfg: NodeConfig, spec: ModelSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(drivable, obstacle) class names: the parameters when set, else the model's defaults."""
    return cfg.drivable_classes or spec.drivable_classes, cfg.obstacle_classes or spec.obstacle_classes


def build_mapper(cfg: NodeConfig, spec: ModelSpec) -> OccupancyMapper:
    """OccupancyMapper for ``cfg``'s grid and camera pose; ConfigError names unknown classes."""
    drivable, obstacles = grid_class_names(cfg, spec)
    return OccupancyMapper(
        cfg.grid,
        CameraPose(cfg.camera_xyz, cfg.camera_rpy),
        class_ids(drivable, spec.class_names),
        class_ids(obstacles, spec.class_names),
    )


def grid_stats(grid: np.ndarray) -> dict[str, float]:
    """Fractions of free (0), occupied (100) and unknown (-1) cells of an int8 grid."""
    n = max(1, grid.size)
    return {
        "free_fraction": float(np.count_nonzero(grid == 0)) / n,
        "occupied_fraction": float(np.count_nonzero(grid == 100)) / n,
        "unknown_fraction": float(np.count_nonzero(grid < 0)) / n,
    }
