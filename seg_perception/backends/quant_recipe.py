"""The graph side of the INT8 recipe: ORT basic pre-optimization, which op types get Q/DQ, a census.

Why these choices (measured on CtxSegNet and LiteSegNet): docs/deploying.md, "INT8 recipe".
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

from seg_perception.errors import BackendUnavailable, ModelError

#: Op types given Q/DQ pairs: ORT CPU runs each as an integer kernel (QLinearConv, QLinearAdd, ...).
#: Resize and Pad are left out: ORT runs them in float between a DQ and a Q anyway, and a
#: quantized Resize at the output adds a full-resolution Q -> DQ pair.
QDQ_OP_TYPES = (
    "Conv",
    "ConvTranspose",
    "MatMul",
    "Gemm",
    "Add",
    "Mul",
    "Concat",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Relu",
    "Clip",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
)
_QDQ = ("QuantizeLinear", "DequantizeLinear")


def optimize_basic(src: str | Path, dst: str | Path) -> Path:
    """Write ``src`` after ONNX Runtime's basic (hardware-independent) graph optimizations to ``dst``.

    Constant folding and Pad -> Conv fusion must happen before Q/DQ nodes are inserted:
    afterwards a DQ between Pad and Conv blocks the fusion. The result holds ONNX ops only
    and keeps the dynamic input dimensions.
    """
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise BackendUnavailable(f"onnxruntime is not installed: {err}") from err
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(dst)
    opts.log_severity_level = 3
    try:
        ort.InferenceSession(str(src), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as err:
        raise ModelError(f"cannot optimize ONNX model {src}: {err}") from err
    return Path(dst)


def _onnx(path: str | Path) -> Any:
    try:
        import onnx
    except ImportError as err:
        raise BackendUnavailable(f"the onnx package is not installed: {err}") from err
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise ModelError(f"cannot read ONNX model {path}: {err}") from err


def ops_to_quantize(model_path: str | Path) -> list[str]:
    """The op types of ``model_path`` that get Q/DQ pairs (sorted; a subset of QDQ_OP_TYPES)."""
    present = {n.op_type for n in _onnx(model_path).graph.node}
    return sorted(present & set(QDQ_OP_TYPES))


def qdq_census(model_path: str | Path) -> dict[str, Any]:
    """Counts of a Q/DQ model: QuantizeLinear, DequantizeLinear, ops wrapped by Q/DQ, ops left float.

    An op is "wrapped" when one of its inputs comes from a DequantizeLinear and all of its
    outputs feed QuantizeLinear nodes; every other op (Constant excluded) is "float".
    """
    graph = _onnx(model_path).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    consumers: dict[str, list[str]] = collections.defaultdict(list)
    for n in graph.node:
        for i in n.input:
            consumers[i].append(n.op_type)
    counts: collections.Counter[str] = collections.Counter()
    wrapped: collections.Counter[str] = collections.Counter()
    left: collections.Counter[str] = collections.Counter()
    for n in graph.node:
        if n.op_type in _QDQ:
            counts[n.op_type] += 1
        elif n.op_type != "Constant":
            from_dq = any(producer.get(i) == "DequantizeLinear" for i in n.input)
            to_q = all(consumers[o] and set(consumers[o]) == {"QuantizeLinear"} for o in n.output)
            (wrapped if from_dq and to_q else left)[n.op_type] += 1
    return {
        "QuantizeLinear": counts["QuantizeLinear"],
        "DequantizeLinear": counts["DequantizeLinear"],
        "wrapped_ops": dict(sorted(wrapped.items())),
        "float_ops": dict(sorted(left.items())),
    }
