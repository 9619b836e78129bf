"""launch/camera.launch.py and config/*.yaml agree with the parameters the node declares.

The `launch` packages are not on PyPI, so the launch file is parsed (and, on a real ROS
install, also executed by test_launch_testing.py); the params files are fed to the real node.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
import yaml
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from seg_perception.conversions.image import numpy_to_image_msg
from seg_perception.node_params import PARAMETER_NAMES, PARAMETERS
from seg_perception.synthetic.street import render_street

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch" / "camera.launch.py"
CONTRACT_ARGS = {"image_topic", "camera_info_topic", "params_file", "model_path", "namespace", "image_transport"}


def _launch_tree() -> ast.Module:
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


def test_launch_file_declares_the_contract_arguments():
    tree = _launch_tree()
    args = next(
        n for n in ast.walk(tree) if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "ARGUMENTS"
    )
    names = {elt.elts[0].value for elt in args.value.elts}  # type: ignore[attr-defined]
    assert CONTRACT_ARGS <= names


def test_launch_file_names_the_installed_executable(node_exe: Path):
    keywords = {
        kw.arg: kw.value.value
        for n in ast.walk(_launch_tree())
        if isinstance(n, ast.Dict) or isinstance(n, ast.Call)
        for kw in getattr(n, "keywords", [])
        if isinstance(kw.value, ast.Constant)
    }
    consts = {n.value for n in ast.walk(_launch_tree()) if isinstance(n, ast.Constant)}
    assert {"seg_perception", "segmentation_node"} <= consts | set(keywords.values())
    assert node_exe.name == "segmentation_node" and os.access(node_exe, os.X_OK)
    share = node_exe.parents[2] / "share" / "seg_perception"
    assert (share / "launch" / "camera.launch.py").exists() and (share / "config" / "default.yaml").exists()


LAUNCH_VALUES = {
    "image_topic": "/front/image_raw", "camera_info_topic": "/front/camera_info", "depth_topic": "", "params_file": "",
    "model_path": "123", "namespace": "robot1", "image_transport": "", "backend": "onnxruntime",
    "use_sim_time": "true", "log_level": "debug",
}


def _check_node_action(kwargs: dict, share: Path) -> None:
    """What the launch file hands to launch_ros' Node for LAUNCH_VALUES."""
    assert (kwargs["package"], kwargs["executable"], kwargs["name"]) == ("seg_perception", "segmentation_node",
                                                                          "seg_perception")
    assert kwargs["namespace"] == "robot1"
    assert dict(kwargs["remappings"]) == {
        "image": "/front/image_raw", "image/compressed": "/front/image_raw/compressed",
        "camera_info": "/front/camera_info",
    }
    params_file, overrides = kwargs["parameters"]
    assert Path(params_file) == share / "config" / "default.yaml"
    assert overrides["use_sim_time"] is True
    assert set(overrides) == {"model_path", "backend", "use_sim_time"}  # empty arguments override nothing
    assert kwargs["arguments"] == ["--ros-args", "--log-level", "debug"]


def test_launch_setup_builds_one_node_with_remaps_and_overrides(monkeypatch):
    """The launch file's OpaqueFunction body, run with recording stand-ins for launch/launch_ros.

    The real packages are not on PyPI; where they are installed the next test runs them instead.
    """
    import sys
    import types

    from ament_index_python.packages import get_package_share_directory

    recorded: dict = {}

    class Node:
        def __init__(self, **kwargs):
            recorded.update(kwargs)

    class ParameterValue:
        def __init__(self, value, value_type=None):
            self.value, self.value_type = value, value_type

    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context[self.name]

    class SetEnvironmentVariable:
        def __init__(self, name, value):
            self.name, self.value = name, value

    fakes = {
        "launch": types.ModuleType("launch"), "launch.actions": types.ModuleType("launch.actions"),
        "launch.substitutions": types.ModuleType("launch.substitutions"),
        "launch_ros": types.ModuleType("launch_ros"), "launch_ros.actions": types.ModuleType("launch_ros.actions"),
        "launch_ros.parameter_descriptions": types.ModuleType("launch_ros.parameter_descriptions"),
    }
    fakes["launch.actions"].SetEnvironmentVariable = SetEnvironmentVariable
    fakes["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    fakes["launch_ros.actions"].Node = Node
    fakes["launch_ros.parameter_descriptions"].ParameterValue = ParameterValue
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    monkeypatch.delenv("FASTRTPS_DEFAULT_PROFILES_FILE", raising=False)

    actions = _launch_module()._launch_setup(dict(LAUNCH_VALUES))
    share = Path(get_package_share_directory("seg_perception"))
    _check_node_action(recorded, share)
    overrides = recorded["parameters"][1]
    assert (overrides["model_path"].value, overrides["model_path"].value_type) == ("123", str)
    env = {a.name: a.value for a in actions if isinstance(a, SetEnvironmentVariable)}
    assert "FASTDDS_DEFAULT_PROFILES_FILE" in env and Path(env["FASTDDS_DEFAULT_PROFILES_FILE"]).is_file()
    assert sum(isinstance(a, Node) for a in actions) == 1
    with pytest.raises(ValueError, match="does not exist"):
        _launch_module()._launch_setup({**LAUNCH_VALUES, "params_file": "/no/such/params.yaml"})
    # a depth topic remaps `depth` and turns depth on
    recorded.clear()
    _launch_module()._launch_setup({**LAUNCH_VALUES, "depth_topic": "/cam/aligned_depth_to_color/image_raw"})
    assert dict(recorded["remappings"])["depth"] == "/cam/aligned_depth_to_color/image_raw"
    assert recorded["parameters"][1]["depth.enabled"] is True


def test_launch_file_runs_where_launch_is_installed():
    """On a real ROS 2 install: the launch description is evaluated by `launch` itself."""
    launch = pytest.importorskip("launch", reason="`launch` is not on PyPI; runs on a real ROS 2 install")
    launch_ros_actions = pytest.importorskip("launch_ros.actions")
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    description = _launch_module().generate_launch_description()
    assert isinstance(description, launch.LaunchDescription)
    context = launch.LaunchContext()
    context.launch_configurations.update(LAUNCH_VALUES)
    declared = [e for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    assert {d.name for d in declared} >= CONTRACT_ARGS
    opaque = [e for e in description.entities if isinstance(e, OpaqueFunction)]
    assert len(opaque) == 1
    actions = opaque[0].execute(context) or []
    nodes = [a for a in actions if isinstance(a, launch_ros_actions.Node)]
    assert len(nodes) == 1
    assert (nodes[0].node_package, nodes[0].node_executable) == ("seg_perception", "segmentation_node")
    share = Path(get_package_share_directory("seg_perception"))
    assert (share / "config" / "default.yaml").is_file()


@pytest.mark.parametrize("name", ["default.yaml", "camvid.yaml"])
def test_params_files_set_only_declared_parameters(name):
    path = ROOT / "config" / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    params = yaml.safe_load(path.read_text())["/**"]["ros__parameters"]
    # camera_info.* is read by the demo's camera-info publisher, not by the node.
    unknown = {k for k in params if k not in PARAMETER_NAMES and not k.startswith("camera_info.")}
    assert not unknown, f"{name} sets parameters the node does not declare: {unknown}"


def test_default_yaml_lists_every_parameter_with_its_default():
    params = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())["/**"]["ros__parameters"]
    for p in PARAMETERS:
        if p.read_only:
            assert p.name not in params
            continue
        assert p.name in params, p.name
        assert params[p.name] == p.default, p.name


def test_node_starts_from_the_default_params_file(harness, start_node, tiny_model):
    node = start_node({"model_path": str(tiny_model)}, params_file=ROOT / "config" / "default.yaml")
    labels = harness.collect(Image, "/seg_perception/labels")
    pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    msg = numpy_to_image_msg(render_street(0, 60, 80).rgb, "rgb8", msg_cls=Image)
    assert harness.publish_until(pub, msg, lambda: len(labels) > 0, timeout=30), node.output


pytestmark = pytest.mark.ros


def test_namespaced_node_reads_the_shipped_params_file(harness, start_node, tiny_model):
    """Keyed ``/**:``, config/camvid.yaml reaches /robot1/seg_perception (a ``seg_perception:`` key did not)."""
    from rcl_interfaces.srv import GetParameters

    node = start_node({"model_path": str(tiny_model)}, {"__ns": "/robot1"}, params_file=ROOT / "config" / "camvid.yaml")
    client = harness.node.create_client(GetParameters, "/robot1/seg_perception/get_parameters")
    assert client.wait_for_service(timeout_sec=30.0), node.output
    future = client.call_async(GetParameters.Request(names=["drivable_classes", "obstacle_classes"]))
    assert harness.wait_for(future.done, 20.0)
    drivable, obstacles = (list(v.string_array_value) for v in future.result().values)
    assert drivable == ["road"]  # camvid.yaml's value, not the default []
    assert "pedestrian" in obstacles


def _launch_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("camera_launch_helpers", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]  # imports no `launch` at module level
    return module


def test_launch_helpers_overrides_params_file_and_profile(tmp_path):
    m = _launch_module()
    # Only non-empty string arguments override; values stay strings (no YAML parsing).
    assert m.string_overrides({"model_path": "", "backend": "onnxruntime", "image_transport": ""}) == {
        "backend": "onnxruntime"
    }
    for tricky in ("~", "null", "123", "true", "it's.onnx"):
        assert m.string_overrides({"model_path": tricky}) == {"model_path": tricky}
    assert m.parse_bool("use_sim_time", "True") is True and m.parse_bool("use_sim_time", "false") is False
    with pytest.raises(ValueError, match="use_sim_time"):
        m.parse_bool("use_sim_time", "yes please")
    with pytest.raises(ValueError, match="does not exist"):
        m.check_params_file(str(tmp_path / "missing.yaml"))
    from seg_perception.ros.transport import default_profile_path

    env = m.profile_environment({"ROS_DISTRO": "humble"})
    assert set(env) == {"FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"}
    assert all(v == str(default_profile_path()) and os.path.isfile(v) for v in env.values())
    assert set(m.profile_environment({"ROS_DISTRO": "kilted"})) == {"FASTDDS_DEFAULT_PROFILES_FILE"}
    assert m.profile_environment({"FASTRTPS_DEFAULT_PROFILES_FILE": "/mine.xml"}) == {}
    assert m.profile_environment({"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}) == {}
