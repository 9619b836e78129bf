"""Launch the segmentation node on a camera.

    ros2 launch seg_perception camera.launch.py image_topic:=/camera/image_raw \
        camera_info_topic:=/camera/camera_info params_file:=/path/params.yaml

Arguments: image_topic, camera_info_topic, params_file, model_path, namespace,
image_transport (raw | compressed), backend, use_sim_time.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("image_topic", "/camera/image_raw", "Image topic (for compressed transport, '/compressed' is appended)."),
    ("camera_info_topic", "/camera/camera_info", "CameraInfo topic (intrinsics for the occupancy grid)."),
    ("params_file", PathJoinSubstitution([FindPackageShare("seg_perception"), "config", "default.yaml"]),
     "YAML file with the node's parameters."),
    ("model_path", "", "ONNX model or TensorRT engine; empty keeps params_file's value (default: bundled model)."),
    ("namespace", "", "Namespace of the node and its topics."),
    ("image_transport", "raw", "raw or compressed."),
    ("backend", "auto", "auto, tensorrt, onnxruntime or torch."),
    ("use_sim_time", "false", "Use /clock (bag replay)."),
    ("log_level", "info", "Node log level."),
)


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=default, description=desc) for name, default, desc in ARGUMENTS]
    cfg = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    overrides = {
        "image_transport": cfg["image_transport"],
        "backend": cfg["backend"],
        "use_sim_time": PythonExpression(["'", cfg["use_sim_time"], "'.lower() == 'true'"]),
    }
    common = {
        "package": "seg_perception",
        "executable": "segmentation_node",
        "name": "seg_perception",
        "namespace": cfg["namespace"],
        "output": "screen",
        "arguments": ["--ros-args", "--log-level", cfg["log_level"]],
        "remappings": [
            ("image", cfg["image_topic"]),
            ("image/compressed", [cfg["image_topic"], "/compressed"]),
            ("camera_info", cfg["camera_info_topic"]),
        ],
    }
    has_model = PythonExpression(["'", cfg["model_path"], "' != ''"])
    no_model = PythonExpression(["'", cfg["model_path"], "' == ''"])
    return LaunchDescription(
        [
            *args,
            Node(**common, parameters=[cfg["params_file"], overrides], condition=IfCondition(no_model)),
            Node(
                **common,
                parameters=[cfg["params_file"], {**overrides, "model_path": cfg["model_path"]}],
                condition=IfCondition(has_model),
            ),
        ]
    )
