"""Runtime parameters over DDS: read-only structural ones, ranges in descriptors, refused and applied changes."""

from __future__ import annotations

import pytest
from nav_msgs.msg import OccupancyGrid
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, SetParameters
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from seg_perception.conversions.image import numpy_to_image_msg
from seg_perception.errors import ConfigError
from seg_perception.node_config import NodeConfig
from seg_perception.synthetic.street import render_street

pytestmark = pytest.mark.ros

NODE = "/seg_perception"


def _call(harness, srv_type: type, name: str, request: object) -> object:
    client = harness.node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=20.0), f"{name} not available"
    future = client.call_async(request)
    assert harness.wait_for(future.done, 20.0), f"{name} did not answer"
    return future.result()


def _set(harness, name: str, value: ParameterValue) -> object:
    req = SetParameters.Request(parameters=[Parameter(name=name, value=value)])
    return _call(harness, SetParameters, f"{NODE}/set_parameters", req).results[0]


def _double(v: float) -> ParameterValue:
    return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=v)


def _strings(v: list[str]) -> ParameterValue:
    return ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=v)


def _info(w: int = 120, h: int = 90, fx: float = 100.0) -> CameraInfo:
    msg = CameraInfo(width=w, height=h)
    msg.k = [fx, 0.0, (w - 1) / 2, 0.0, fx, (h - 1) / 2, 0.0, 0.0, 1.0]
    msg.d = [0.0] * 5
    msg.distortion_model = "plumb_bob"
    return msg


def test_core_refuses_structural_and_invalid_changes():
    cfg = NodeConfig()
    with pytest.raises(ConfigError, match="read-only at run time"):
        cfg.with_changes({"backend": "onnxruntime"})
    with pytest.raises(ConfigError, match="overlay_alpha"):
        cfg.with_changes({"overlay_alpha": 1.5})
    with pytest.raises(ConfigError, match="grid"):
        cfg.with_changes({"grid.x_min": 30.0})  # beyond x_max
    assert cfg.with_changes({"grid.resolution": 0.05}).grid.resolution == 0.05
    assert cfg.grid.resolution == 0.10  # the original is unchanged


def test_set_reject_and_apply_over_dds(harness, start_node, tiny_model):
    node = start_node({"model_path": str(tiny_model), "camera_pose.rpy": [0.0, 0.2, 0.0], "grid.x_max": 12.0})
    grids = harness.collect(OccupancyGrid, f"{NODE}/occupancy_grid")
    img_pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    info_pub = harness.node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    msg = numpy_to_image_msg(render_street(3, 90, 120).rgb, "rgb8", msg_cls=Image)
    msg.header.frame_id = "cam"

    # Descriptors carry the read-only flag and the ranges.
    names = ["backend", "model_path", "qos.depth", "overlay_alpha", "grid.resolution"]
    desc = _call(harness, DescribeParameters, f"{NODE}/describe_parameters", DescribeParameters.Request(names=names))
    by_name = {d.name: d for d in desc.descriptors}
    assert by_name["backend"].read_only and by_name["model_path"].read_only and by_name["qos.depth"].read_only
    assert "onnxruntime" in by_name["backend"].additional_constraints
    assert not by_name["overlay_alpha"].read_only and not by_name["grid.resolution"].read_only
    rng = by_name["overlay_alpha"].floating_point_range[0]
    assert (rng.from_value, rng.to_value) == (0.0, 1.0)
    assert by_name["qos.depth"].integer_range[0].to_value == 100

    # Refused, with a reason.
    r = _set(harness, "backend", ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="foo"))
    assert not r.successful and "read-only" in r.reason
    r = _set(harness, "overlay_alpha", _double(1.5))
    assert not r.successful and r.reason
    r = _set(harness, "grid.x_min", _double(50.0))
    assert not r.successful and "grid" in r.reason
    r = _set(harness, "drivable_classes", _strings(["no_such_class"]))
    assert not r.successful and "no_such_class" in r.reason, r.reason

    # Grid before the change.
    assert harness.publish_until(info_pub, _info(), lambda: False, timeout=1.0) is False
    assert harness.publish_until(img_pub, msg, lambda: len(grids) > 0), node.output
    assert grids[-1].info.resolution == pytest.approx(0.10)

    # Accepted and applied at the next frame.
    r = _set(harness, "grid.resolution", _double(0.05))
    assert r.successful, r.reason
    assert harness.publish_until(
        img_pub, msg, lambda: grids[-1].info.resolution == pytest.approx(0.05), timeout=20.0
    ), node.output
    g = grids[-1]
    assert sorted((g.info.width, g.info.height)) == [240, 400]  # 12 m x 20 m at 0.05 m
    assert node.proc.poll() is None
