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
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [_w(rng, "w", (4, 3, 3, 3))],
    )
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    data = path.read_bytes()
    report = int8_rewrite.rewrite_file(path)
    assert report.as_dict() == {"merged_depthwise": [], "padded_groups": []} and path.read_bytes() == data


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
