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
from seg_perception.node_config import PARAMETER_NAMES, PARAMETERS
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


def test_launch_file_runs_where_launch_is_installed():
    launch = pytest.importorskip("launch", reason="`launch` is not on PyPI; runs on a real ROS 2 install")
    import importlib.util

    spec = importlib.util.spec_from_file_location("camera_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    assert isinstance(module.generate_launch_description(), launch.LaunchDescription)


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
