"""Assemble core objects from a :class:`NodeConfig` and the model's metadata (ROS-free).

Sits above the core (geometry, pipeline) and beside ``node_config``: the node and
``eval-bag`` both call ``build_mapper`` so they use the same classes, pose and grid.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seg_perception.backends.background import BackgroundBuild
from seg_perception.backends.base import Backend
from seg_perception.backends.select import Selection, model_format, select_backend
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


def open_backend(
    cfg: NodeConfig,
    model_path: Path,
    on_ready: Callable[[Backend], None],
    on_error: Callable[[Exception], None],
) -> tuple[Selection, BackgroundBuild | None]:
    """The backend to serve with now, and the TensorRT build running behind it (or None).

    With ``engine_build_in_background`` (default), an ONNX model, ``backend`` auto or tensorrt,
    and TensorRT importable, frames are served by ONNX Runtime (fp32) from the first one while
    the TensorRT backend loads or builds its engine in a thread; ``on_ready`` receives it to
    swap in. Otherwise ``select_backend`` runs as configured and nothing runs behind it.
    """
    options = {
        "num_threads": cfg.num_threads,
        "thread_spinning": cfg.thread_spinning,
        "engine_cache_dir": cfg.engine_cache_dir,
        "calibration_dir": cfg.calibration_dir,
        "input_size": tuple(cfg.input_size) or None,
    }
    later = (
        cfg.engine_build_in_background
        and cfg.backend in ("auto", "tensorrt")
        and model_format(model_path) == "onnx"
        and importlib.util.find_spec("tensorrt") is not None
    )
    if not later:
        return select_backend(cfg.backend, model_path, precision=cfg.precision, **options), None
    now = select_backend("onnxruntime", model_path, precision="fp32", **options)
    now.notes.append(f"serving with {now.backend.description} while TensorRT ({cfg.precision}) builds behind it")
    build = BackgroundBuild(
        lambda: select_backend("tensorrt", model_path, precision=cfg.precision, **options).backend, on_ready, on_error
    )
    return now, build
