"""Every node parameter in one place: name, type, default, description, validation.

ROS-free: ``seg_perception.ros.parameters`` declares these on the node, the launch
test checks launch/config files against ``PARAMETERS``, and tests build a
``NodeConfig`` directly (typed constructor) or from a plain mapping (``from_params``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg_perception.backends.base import PRECISIONS
from seg_perception.errors import ConfigError
from seg_perception.geometry.grid_spec import GridSpec

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
TRANSPORTS = ("raw", "compressed")
RELIABILITY = ("best_effort", "reliable")
EMBEDDINGS = ("auto", "required", "disabled")  # not on/off: YAML reads those as booleans


@dataclass(frozen=True)
class ParamDef:
    """One ROS parameter: ``kind`` is bool, int, double, string, double[], string[] or int[]."""

    name: str
    kind: str
    default: Any
    description: str
    read_only: bool = False
    choices: tuple[str, ...] = ()
    validate: Callable[[Any], str | None] | None = None  # returns an error message or None
    dynamic: bool = False  # may be changed at run time (applied at the next frame); else read-only
    range: tuple[float, float] | None = None  # inclusive bounds, published in the descriptor


def _positive(v: Any) -> str | None:
    return None if v > 0 and math.isfinite(v) else "must be a positive finite number"


def _non_negative_int(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _vec3(v: Any) -> str | None:
    return None if len(v) == 3 and all(math.isfinite(x) for x in v) else "must be 3 finite numbers"


def _size(v: Any) -> str | None:
    return None if len(v) == 0 or (len(v) == 2 and min(v) > 0) else "must be [] (model default) or [H, W] > 0"


def _depth(v: Any) -> str | None:
    return None if 1 <= v <= 100 else "must be in 1..100"


def _unit(v: Any) -> str | None:
    return None if 0.0 <= v <= 1.0 else "must be in 0..1"


PARAMETERS: tuple[ParamDef, ...] = (
    ParamDef(
        "model_path",
        "string",
        "",
        "ONNX model or serialized TensorRT engine; metadata YAML beside it. "
        "Empty: the bundled default model (models/camvid.onnx).",
    ),
    ParamDef(
        "backend",
        "string",
        "auto",
        "Inference backend: auto tries tensorrt, onnxruntime CUDA, onnxruntime CPU.",
        choices=BACKENDS,
    ),
    ParamDef("precision", "string", "fp32", "Inference precision (fp16/int8 need TensorRT).", choices=PRECISIONS),
    ParamDef(
        "num_threads",
        "int",
        2,
        "CPU inference threads (onnxruntime/torch); 0 = library default.",
        validate=_non_negative_int,
        range=(0, 256),
    ),
    ParamDef(
        "input_size",
        "int[]",
        [],
        "Network input [H, W] for dynamic-shape models; [] = the model's input_size.",
        validate=_size,
    ),
    ParamDef(
        "engine_cache_dir",
        "string",
        "~/.cache/seg_perception/engines",
        "Where TensorRT engines and timing caches are cached.",
    ),
    ParamDef("calibration_dir", "string", "", "Folder of sample images for INT8 calibration (precision int8)."),
    ParamDef(
        "image_transport",
        "string",
        "raw",
        "raw: subscribe 'image'; compressed: 'image/compressed' (jpeg, png).",
        choices=TRANSPORTS,
    ),
    ParamDef(
        "qos.reliability",
        "string",
        "best_effort",
        "Image subscription reliability (sensor data default).",
        choices=RELIABILITY,
    ),
    ParamDef(
        "qos.depth",
        "int",
        5,
        "Image subscription queue depth; the node always processes the newest frame (a depth of 1 lets"
        " DDS overwrite frames before the executor takes them).",
        validate=_depth,
        range=(1, 100),
    ),
    ParamDef("publish_overlay", "bool", True, "Publish ~/overlay (computed only while someone subscribes)."),
    ParamDef(
        "overlay_alpha",
        "double",
        0.5,
        "Weight of class colours in ~/overlay, 0..1.",
        validate=_unit,
        dynamic=True,
        range=(0.0, 1.0),
    ),
    ParamDef(
        "camera_pose.xyz",
        "double[]",
        [0.0, 0.0, 1.3],
        "Camera position in the grid frame, metres (x forward, y left, z up).",
        validate=_vec3,
        dynamic=True,
    ),
    ParamDef(
        "camera_pose.rpy",
        "double[]",
        [0.0, 0.0, 0.0],
        "Camera body roll, pitch, yaw in the grid frame, radians (REP-103; positive pitch looks down).",
        validate=_vec3,
        dynamic=True,
    ),
    ParamDef(
        "use_tf",
        "bool",
        False,
        "Take the camera pose from TF (grid.frame_id <- image frame_id) at the image "
        "stamp instead of camera_pose.* (needs tf2_ros).",
    ),
    ParamDef("grid.frame_id", "string", "base_link", "Frame of ~/occupancy_grid and ~/obstacle_scan."),
    ParamDef(
        "grid.resolution",
        "double",
        0.10,
        "Grid cell size, metres.",
        validate=_positive,
        dynamic=True,
        range=(0.001, 10.0),
    ),
    ParamDef("grid.x_min", "double", 0.0, "Grid extent forward, metres (min).", dynamic=True),
    ParamDef("grid.x_max", "double", 20.0, "Grid extent forward, metres (max).", dynamic=True),
    ParamDef("grid.y_min", "double", -10.0, "Grid extent left, metres (min).", dynamic=True),
    ParamDef("grid.y_max", "double", 10.0, "Grid extent left, metres (max).", dynamic=True),
    ParamDef(
        "grid.max_range",
        "double",
        15.0,
        "Ground hits farther than this from the camera are ignored, metres.",
        validate=_positive,
        dynamic=True,
        range=(0.01, 1000.0),
    ),
    ParamDef(
        "drivable_classes", "string[]", [], "Class names that are free ground; [] = the model's default.", dynamic=True
    ),
    ParamDef("obstacle_classes", "string[]", [], "Class names that block; [] = the model's default.", dynamic=True),
    ParamDef(
        "query.embeddings",
        "string",
        "auto",
        "Sentence embeddings for ~/segment_query: auto (when installed), on (required), off (lexicon only).",
        choices=EMBEDDINGS,
    ),
    ParamDef(
        "diagnostics_period",
        "double",
        1.0,
        "Seconds between /diagnostics messages.",
        validate=_positive,
        range=(0.01, 3600.0),
    ),
    ParamDef(
        "warn_throttle",
        "double",
        5.0,
        "Seconds between repeated warnings about bad input.",
        validate=_positive,
        dynamic=True,
        range=(0.001, 3600.0),
    ),
    ParamDef(
        "class_names", "string[]", [], "Read-only: class names of the loaded model (label id = index).", read_only=True
    ),
)

PARAMETER_NAMES = tuple(p.name for p in PARAMETERS)
DYNAMIC_PARAMETERS = tuple(p.name for p in PARAMETERS if p.dynamic)
_BY_NAME = {p.name: p for p in PARAMETERS}


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
        )

    def with_changes(self, changes: Mapping[str, Any]) -> NodeConfig:
        """A new validated config with ``changes`` (parameter name -> value) applied.

        Raises ConfigError naming the parameter when a name is unknown, not dynamic, or a value is refused.
        """
        for name in changes:
            d = _BY_NAME.get(name)
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


def coerce_param(name: str, value: Any) -> Any:
    """Convert ``value`` to parameter ``name``'s type; ConfigError naming the parameter if impossible."""
    d = _BY_NAME.get(name)
    if d is None:
        raise ConfigError(f"unknown parameter '{name}'")
    try:
        if d.kind == "bool":
            if not isinstance(value, bool):
                raise TypeError(f"expected true/false, got {value!r}")
            return value
        if d.kind == "int":
            if isinstance(value, bool) or int(value) != value:
                raise TypeError(f"expected an integer, got {value!r}")
            return int(value)
        if d.kind == "double":
            if isinstance(value, bool):
                raise TypeError(f"expected a number, got {value!r}")
            return float(value)
        if d.kind == "string":
            if not isinstance(value, str):
                raise TypeError(f"expected a string, got {value!r}")
            return value
        if isinstance(value, str | bytes) or not isinstance(value, Sequence | list | tuple):
            value = list(value)  # array.array and friends
        if d.kind == "double[]":
            return [float(v) for v in value]
        if d.kind == "int[]":
            return [int(v) for v in value]
        return [str(v) for v in value]
    except (TypeError, ValueError) as err:
        raise ConfigError(f"parameter {name}: {err}") from err


def check_param(name: str, value: Any) -> None:
    """Raise ConfigError (naming the parameter) when ``value`` is not allowed for ``name``."""
    d = _BY_NAME[name]
    value = coerce_param(name, value)
    if d.choices and value not in d.choices:
        raise ConfigError(f"parameter {name}: '{value}' is not one of {', '.join(d.choices)}")
    if d.range is not None and not d.range[0] <= value <= d.range[1]:
        raise ConfigError(f"parameter {name} = {value!r} must be in {d.range[0]}..{d.range[1]}")
    if d.validate is not None:
        msg = d.validate(value)
        if msg:
            raise ConfigError(f"parameter {name} = {value!r} {msg}")
