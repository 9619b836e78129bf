"""scripts/profile_ort.py: per-op and per-node kernel times of two models side by side."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "profile_ort.py"
pytest.importorskip("onnxruntime")


def _script():
    spec = importlib.util.spec_from_file_location("profile_ort", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(path: Path, relu: bool) -> Path:
    # Element-wise ops only: ORT fuses an activation into a Conv and renames NCHWc nodes.
    w = numpy_helper.from_array(np.full((1, 3, 1, 1), 0.5, np.float32), "w")
    nodes = [helper.make_node("Mul", ["input", "w"], ["c"], name="stem_mul")]
    nodes.append(helper.make_node("Relu" if relu else "Sigmoid", ["c"], ["logits"], name="act"))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_profiles_two_models_per_op_type_and_lists_matching_nodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _model(tmp_path / "a.onnx", relu=True), _model(tmp_path / "b.onnx", relu=False)
    argv = [str(a), str(b), "--size", "16", "24", "--runs", "3", "--threads", "1", "--top", "0", "--match", "stem"]
    assert _script().main(argv) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert "a.onnx" in header and "b.onnx" in header
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[3:] if line and not line[0].isspace()}
    assert "Sigmoid" in rows and len(rows["Sigmoid"]) == 2 and float(rows["Sigmoid"][0]) == 0  # only b has one
    assert out.count("stem_mul") == 2  # the matching node, once per model
