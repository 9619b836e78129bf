"""Launch the segmentation node on a camera.

    ros2 launch seg_perception camera.launch.py image_topic:=/camera/image_raw \
        camera_info_topic:=/camera/camera_info params_file:=/path/params.yaml

Arguments: image_topic, camera_info_topic, depth_topic, params_file, model_path, namespace,
image_transport (raw | compressed), backend, use_sim_time, log_level.

One Node action. Overrides are added only for non-empty arguments, string ones as
``ParameterValue(..., value_type=str)`` (a model_path of ``~`` or ``123`` stays a string).
A params_file that does not exist stops the launch with an error. Fast DDS profile:
FASTDDS_DEFAULT_PROFILES_FILE (and FASTRTPS_ on Humble) point at the installed
seg_perception/ros/fastdds_profile.xml unless the user set one. The helpers below need no ``launch``
import (test/ros/test_launch_files.py tests them without a ROS install).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PACKAGE = "seg_perception"
ARGUMENTS = (
    ("image_topic", "/camera/image_raw", "Image topic (for compressed transport, '/compressed' is appended)."),
    ("camera_info_topic", "/camera/camera_info", "CameraInfo topic (intrinsics for the occupancy grid)."),
    ("depth_topic", "", "Depth registered to the colour image (e.g. .../aligned_depth_to_color/image_raw); "
                        "non-empty sets depth.enabled."),
    ("params_file", "", "YAML file with the node's parameters (keyed /**:); empty: the installed config/default.yaml."),
    ("model_path", "", "ONNX model or TensorRT engine; empty keeps params_file's value (default: bundled model)."),
    ("namespace", "", "Namespace of the node and its topics."),
    ("image_transport", "", "raw or compressed; empty keeps params_file's value."),
    ("backend", "", "auto, tensorrt, onnxruntime or torch; empty keeps params_file's value."),
    ("use_sim_time", "false", "Use /clock (bag replay): true or false."),
    ("log_level", "info", "Node log level."),
)
STRING_OVERRIDES = ("model_path", "image_transport", "backend")
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")


def check_params_file(path: str) -> str:
    """``path`` when it is an existing file; ValueError with a clear message otherwise."""
    if not Path(path).is_file():
        raise ValueError(f"params_file {path!r} does not exist (the node would silently start on defaults)")
    return path


def parse_bool(name: str, text: str) -> bool:
    """'true'/'false' (any case) -> bool; ValueError naming the argument otherwise."""
    low = text.strip().lower()
    if low not in ("true", "false"):
        raise ValueError(f"launch argument {name}:={text!r}: expected true or false")
    return low == "true"


def string_overrides(values: Mapping[str, str]) -> dict[str, str]:
    """The string parameter overrides for the non-empty arguments among STRING_OVERRIDES."""
    return {name: values[name] for name in STRING_OVERRIDES if values.get(name, "")}


def profile_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Variables to set so Fast DDS loads the shipped profile; {} when the user already set one.

    The rule is ``seg_perception.ros.transport``'s, the one env.sh and the node's main apply.
    """
    from seg_perception.ros.transport import profile_environment as shipped_profile

    return shipped_profile(dict(environ))


def _launch_setup(context: object) -> list:
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import SetEnvironmentVariable
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    share = get_package_share_directory(PACKAGE)
    params_file = check_params_file(values["params_file"] or os.path.join(share, "config", "default.yaml"))
    overrides: dict[str, object] = {
        name: ParameterValue(value, value_type=str) for name, value in string_overrides(values).items()
    }
    overrides["use_sim_time"] = parse_bool("use_sim_time", values["use_sim_time"])
    image = values["image_topic"]
    depth_remap = [("depth", values["depth_topic"])] if values.get("depth_topic") else []
    if depth_remap:
        overrides["depth.enabled"] = True
    env = [SetEnvironmentVariable(k, v) for k, v in profile_environment(os.environ).items()]
    node = Node(
        package=PACKAGE,
        executable="segmentation_node",
        name="seg_perception",
        namespace=values["namespace"],
        output="screen",
        arguments=["--ros-args", "--log-level", values["log_level"]],
        parameters=[params_file, overrides],
        remappings=[
            ("image", image),
            ("image/compressed", image + "/compressed"),
            ("camera_info", values["camera_info_topic"]),
            *depth_remap,
        ],
    )
    return [*env, node]


def generate_launch_description() -> object:
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    args = [DeclareLaunchArgument(name, default_value=default, description=desc) for name, default, desc in ARGUMENTS]
    return LaunchDescription([*args, OpaqueFunction(function=_launch_setup)])
