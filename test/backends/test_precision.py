"""INT8 Q/DQ quantization: a tiny conv model, a folder of images, cache and card."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from seg_perception.backends import precision
from seg_perception.errors import ConfigError


def _tiny_model(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (3, 3, 3, 3)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["input", "w"], ["logits"], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 24])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 16, 24])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = folder / "tiny.onnx"
    onnx.save(model, str(path))
    meta = {"class_names": ["a", "b", "c"], "input_size": [16, 24], "mean": [0.5] * 3, "std": [0.25] * 3}
    path.with_suffix(".yaml").write_text(yaml.safe_dump(meta))
    return path


def _images(folder: Path, n: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(n):
        cv2.imwrite(str(folder / f"f{i:02d}.png"), rng.integers(0, 255, (16, 24, 3), dtype=np.uint8))
    return folder


def test_quantize_writes_qdq_model_card_metadata_and_reuses_cache(tmp_path: Path) -> None:
    src = _tiny_model(tmp_path)
    calib = _images(tmp_path / "imgs", 8)
    out = tmp_path / "out" / "tiny_int8.onnx"
    card = precision.quantize_int8(src, calib, out, calib_images=5, verify_images=3, cache_dir=tmp_path / "c")
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert out.with_suffix(".yaml").exists()
    written = yaml.safe_load(precision.card_path(out).read_text())
    assert written["calibration_images"] == 5 and written["verification"]["images"] == 3
    assert written["verification"]["label_agreement"] > 0.8
    assert card["cached"] is False
    again = precision.quantize_int8(src, calib, out, calib_images=5, verify_images=3, cache_dir=tmp_path / "c")
    assert again["cached"] is True


def test_calibration_and_verification_frames_are_disjoint(tmp_path: Path) -> None:
    calib, verify = precision.split_images(_images(tmp_path / "imgs", 10), 4, 3)
    assert len(calib) == 4 and len(verify) == 3 and not set(calib) & set(verify)


def test_int8_model_for_needs_a_model_or_calibration(tmp_path: Path) -> None:
    src = _tiny_model(tmp_path)
    with pytest.raises(ConfigError, match="seg-perception quantize"):
        precision.int8_model_for(src)


def test_onnxruntime_int8_runs_the_qdq_sibling_and_refuses_fp16(tmp_path: Path) -> None:
    from seg_perception.backends import create_backend

    src = _tiny_model(tmp_path)
    calib = _images(tmp_path / "imgs", 6)
    precision.quantize_int8(src, calib, tmp_path / "tiny_int8.onnx", calib_images=4, verify_images=2, use_cache=False)
    with create_backend("onnxruntime", src, precision="int8") as be:
        assert be.model_path.name == "tiny_int8.onnx" and "int8" in be.description
        assert be.infer(np.zeros((1, 3, 16, 24), np.float32)).shape == (1, 3, 16, 24)
    with pytest.raises(ConfigError, match="fp16"):
        create_backend("onnxruntime", src, precision="fp16")


def test_auto_reports_precision_and_lowers_int8_without_a_qdq_model(tmp_path: Path) -> None:
    from seg_perception.backends.select import select_backend

    src = _tiny_model(tmp_path)
    sel = select_backend("auto", src, precision="int8", auto_order=["onnxruntime:cpu"])
    assert sel.precision == "fp32" and "precision fp32" in sel.summary
    assert any("cannot run int8" in n for n in sel.notes)
