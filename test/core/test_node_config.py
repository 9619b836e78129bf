"""Parameter table and NodeConfig validation (no ROS needed)."""

from __future__ import annotations

import pytest

from seg_perception.errors import ConfigError
from seg_perception.geometry.grid_spec import GridSpec
from seg_perception.node_config import NodeConfig
from seg_perception.node_params import PARAMETER_NAMES, PARAMETERS


def test_contract_parameters_are_declared():
    contract = {
        "model_path",
        "backend",
        "precision",
        "image_transport",
        "publish_overlay",
        "camera_pose.xyz",
        "camera_pose.rpy",
        "grid.frame_id",
        "grid.resolution",
        "grid.x_min",
        "grid.x_max",
        "grid.y_min",
        "grid.y_max",
        "drivable_classes",
        "obstacle_classes",
        "class_names",
    }
    assert contract <= set(PARAMETER_NAMES)
    assert all(p.description for p in PARAMETERS)


def test_defaults_round_trip():
    cfg = NodeConfig()
    assert NodeConfig.from_params(cfg.as_params()) == cfg
    assert NodeConfig.from_params({"grid.resolution": 0.2}).grid == GridSpec(resolution=0.2)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"backend": "cuda"}, "parameter backend"),
        ({"precision": "fp8"}, "parameter precision"),
        ({"image_transport": "theora"}, "parameter image_transport"),
        ({"grid.resolution": 0.0}, "parameter grid.resolution"),
        ({"grid.x_max": -5.0}, "grid.x_max"),
        ({"camera_pose.xyz": [0.0, 1.0]}, "parameter camera_pose.xyz"),
        ({"camera_pose.rpy": [0.0, float("nan"), 0.0]}, "parameter camera_pose.rpy"),
        ({"qos.depth": 0}, "parameter qos.depth"),
        ({"publish_overlay": "yes"}, "parameter publish_overlay"),
        ({"num_threads": 1.5}, "parameter num_threads"),
        ({"input_size": [360]}, "parameter input_size"),
        ({"overlay_alpha": 2.0}, "parameter overlay_alpha"),
        ({"no_such": 1}, "unknown parameter"),
        ({"grid.resolution": 0.0001}, "too large"),
    ],
)
def test_invalid_values_name_the_parameter(params, needle):
    with pytest.raises(ConfigError, match=needle):
        NodeConfig.from_params(params)


def test_empty_model_path_means_bundled_default():
    assert NodeConfig().resolved_model_path().name == "camvid.onnx"
    assert str(NodeConfig(model_path="~/m.onnx").resolved_model_path()).startswith("/")
