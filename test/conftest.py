"""Shared fixtures: a tiny generated ONNX segmentation model (never a committed untrained model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from seg_perception.camvid import CAMVID_CLASSES

CAMVID_CLASSES = CAMVID_CLASSES
DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "camvid"


def make_tiny_onnx(path: Path, num_classes: int = 11, seed: int = 0, stride: int = 1) -> Path:
    """Write a dynamic-size ONNX model: 1x1 conv (optionally at 1/stride resolution) -> logits, plus its YAML.

    Input "input" [1, 3, H, W] float32, output "logits" [1, K, H/stride, W/stride].
    """
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, (num_classes, 3, 1, 1)).astype(np.float32)
    b = rng.normal(0, 0.1, (num_classes,)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["input", "W", "B"], ["logits"], strides=[stride, stride])]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, num_classes, "h", "w"])],
        [
            helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel()),
            helper.make_tensor("B", TensorProto.FLOAT, b.shape, b),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    names = CAMVID_CLASSES if num_classes == 11 else [f"class_{i}" for i in range(num_classes)]
    meta = {
        "name": path.stem,
        "class_names": names,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "input_size": None,
        "size_divisor": 1,
        "ignore_index": 11,
        "drivable_classes": ["road"] if num_classes == 11 else [],
        "obstacle_classes": ["car", "pedestrian"] if num_classes == 11 else [],
    }
    path.with_suffix(".yaml").write_text(yaml.safe_dump(meta))
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 11-class CamVid-named ONNX model with dynamic H/W (path to the .onnx; YAML beside it)."""
    return make_tiny_onnx(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="session")
def camvid_dir() -> Path:
    """The shared CamVid folder; tests needing it skip when it is absent."""
    if not (DATA_DIR / "test.txt").exists():
        pytest.skip(f"CamVid not found at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture(scope="session")
def camvid_or_none() -> Path | None:
    """The shared CamVid folder, or None (tests then use synthetic frames)."""
    return DATA_DIR if (DATA_DIR / "test.txt").exists() else None
