"""The node's configuration: one validated, immutable set of parameter values.

``NodeConfig`` is built directly (typed constructor, for tests and tools) or from ROS
parameter values (``from_params``); the parameter table itself is ``node_params``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg_perception.depth.grid import DepthGridRules
from seg_perception.errors import ConfigError
from seg_perception.geometry.grid_spec import GridSpec
from seg_perception.node_params import BY_NAME, PARAMETER_NAMES, PARAMETERS, check_param, coerce_param


@dataclass(frozen=True)
class NodeConfig:
    """Validated node configuration (see PARAMETERS for meanings)."""

    model_path: str = ""
    backend: str = "auto"
    precision: str = "fp32"
    num_threads: int = 2
    input_size: tuple[int, ...] = ()
    engine_cache_dir: str = "~/.cache/seg_perception/engines"
    calibration_dir: str = ""
    image_transport: str = "raw"
    qos_reliability: str = "best_effort"
    qos_depth: int = 5
    publish_overlay: bool = True
    overlay_alpha: float = 0.5
    camera_xyz: tuple[float, float, float] = (0.0, 0.0, 1.3)
    camera_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    use_tf: bool = False
    grid: GridSpec = field(default_factory=GridSpec)
    drivable_classes: tuple[str, ...] = ()
    obstacle_classes: tuple[str, ...] = ()
    query_embeddings: str = "auto"
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
        return {
            "model_path": self.model_path,
            "backend": self.backend,
            "precision": self.precision,
            "num_threads": self.num_threads,
            "input_size": list(self.input_size),
            "engine_cache_dir": self.engine_cache_dir,
            "calibration_dir": self.calibration_dir,
            "image_transport": self.image_transport,
            "qos.reliability": self.qos_reliability,
            "qos.depth": self.qos_depth,
            "publish_overlay": self.publish_overlay,
            "overlay_alpha": self.overlay_alpha,
            "camera_pose.xyz": list(self.camera_xyz),
            "camera_pose.rpy": list(self.camera_rpy),
            "use_tf": self.use_tf,
            "grid.frame_id": self.grid.frame_id,
            "grid.resolution": self.grid.resolution,
            "grid.x_min": self.grid.x_min,
            "grid.x_max": self.grid.x_max,
            "grid.y_min": self.grid.y_min,
            "grid.y_max": self.grid.y_max,
            "grid.max_range": self.grid.max_range,
            "drivable_classes": list(self.drivable_classes),
            "obstacle_classes": list(self.obstacle_classes),
            "query.embeddings": self.query_embeddings,
            "diagnostics_period": self.diagnostics_period,
            "warn_throttle": self.warn_throttle,
            "depth.enabled": self.depth_enabled,
            "depth.slop": self.depth_slop,
            "depth.points_decimation": self.depth_points_decimation,
            "depth.points_rgb": self.depth_points_rgb,
            "depth.z_min": self.depth_rules.z_min,
            "depth.z_max": self.depth_rules.z_max,
            "depth.ground_tolerance": self.depth_rules.ground_tolerance,
        }

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
        return cls(
            model_path=p["model_path"],
            backend=p["backend"],
            precision=p["precision"],
            num_threads=p["num_threads"],
            input_size=tuple(p["input_size"]),
            engine_cache_dir=p["engine_cache_dir"],
            calibration_dir=p["calibration_dir"],
            image_transport=p["image_transport"],
            qos_reliability=p["qos.reliability"],
            qos_depth=p["qos.depth"],
            publish_overlay=p["publish_overlay"],
            overlay_alpha=p["overlay_alpha"],
            camera_xyz=tuple(p["camera_pose.xyz"]),
            camera_rpy=tuple(p["camera_pose.rpy"]),
            use_tf=p["use_tf"],
            grid=GridSpec(
                frame_id=p["grid.frame_id"],
                resolution=p["grid.resolution"],
                x_min=p["grid.x_min"],
                x_max=p["grid.x_max"],
                y_min=p["grid.y_min"],
                y_max=p["grid.y_max"],
                max_range=p["grid.max_range"],
            ),
            drivable_classes=tuple(p["drivable_classes"]),
            obstacle_classes=tuple(p["obstacle_classes"]),
            query_embeddings=p["query.embeddings"],
            diagnostics_period=p["diagnostics_period"],
            warn_throttle=p["warn_throttle"],
            depth_enabled=p["depth.enabled"],
            depth_slop=p["depth.slop"],
            depth_points_decimation=p["depth.points_decimation"],
            depth_points_rgb=p["depth.points_rgb"],
            depth_rules=DepthGridRules(p["depth.z_min"], p["depth.z_max"], p["depth.ground_tolerance"]),
        )

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


