"""The node's configuration: one validated, immutable set of parameter values.

``NodeConfig`` is built directly (typed constructor, for tests and tools) or from ROS
parameter values (``from_params``); the parameter table itself is ``node_params``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from seg_perception.depth.grid import DepthGridRules
from seg_perception.errors import ConfigError
from seg_perception.geometry.grid_spec import GridSpec
from seg_perception.node_params import BY_NAME, PARAMETER_NAMES, PARAMETERS, check_param, coerce_param

#: NodeConfig field -> ROS parameter, where the names differ (every other field is its parameter)
_PARAM_OF = {
    "qos_reliability": "qos.reliability",
    "qos_depth": "qos.depth",
    "camera_xyz": "camera_pose.xyz",
    "camera_rpy": "camera_pose.rpy",
    "query_embeddings": "query.embeddings",
    "query_detector": "query.detector",
    "depth_enabled": "depth.enabled",
    "depth_slop": "depth.slop",
    "depth_points_decimation": "depth.points_decimation",
    "depth_points_rgb": "depth.points_rgb",
}
#: NodeConfig field holding a dataclass -> (prefix of its fields' parameters, the dataclass)
_NESTED: dict[str, tuple[str, type]] = {"grid": ("grid.", GridSpec), "depth_rules": ("depth.", DepthGridRules)}


@dataclass(frozen=True)
class NodeConfig:
    """Validated node configuration (see PARAMETERS for meanings)."""

    model_path: str = ""
    backend: str = "auto"
    precision: str = "fp32"
    num_threads: int = 2
    thread_spinning: bool = False
    input_size: tuple[int, ...] = ()
    engine_cache_dir: str = "~/.cache/seg_perception/engines"
    calibration_dir: str = ""
    engine_build_in_background: bool = True
    image_transport: str = "raw"
    qos_reliability: str = "best_effort"
    qos_depth: int = 5
    publish_overlay: bool = True
    overlay_alpha: float = 0.5
    camera_xyz: tuple[float, float, float] = (0.0, 0.0, 1.3)
    camera_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    use_tf: bool = False
    image_rectified: bool = False
    grid: GridSpec = field(default_factory=GridSpec)
    drivable_classes: tuple[str, ...] = ()
    obstacle_classes: tuple[str, ...] = ()
    query_embeddings: str = "auto"
    query_detector: str = "auto"
    diagnostics_period: float = 1.0
    warn_throttle: float = 5.0
    depth_enabled: bool = False
    depth_slop: float = 0.02
    depth_points_decimation: int = 4
    depth_points_rgb: bool = False
    depth_rules: DepthGridRules = field(default_factory=DepthGridRules)

    def __post_init__(self) -> None:
        values = self.as_params()
        for name, value in values.items():
            check_param(name, value)

    def as_params(self) -> dict[str, Any]:
        """The configuration as ROS parameter name -> value."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _NESTED:
                prefix = _NESTED[f.name][0]
                out.update({prefix + sub.name: getattr(value, sub.name) for sub in fields(value)})
            else:
                out[_PARAM_OF.get(f.name, f.name)] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> NodeConfig:
        """Build from ROS parameter name -> value (missing names take defaults; unknown names are an error)."""
        unknown = sorted(set(params) - set(PARAMETER_NAMES))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown}; known: {', '.join(PARAMETER_NAMES)}")
        p = {d.name: d.default for d in PARAMETERS}
        p.update({k: v for k, v in params.items() if v is not None})
        for name, value in p.items():
            p[name] = coerce_param(name, value)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in _NESTED:
                prefix, part = _NESTED[f.name]
                values[f.name] = part(**{sub.name: p[prefix + sub.name] for sub in fields(part)})
            else:
                value = p[_PARAM_OF.get(f.name, f.name)]
                values[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)

    def with_changes(self, changes: Mapping[str, Any]) -> NodeConfig:
        """A new validated config with ``changes`` (parameter name -> value) applied.

        Raises ConfigError naming the parameter when a name is unknown, not dynamic, or a value is refused.
        """
        for name in changes:
            d = BY_NAME.get(name)
            if d is None:
                raise ConfigError(f"unknown parameter '{name}'")
            if not d.dynamic:
                raise ConfigError(f"parameter {name} is read-only at run time (restart the node to change it)")
        return NodeConfig.from_params({**self.as_params(), **changes})

    @classmethod
    def from_yaml(cls, path: str | Path, node_name: str = "seg_perception") -> NodeConfig:
        """Build from a ROS params file (``<node>: ros__parameters: {...}``); keys that are not node
        parameters (e.g. ``camera_info.*`` read by tools) are ignored."""
        import yaml

        try:
            doc = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read params file {path}: {err}") from err
        section = doc.get(node_name) or doc.get(f"/{node_name}") or doc.get("/**") or {}
        params = section.get("ros__parameters", {}) if isinstance(section, dict) else {}
        try:
            return cls.from_params({k: v for k, v in params.items() if k in PARAMETER_NAMES})
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from err

    def resolved_model_path(self) -> Path:
        """``model_path`` with ~ expanded, or the bundled default model when empty."""
        if not self.model_path:
            from seg_perception.model_spec import default_model_path

            return default_model_path()
        return Path(os.path.expanduser(self.model_path))
