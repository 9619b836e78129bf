"""Exact depthwise rewrites before INT8 quantization: merges, group padding, their refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from seg_perception.backends import int8_rewrite
from seg_perception.backends.quant_recipe import image_convs_to_keep_float

ort = pytest.importorskip("onnxruntime")

C = 24  # CtxSegNet's first context width: not a multiple of 16


def _w(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)


def _context_block(
    *, dilation: int = 2, extra: list[onnx.NodeProto] | None = None, outputs: tuple[str, ...] = ("y",)
) -> onnx.ModelProto:
    """stem conv 3->C, Relu; 3x3 dw + 3x3 dw (``dilation``) summed, Relu, residual Add; 1x1 conv C->8."""
    rng = np.random.default_rng(0)
    inits = [
        _w(rng, "w0", (C, 3, 3, 3)),
        _w(rng, "b0", (C,)),
        _w(rng, "wa", (C, 1, 3, 3)),
        _w(rng, "ba", (C,)),
        _w(rng, "wb", (C, 1, 3, 3)),
        _w(rng, "bb", (C,)),
        _w(rng, "w1", (8, C, 1, 1)),
        _w(rng, "b1", (8,)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="stem", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r"], name="relu0"),
        helper.make_node("Conv", ["r", "wa", "ba"], ["da"], name="dw_a", group=C, pads=[1] * 4),
        helper.make_node(
            "Conv", ["r", "wb", "bb"], ["db"], name="dw_b", group=C, pads=[dilation] * 4, dilations=[dilation] * 2
        ),
        helper.make_node("Add", ["da", "db"], ["s"], name="ctx_add"),
        helper.make_node("Relu", ["s"], ["s2"], name="relu1"),
        helper.make_node("Add", ["s2", "r"], ["t"], name="residual"),
        helper.make_node("Conv", ["t", "w1", "b1"], ["y"], name="proj"),
        *(extra or []),
    ]
    shapes = {"y": [1, 8, 16, 20], "r": [1, C, 16, 20], "cat": [1, 2 * C, 16, 20], "y2": [1, 8, 16, 20]}
    graph = helper.make_graph(
        nodes,
        "ctx",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 20])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shapes[o]) for o in outputs],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})


def _x() -> np.ndarray:
    return np.random.default_rng(1).normal(0, 1, (1, 3, 16, 20)).astype(np.float32)


def _groups(model: onnx.ModelProto) -> dict[str, int]:
    out = {}
    for n in model.graph.node:
        if n.op_type == "Conv":
            out[n.name] = next((a.i for a in n.attribute if a.name == "group"), 1)
    return out


def test_context_block_is_merged_and_padded_with_unchanged_outputs() -> None:
    model = _context_block()
    before = _run(model, _x())
    report = int8_rewrite.rewrite_for_int8(model)
    onnx.checker.check_model(model)
    assert report.merged_depthwise == ["ctx_add"] and report.padded_groups == [[C, 32]]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 3 and ops.count("Add") == 1  # the pair and its Add became one conv
    merged = next(n for n in model.graph.node if n.name == "ctx_add_dw_merged")
    w = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == merged.input[1]))
    assert w.shape == (32, 1, 5, 5) and not w[C:].any()  # padded filters are all zero
    assert _groups(model)["ctx_add_dw_merged"] == 32
    after = _run(model, _x())
    np.testing.assert_allclose(after[0], before[0], atol=1e-5)


def test_merge_sums_taps_of_both_kernels_at_their_dilated_positions() -> None:
    model = _context_block()
    wa = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "wa"))
    wb = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "wb"))
    assert int8_rewrite.merge_parallel_depthwise(model) == ["ctx_add"]
    merged = next(n for n in model.graph.node if n.op_type == "Conv" and n.name.endswith("_merged"))
    w = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == merged.input[1]))
    assert w[0, 0, 2, 2] == pytest.approx(wa[0, 0, 1, 1] + wb[0, 0, 1, 1])  # shared centre tap
    assert w[0, 0, 0, 0] == pytest.approx(wb[0, 0, 0, 0]) and w[0, 0, 1, 1] == pytest.approx(wa[0, 0, 0, 0])
    assert w[0, 0, 0, 1] == 0  # dilation 2 leaves odd offsets empty
    assert not {"wa", "wb"} & {t.name for t in model.graph.initializer}  # old weights dropped


def test_a_dilation_4_pair_is_not_merged_but_still_padded_exactly() -> None:
    model = _context_block(dilation=4)
    before = _run(model, _x())
    report = int8_rewrite.rewrite_for_int8(model)
    assert report.merged_depthwise == [] and report.padded_groups == [[C, 32]]
    assert _groups(model)["dw_a"] == _groups(model)["dw_b"] == 32
    np.testing.assert_allclose(_run(model, _x())[0], before[0], atol=1e-5)


def test_a_region_feeding_a_concat_is_left_alone() -> None:
    cat = helper.make_node("Concat", ["r", "r"], ["cat"], name="cat", axis=1)
    model = _context_block(extra=[cat], outputs=("y", "cat"))
    before = _run(model, _x())
    report = int8_rewrite.rewrite_for_int8(model)
    assert report.padded_groups == [] and report.merged_depthwise == ["ctx_add"]
    assert _groups(model)["ctx_add_dw_merged"] == C
    for a, b in zip(_run(model, _x()), before, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_region_holding_a_graph_output_is_left_alone() -> None:
    model = _context_block(outputs=("y", "r"))
    assert int8_rewrite.pad_depthwise_groups(model) == []


def test_a_shared_initializer_blocks_padding() -> None:
    # A second conv reads the stem's weights: padding them would change its output too.
    other = helper.make_node("Conv", ["x", "w0", "b0"], ["c9"], name="other", pads=[1, 1, 1, 1])
    proj2 = helper.make_node("Conv", ["c9", "w1", "b1"], ["y2"], name="proj2")
    model = _context_block(extra=[other, proj2], outputs=("y", "y2"))
    assert int8_rewrite.pad_depthwise_groups(model) == []


def test_rewrite_file_leaves_an_untouched_model_byte_identical(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[1, 1, 1, 1])],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 8, 8])],
        [_w(rng, "w", (16, 3, 3, 3))],
    )
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    data = path.read_bytes()
    report = int8_rewrite.rewrite_file(path)  # no image conv named: its 3 channels stay
    assert not report.changed() and path.read_bytes() == data
    assert report.as_dict() == {
        "merged_depthwise": [],
        "padded_groups": [],
        "padded_image_channels": [],
        "padded_narrow_convs": [],
    }


@pytest.mark.parametrize(("pool", "expected"), [(False, ["stem"]), (True, [])])
def test_the_stem_stays_float_unless_it_feeds_a_maxpool(tmp_path: Path, pool: bool, expected: list[str]) -> None:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="stem", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r"], name="relu"),
    ]
    if pool:
        nodes.append(helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]))
    nodes.append(helper.make_node("Conv", ["p" if pool else "r", "w1"], ["y"], name="next"))
    size = 4 if pool else 8
    graph = helper.make_graph(
        nodes,
        "stem",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, size, size])],
        [_w(rng, "w0", (8, 3, 3, 3)), _w(rng, "w1", (4, 8, 1, 1))],
    )
    path = tmp_path / "stem.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert image_convs_to_keep_float(path) == expected


def _arrays(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_image_channels_and_narrow_convs_are_padded_for_the_fast_int8_conv_with_unchanged_outputs() -> None:
    model = _context_block()
    before = _run(model, _x())
    report = int8_rewrite.rewrite_for_int8(model, image_convs=["stem"])
    onnx.checker.check_model(model)
    assert report.padded_image_channels == ["stem"] and report.padded_narrow_convs == [["proj", 8, 16]]
    nodes = {n.name: n for n in model.graph.node}
    pad = model.graph.node[0]
    assert pad.op_type == "Pad" and pad.input[0] == "x" and nodes["stem"].input[0] == pad.output[0]
    weights = _arrays(model)
    stem = weights[nodes["stem"].input[1]]  # 32 filters: it also produces the padded depthwise groups
    assert stem.shape == (32, 4, 3, 3) and not stem[:, 3].any()
    assert weights[nodes["proj"].input[1]].shape == (16, 32, 1, 1) and not weights[nodes["proj"].input[2]][8:].any()
    cut = next(n for n in model.graph.node if n.op_type == "Slice")
    assert cut.input[0] == nodes["proj"].output[0] and cut.output[0] == "y"  # consumers see 8 channels again
    after = _run(model, _x())
    assert after[0].shape == (1, 8, 16, 20)
    np.testing.assert_allclose(after[0], before[0], atol=1e-5)


def test_a_float_stem_keeps_the_image_as_is() -> None:
    model = _context_block()
    report = int8_rewrite.rewrite_for_int8(model)  # no quantized image conv named
    assert report.padded_image_channels == [] and all(n.op_type != "Pad" for n in model.graph.node)


def _qdq_after_rewrites(tmp_path: Path, target: str = "onnxruntime") -> tuple[Path, Path]:
    import yaml

    from seg_perception.backends import precision

    src = tmp_path / "ctx.onnx"
    onnx.save(_context_block(), str(src))
    meta = {"class_names": [str(i) for i in range(8)], "input_size": [16, 20], "mean": [0.5] * 3, "std": [0.25] * 3}
    src.with_suffix(".yaml").write_text(yaml.safe_dump(meta))
    frames = tmp_path / "frames"
    frames.mkdir(exist_ok=True)
    rng = np.random.default_rng(4)
    import cv2

    for i in range(6):
        cv2.imwrite(str(frames / f"f{i}.png"), rng.integers(0, 255, (16, 20, 3), dtype=np.uint8))
    out = tmp_path / f"ctx_{target}.onnx"
    precision.quantize_int8(
        src, frames, out, calib_images=4, verify_images=2, use_cache=False, keep_image_conv_float=False, target=target
    )
    return src, out


def test_the_image_pad_moves_behind_the_quantizer_and_pads_the_zero_point(tmp_path: Path) -> None:
    from seg_perception.backends import quant_recipe

    _src, out = _qdq_after_rewrites(tmp_path)
    model = onnx.load(str(out))
    producer = {o: n for n in model.graph.node for o in n.output}
    pad = next(n for n in model.graph.node if n.op_type == "Pad")
    q = producer[pad.input[0]]
    assert q.op_type == "QuantizeLinear" and q.input[0] == "x" and pad.input[2] == q.input[2]
    # Exact: padding the uint8 image with its zero point equals quantizing the zero-padded float
    # image, as the graph did before the move (rebuilt here: float Pad first, then the Q).
    back = onnx.load(str(out))
    bq = next(n for n in back.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    bpad = next(n for n in back.graph.node if n.op_type == "Pad")
    bq.input[0], bq.output[0] = "x_padded_float", pad.output[0]
    bpad.input[0], bpad.output[0] = "x", "x_padded_float"
    del bpad.input[2:]  # constant 0.0
    nodes = [n for n in back.graph.node if n is not bq]
    nodes.insert(nodes.index(bpad) + 1, bq)
    del back.graph.node[:]
    back.graph.node.extend(nodes)
    np.testing.assert_array_equal(_run(model, _x())[0], _run(back, _x())[0])
    assert quant_recipe.image_pads_after_quantize(out) == 0  # nothing left to move


def test_tensorrt_target_meets_the_parsers_qdq_rules_and_the_cpu_one_does_not(tmp_path: Path) -> None:
    from seg_perception.backends.quant_recipe import tensorrt_qdq_problems

    src, trt_model = _qdq_after_rewrites(tmp_path, "tensorrt")
    _, ort_model = _qdq_after_rewrites(tmp_path, "onnxruntime")
    assert tensorrt_qdq_problems(trt_model) == []
    problems = " | ".join(tensorrt_qdq_problems(ort_model))
    assert "QuantizeLinear of UINT8" in problems and "DequantizeLinear of INT32" in problems
    assert "non-zero zero point" in problems
    model = onnx.load(str(trt_model))
    arrays = _arrays(model)
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2:
            assert arrays[n.input[2]].dtype == np.int8 and not arrays[n.input[2]].any()
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert all(arrays[c.input[2]].dtype == np.float32 for c in convs if len(c.input) > 2)  # float biases
    assert all(n.op_type not in ("Pad", "Slice") for n in model.graph.node)  # no CPU-kernel rewrites
    got, ref = _run(model, _x())[0], _run(onnx.load(str(src)), _x())[0]
    assert np.abs(got - ref).max() < 0.25 * np.abs(ref).max()  # fake-quantized on ORT CPU: close to fp32
    # TensorRT's int8 weights span [-127, 127]: a -128 (full-range int8) is reported.
    weight = next(t for t in model.graph.initializer if t.data_type == TensorProto.INT8 and len(t.dims) == 4)
    w = numpy_helper.to_array(weight).copy()
    w.flat[0] = -128
    weight.CopyFrom(numpy_helper.from_array(w, weight.name))
    onnx.save(model, str(trt_model))
    expected = "1 int8 weight tensors use -128 (TensorRT takes weights in [-127, 127])"
    assert tensorrt_qdq_problems(trt_model) == [expected]
