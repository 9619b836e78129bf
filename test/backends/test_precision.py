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


def _model(folder: Path, name: str, nodes: list, inits: list, out_hw: tuple[int, int] = (16, 24)) -> Path:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        inits,
    )
    path = folder / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    meta = {"class_names": ["a", "b", "c"], "input_size": [16, 24], "mean": [0.5] * 3, "std": [0.25] * 3}
    path.with_suffix(".yaml").write_text(yaml.safe_dump(meta))
    return path


def _weights(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.random.default_rng(2).normal(0, 0.5, shape).astype(np.float32), name)


def _pad_conv_resize_model(folder: Path) -> Path:
    """Pad -> Conv -> Relu -> Conv -> Resize x2: the shapes the INT8 recipe is about."""
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [
        helper.make_node("Pad", ["input", "pads"], ["padded"], mode="constant"),
        helper.make_node("Conv", ["padded", "w1"], ["c1"]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"]),
        helper.make_node("Resize", ["c2", "", "scales"], ["logits"], mode="linear"),
    ]
    return _model(folder, "padnet", nodes, [pads, scales, _weights("w1", (8, 3, 3, 3)), _weights("w2", (3, 8, 1, 1))])


def test_int8_recipe_fuses_pad_leaves_final_resize_float_and_counts_qdq(tmp_path: Path) -> None:
    src = _pad_conv_resize_model(tmp_path)
    calib, val = _images(tmp_path / "train", 5), _images(tmp_path / "val", 3)
    out = tmp_path / "padnet_int8.onnx"
    card = precision.quantize_int8(
        src, calib, out, calib_images=5, verify_images=3, use_cache=False, verify_dir=val, keep_image_conv_float=False
    )
    graph = onnx.load(str(out)).graph
    ops = [n.op_type for n in graph.node]
    producer = {o: n.op_type for n in graph.node for o in n.output}
    # The model's own Pad was folded into the Conv before Q/DQ insertion; the one Pad left is the
    # recipe's channel pad of the quantized image (3 -> 4 channels, for MLAS's fast int8 conv).
    pads = [n for n in graph.node if n.op_type == "Pad"]
    assert len(pads) == 1 and producer[pads[0].input[0]] == "QuantizeLinear"
    assert card["rewrites"]["padded_image_channels"] and card["rewrites"]["image_pads_after_quantize"] == 1
    assert producer["logits"] == "Resize"  # no full-resolution Q -> DQ pair after the last Resize
    assert card["recipe_version"] == precision.RECIPE_VERSION and "Resize" not in card["quantized_op_types"]
    census = card["graph"]
    assert census["QuantizeLinear"] == ops.count("QuantizeLinear") > 0
    assert census["wrapped_ops"]["Conv"] == 2 and census["float_ops"]["Resize"] == 1
    assert card["verification_folder"] == str(val) and card["verification"]["images"] == 3


def test_int8_recipe_keeps_the_image_fed_conv_float_by_default(tmp_path: Path) -> None:
    src = _pad_conv_resize_model(tmp_path)
    calib = _images(tmp_path / "train", 5)
    out = tmp_path / "padnet_int8.onnx"
    card = precision.quantize_int8(src, calib, out, calib_images=5, verify_images=2, use_cache=False)
    graph = onnx.load(str(out)).graph
    producer = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    fed = [[producer[i].op_type if i in producer else "graph" for i in c.input] for c in convs]
    assert fed[0][0] == "graph" and "DequantizeLinear" not in fed[0]  # float weights, the image as is
    assert fed[1][:2] == ["DequantizeLinear", "DequantizeLinear"]  # the next one runs in int8
    assert card["float_nodes"] == [convs[0].name] and card["graph"]["wrapped_ops"]["Conv"] == 1


def test_int8_recipe_reads_shapes_from_quantized_tensors(tmp_path: Path) -> None:
    """The logits are resized to the image's size, read through Shape: no float DQ just for a shape."""

    def ints(name: str, values: list[int]) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(values, np.int64), name)

    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"]),
        # N from the quantized inner tensor (c2 itself is a sliced 16-channel conv by now).
        helper.make_node("Shape", ["r1"], ["s1"]),
        helper.make_node("Slice", ["s1", "zero", "one"], ["n"]),
        helper.make_node("Shape", ["input"], ["si"]),
        helper.make_node("Slice", ["si", "two", "four"], ["hw"]),
        helper.make_node("Concat", ["n", "three", "hw"], ["sizes"], axis=0),
        helper.make_node("Resize", ["c2", "", "", "sizes"], ["logits"], mode="linear"),
    ]
    inits = [_weights("w1", (8, 3, 3, 3)), _weights("w2", (3, 8, 1, 1)), ints("zero", [0]), ints("two", [2])]
    src = _model(tmp_path, "shapenet", nodes, [*inits, ints("one", [1]), ints("three", [3]), ints("four", [4])])
    out = tmp_path / "shapenet_int8.onnx"
    card = precision.quantize_int8(src, _images(tmp_path / "train", 5), out, calib_images=5, verify_images=0)
    graph = onnx.load(str(out)).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    shapes = [n for n in graph.node if n.op_type == "Shape"]
    assert card["rewrites"]["shapes_read_quantized"] == 1
    assert sorted(producer.get(n.input[0], "graph") for n in shapes) == ["QuantizeLinear", "graph"]
    assert precision.shapes_read_quantized(out) == 0  # nothing left to rewire
    import onnxruntime as ort

    x = np.random.default_rng(3).random((1, 3, 16, 24), dtype=np.float32)
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert got.shape == ref.shape == (1, 3, 16, 24) and np.abs(got - ref).max() < 0.25 * np.abs(ref).max()


def test_qdq_census_of_a_float_model_lists_everything_as_float(tmp_path: Path) -> None:
    from seg_perception.backends.quant_recipe import qdq_census

    census = qdq_census(_tiny_model(tmp_path))
    assert census == {"QuantizeLinear": 0, "DequantizeLinear": 0, "wrapped_ops": {}, "float_ops": {"Conv": 1}}


def test_fp16_conversion_keeps_fp32_io_verifies_and_caches(tmp_path: Path) -> None:
    pytest.importorskip("onnxconverter_common")
    from seg_perception.backends.precision_fp16 import convert_fp16

    src = _pad_conv_resize_model(tmp_path)
    val = _images(tmp_path / "val", 4)
    out = tmp_path / "out" / "padnet_fp16.onnx"
    card = convert_fp16(src, out, verify_dir=val, verify_images=4, cache_dir=tmp_path / "c")
    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert {i.data_type for i in model.graph.initializer if i.name.startswith("w")} == {TensorProto.FLOAT16}
    ver = card["verification"]
    assert ver["images"] == 4 and ver["label_agreement"] >= 0.99 and ver["max_logit_diff"] < 0.1
    assert yaml.safe_load(precision.card_path(out).read_text())["precision"] == "fp16"
    assert out.with_suffix(".yaml").exists() and card["cached"] is False
    again = convert_fp16(src, out, verify_dir=val, verify_images=4, cache_dir=tmp_path / "c")
    assert again["cached"] is True


def test_fp16_model_for_uses_a_sibling_made_from_this_model(tmp_path: Path) -> None:
    pytest.importorskip("onnxconverter_common")
    from seg_perception.backends.precision_fp16 import convert_fp16, fp16_model_for

    src = _tiny_model(tmp_path)
    sibling = tmp_path / "tiny_fp16.onnx"
    convert_fp16(src, sibling, use_cache=False)
    assert fp16_model_for(src) == sibling


def test_quantize_cli_fp16_and_int8_without_calib(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxconverter_common")
    from seg_perception.cli import main

    src = _tiny_model(tmp_path)
    val = _images(tmp_path / "val", 3)
    out = tmp_path / "tiny_fp16.onnx"
    argv = ["quantize", "--precision", "fp16", "--model", str(src), "--verify-dir", str(val), "--out", str(out)]
    assert main([*argv, "--verify-images", "2", "--no-cache"]) == 0
    assert "label agreement" in capsys.readouterr().out and out.exists()
    assert main(["quantize", "--model", str(src), "--out", str(tmp_path / "x_int8.onnx")]) == 2
    assert "needs --calib" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["camvid", "camvid_fast"])
def test_shipped_int8_siblings_are_current_and_agree_with_fp32_on_a_real_photo(name: str) -> None:
    from skimage import data

    from seg_perception.backends.calibration import make_preprocess
    from seg_perception.backends.onnxruntime import OnnxRuntimeBackend
    from seg_perception.model_spec import ModelSpec

    src = Path(__file__).resolve().parents[2] / "models" / f"{name}.onnx"
    sibling = precision.int8_model_for(src)  # no calibration folder: only a current sibling passes
    card = yaml.safe_load(precision.card_path(sibling).read_text())
    assert sibling.name == f"{name}_int8.onnx" and card["recipe_version"] == precision.RECIPE_VERSION
    assert card["verification"]["label_agreement"] > 0.99
    trt = precision.int8_model_for(src, target="tensorrt")  # checked against TensorRT's Q/DQ rules
    trt_card = yaml.safe_load(precision.card_path(trt).read_text())
    assert trt.name == f"{name}_int8_trt.onnx" and trt_card["recipe_version"] == precision.RECIPE_VERSION
    assert trt_card["target"] == "tensorrt" and trt_card["verification"]["label_agreement"] > 0.99
    spec = ModelSpec.for_model(src)
    frame = cv2.resize(data.astronaut(), (480, 360), interpolation=cv2.INTER_AREA)
    tensor = make_preprocess(spec, (360, 480))(frame)
    fp32 = OnnxRuntimeBackend(src, num_threads=1)
    int8 = OnnxRuntimeBackend(src, num_threads=1, precision="int8")
    assert int8.precision == "int8" and int8.model_path == sibling
    a, b = fp32.infer(tensor).argmax(1), int8.infer(tensor).argmax(1)
    # An out-of-domain photo has many near-ties (96 % on an AVX-512 VNNI CPU vs 99.6 % on CamVid
    # val frames), and int8 arithmetic differs between CPUs: a margin, not a tight bound.
    assert a.shape == (1, 360, 480) and (a == b).mean() > 0.90


def test_int8_model_for_tensorrt_uses_its_own_flavour_and_refuses_a_cpu_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from seg_perception.errors import ModelError

    monkeypatch.setattr(precision, "precision_cache_dir", lambda: tmp_path / "cache")
    src = _tiny_model(tmp_path)
    calib = _images(tmp_path / "imgs", 6)
    with pytest.raises(ConfigError, match="--target tensorrt"):
        precision.int8_model_for(src, target="tensorrt")
    made = precision.int8_model_for(src, calib, target="tensorrt")
    assert made.name == "tiny_int8_trt_auto.onnx" and precision.tensorrt_qdq_problems(made) == []
    # An ONNX Runtime Q/DQ model (uint8, zero points, int32 biases) is never handed to TensorRT:
    cpu = tmp_path / "tiny_int8.onnx"
    precision.quantize_int8(src, calib, cpu, calib_images=4, verify_images=0, use_cache=False)
    assert precision.int8_model_for(src, calib) == cpu  # ...while ONNX Runtime uses it
    trt_sibling = tmp_path / "tiny_int8_trt.onnx"
    shutil.copyfile(cpu, trt_sibling)
    card = yaml.safe_load(precision.card_path(cpu).read_text())
    precision.card_path(trt_sibling).write_text(yaml.safe_dump({**card, "target": "tensorrt"}))
    with pytest.raises(ModelError, match="cannot be parsed by TensorRT: .*UINT8"):
        precision.int8_model_for(src, target="tensorrt")
    precision.card_path(trt_sibling).write_text(yaml.safe_dump(card))  # an ORT card: not this target's
    with pytest.raises(ConfigError):
        precision.int8_model_for(src, target="tensorrt")
    with pytest.raises(ConfigError, match="unknown INT8 target"):
        precision.int8_model_for(src, calib, target="openvino")
