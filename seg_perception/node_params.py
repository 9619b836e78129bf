"""Every node parameter in one place: name, type, default, description, range, validation.

ROS-free: ``seg_perception.ros.parameters`` declares these on the node, the launch test
checks launch/config files against ``PARAMETERS``; ``node_config.NodeConfig`` holds a
validated set of values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from seg_perception.backends.base import PRECISIONS
from seg_perception.errors import ConfigError

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
        "thread_spinning",
        "bool",
        False,
        "Let idle ONNX Runtime inference threads spin-wait between operators: about 1 ms lower latency "
        "for about 60 % more CPU per frame (false: they sleep; the CPU stays free for the robot).",
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
        "engine_build_in_background",
        "bool",
        True,
        "With an ONNX model and TensorRT available (backend auto/tensorrt): serve with ONNX Runtime from the "
        "first frame while the TensorRT engine loads or builds, then swap to it.",
    ),
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
        "grid.ground_z",
        "double",
        0.0,
        "Height of the floor in grid.frame_id, metres: 0 when the frame is on the floor (base_footprint); "
        "-0.3 when base_link is 0.3 m above it (REP-120). camera_pose.xyz and TF stay in grid.frame_id.",
        dynamic=True,
        range=(-10.0, 10.0),
    ),
    ParamDef(
        "image_rectified",
        "bool",
        False,
        "The image topic is rectified (image_rect): use camera_info's P with zero distortion instead of K and D.",
        dynamic=True,
    ),
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
        "query.detector",
        "string",
        "auto",
        "Household-object detector for ~/segment_query ('cup', 'bottle'): auto (when fetch-models installed it), "
        "disabled (segmentation classes only).",
        choices=("auto", "disabled"),
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
    ParamDef(
        "depth.enabled",
        "bool",
        False,
        "Subscribe to 'depth' (registered to the colour image: 16UC1 mm or 32FC1 m) and use it for the "
        "grid, ~/labeled_points and query positions.",
    ),
    ParamDef(
        "depth.slop",
        "double",
        0.02,
        "Largest |stamp difference| between a colour frame and its depth frame, seconds; also how long the "
        "worker waits for a depth frame still in flight.",
        dynamic=True,
        range=(0.0, 1.0),
    ),
    ParamDef(
        "depth.points_decimation",
        "int",
        4,
        "~/labeled_points keeps every n-th pixel in rows and columns.",
        dynamic=True,
        range=(1, 64),
    ),
    ParamDef("depth.points_rgb", "bool", False, "Add an rgb field to ~/labeled_points.", dynamic=True),
    ParamDef(
        "depth.z_min",
        "double",
        0.05,
        "Obstacle points at or above this height (grid frame, metres) block in the depth grid.",
        dynamic=True,
        range=(-10.0, 10.0),
    ),
    ParamDef(
        "depth.z_max",
        "double",
        2.0,
        "Obstacle points at or below this height block (the robot's height), metres.",
        dynamic=True,
        range=(-10.0, 100.0),
    ),
    ParamDef(
        "depth.ground_tolerance",
        "double",
        0.5,
        "Drivable points within this height of z = 0 are floor (ramps, kerbs), metres.",
        dynamic=True,
        range=(0.001, 10.0),
    ),
)

PARAMETER_NAMES = tuple(p.name for p in PARAMETERS)
DYNAMIC_PARAMETERS = tuple(p.name for p in PARAMETERS if p.dynamic)
BY_NAME = {p.name: p for p in PARAMETERS}


def coerce_param(name: str, value: Any) -> Any:
    """Convert ``value`` to parameter ``name``'s type; ConfigError naming the parameter if impossible."""
    d = BY_NAME.get(name)
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
    d = BY_NAME[name]
    value = coerce_param(name, value)
    if d.choices and value not in d.choices:
        raise ConfigError(f"parameter {name}: '{value}' is not one of {', '.join(d.choices)}")
    if d.range is not None and not d.range[0] <= value <= d.range[1]:
        raise ConfigError(f"parameter {name} = {value!r} must be in {d.range[0]}..{d.range[1]}")
    if d.validate is not None:
        msg = d.validate(value)
        if msg:
            raise ConfigError(f"parameter {name} = {value!r} {msg}")
