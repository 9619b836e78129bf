"""The model and grid set-up every evaluation shares: model path, Segmenter on a backend, grid hook.

``eval``, ``eval-bag``, ``eval-bags`` and the demo load the model the way the node does
(``ModelSpec.for_model`` + backend selection + ``Segmenter``) and never pre- or
post-process images themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from seg_perception.errors import ModelError
from seg_perception.model_spec import ModelSpec, default_model_path

log = logging.getLogger(__name__)


def resolve_model_path(model: str | None) -> Path:
    """``--model`` or the bundled default; ModelError with a hint when the file is missing."""
    if model:
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        return path
    path = default_model_path()
    if not path.is_file():
        raise ModelError(f"the bundled default model {path} is not there yet; pass --model PATH")
    return path


@contextmanager
def open_segmenter(model: str | None, backend: str = "auto") -> Iterator[tuple[Any, dict[str, str]]]:
    """(Segmenter, {"model", "backend", "backend_name"}) for ``model`` on ``backend``; closes the backend after."""
    from seg_perception.backends.select import select_backend
    from seg_perception.pipeline import Segmenter

    path = resolve_model_path(model)
    spec = ModelSpec.for_model(path)
    selection = select_backend(backend, path)
    with selection.backend as be:
        log.debug("%s", selection.summary)  # select_backend already logs its choice at INFO
        info = {"model": str(path), "backend": be.description, "backend_name": be.name}
        yield Segmenter(be, spec), info


def make_grid_fn(spec: ModelSpec, camera_config: str | None) -> Any:
    """Occupancy-grid hook ``grid_fn(labels, camera_info_msg) -> (grid, stats)`` (contract: ``eval_bag``).

    Built from the model's drivable/obstacle classes and the camera pose and grid
    parameters of the node params file ``camera_config`` (None = the default config).
    """
    from seg_perception.assembly import build_mapper, grid_stats

    mapper = build_mapper(_node_config(camera_config), spec)

    def grid_fn(labels: Any, camera_info_msg: Any) -> tuple[Any, dict[str, Any]]:
        mapper.set_camera_info(camera_info_msg)
        out = mapper.process(labels)
        g = mapper.grid
        meta = {"resolution": g.resolution, "origin_x": g.x_min, "origin_y": g.y_min, "frame_id": g.frame_id}
        return out.grid, {**grid_stats(out.grid), **meta}

    return grid_fn


def _node_config(camera_config: str | None) -> Any:
    """The NodeConfig of the params file ``camera_config`` (None: the default config; defaults when absent)."""
    from seg_perception.evaluation.camera_config import default_camera_config_path
    from seg_perception.node_config import NodeConfig

    path = Path(camera_config) if camera_config else default_camera_config_path()
    return NodeConfig.from_yaml(path) if path.exists() else NodeConfig()


def make_rgbd_evaluator(spec: ModelSpec, camera_config: str | None, depth_topic: str | None = None) -> Any:
    """``eval_bag``'s RGB-D evaluator for the node config ``camera_config`` (grid, pose, classes, ``depth.*``)."""
    from seg_perception.assembly import build_mapper
    from seg_perception.evaluation.rgbd_eval import RgbdEvaluator

    cfg = _node_config(camera_config)
    return RgbdEvaluator(build_mapper(cfg, spec), spec.class_names, cfg.depth_rules, depth_topic)
