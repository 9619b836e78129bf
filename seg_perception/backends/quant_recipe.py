"""The graph side of the INT8 recipe: ORT basic pre-optimization, which op types get Q/DQ, a census.

Why these choices (measured on CtxSegNet and LiteSegNet): docs/deploying.md, "INT8 recipe".
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

from seg_perception.backends.int8_rewrite import node_attr
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
    _name_nodes(Path(dst))
    return Path(dst)


def _name_nodes(path: Path) -> None:
    """Give unnamed nodes a unique name: the quantizer excludes nodes by name only."""
    model = _onnx(path)
    names = {n.name for n in model.graph.node if n.name}
    unnamed = [n for n in model.graph.node if not n.name]
    if not unnamed:
        return
    for i, node in enumerate(unnamed):
        name = f"{node.op_type}_{i}"
        while name in names:
            name += "_"
        node.name = name
        names.add(name)
    import onnx

    onnx.save(model, str(path))


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


def image_convs(model_path: str | Path) -> list[str]:
    """Names of the Conv nodes fed directly by the graph's input image (kept float by the recipe).

    Why: with 3 input channels a stem filter has only 27 weights per output channel, so
    per-channel int8 weights and the quantized image together cost LiteSegNet 0.7 points of
    label agreement on val frames; in float it cost no measurable time (docs/deploying.md).
    Nodes without a name cannot be excluded by ONNX Runtime's quantizer and are skipped
    (``optimize_basic`` names them all); a model whose convolutions are all image-fed gets none.
    """
    return _image_convs(_onnx(model_path).graph)


def _image_convs(graph: Any) -> list[str]:
    initializers = {t.name for t in graph.initializer}
    inputs = {i.name for i in graph.input if i.name not in initializers}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    fed = [n.name for n in convs if n.name and n.input and n.input[0] in inputs]
    return fed if len(fed) < len(convs) else []  # a model of image-fed convs only stays all int8


#: Ops looked through when asking what an image-fed convolution's output feeds.
_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "HardSwish", "Sigmoid")


def image_convs_to_keep_float(model_path: str | Path) -> list[str]:
    """The ``image_convs`` that the recipe leaves float: those whose output does not feed a MaxPool.

    Why: a float stem hands the integer part its first tensor in NCHW. Where that tensor
    (after the stem's activation) feeds a MaxPool, ONNX Runtime runs the pool on uint8 in NCHW
    and wraps the NHWC QLinearConvs that follow in layout Transposes: CtxSegNet's INT8 model
    was 1.37x fp32 that way and 0.96x with the stem quantized, at the same label agreement
    (docs/deploying.md).
    """
    graph = _onnx(model_path).graph
    consumers = _consumers(graph)

    def feeds_maxpool(tensor: str, depth: int = 0) -> bool:
        for c in consumers[tensor]:
            if c.op_type == "MaxPool" or (
                c.op_type in _ACTIVATIONS and depth < 3 and any(feeds_maxpool(o, depth + 1) for o in c.output)
            ):
                return True
        return False

    by_name = {n.name: n for n in graph.node}
    return [name for name in _image_convs(graph) if not any(feeds_maxpool(o) for o in by_name[name].output)]


def _consumers(graph: Any) -> collections.defaultdict[str, list[Any]]:
    """Tensor name -> the nodes that read it (empty list for none)."""
    consumers: collections.defaultdict[str, list[Any]] = collections.defaultdict(list)
    for n in graph.node:
        for i in n.input:
            consumers[i].append(n)
    return consumers


def qdq_census(model_path: str | Path) -> dict[str, Any]:
    """Counts of a Q/DQ model: QuantizeLinear, DequantizeLinear, ops wrapped by Q/DQ, ops left float.

    An op is "wrapped" when one of its inputs comes from a DequantizeLinear and all of its
    outputs feed QuantizeLinear nodes; every other op (Constant excluded) is "float".
    """
    graph = _onnx(model_path).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    consumers = _consumers(graph)
    counts: collections.Counter[str] = collections.Counter()
    wrapped: collections.Counter[str] = collections.Counter()
    left: collections.Counter[str] = collections.Counter()
    for n in graph.node:
        if n.op_type in _QDQ:
            counts[n.op_type] += 1
        elif n.op_type != "Constant":
            from_dq = any(producer.get(i) == "DequantizeLinear" for i in n.input)
            to_q = all(consumers[o] and {c.op_type for c in consumers[o]} == {"QuantizeLinear"} for o in n.output)
            (wrapped if from_dq and to_q else left)[n.op_type] += 1
    return {
        "QuantizeLinear": counts["QuantizeLinear"],
        "DequantizeLinear": counts["DequantizeLinear"],
        "wrapped_ops": dict(sorted(wrapped.items())),
        "float_ops": dict(sorted(left.items())),
    }


def shapes_read_quantized(model_path: str | Path) -> int:
    """Make each Shape node fed by a DequantizeLinear read the DQ's quantized input; saved in place.

    Exact (a DequantizeLinear keeps its input's shape). Why: the dynamic Resize sizes come from
    ``Shape`` of inner tensors, and ORT otherwise runs a full float DequantizeLinear of that
    tensor only to read its shape (about 0.3 ms of CtxSegNet's 9 ms, docs/deploying.md).
    Returns the number of Shape nodes rewired.
    """
    model = _onnx(model_path)
    producer = {o: n for n in model.graph.node for o in n.output}
    rewired = 0
    for node in model.graph.node:
        src = producer.get(node.input[0]) if node.op_type == "Shape" and node.input else None
        if src is not None and src.op_type == "DequantizeLinear":
            node.input[0] = src.input[0]
            rewired += 1
    if rewired:
        import onnx

        # A DequantizeLinear read by nothing else now is dead: drop it.
        used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
        dead = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] not in used]
        for n in dead:
            model.graph.node.remove(n)
        onnx.save(model, str(model_path))
    return rewired


def image_pads_after_quantize(model_path: str | Path) -> int:
    """Move each Pad of a graph input behind the input's QuantizeLinear, padding uint8; saved in place.

    ``int8_rewrite.pad_image_channels`` pads the float image with zero channels before the
    first QuantizeLinear. Quantizing first and padding the quantized tensor with the zero
    point is exact (the zero point dequantizes to 0.0) and moves a quarter of the bytes: on
    CtxSegNet the Pad went from about 0.2 ms to 0.04 ms (docs/deploying.md). Only a constant
    Pad of zeros read by a single per-tensor QuantizeLinear is moved. Returns the number moved.
    """
    model = _onnx(model_path)
    graph = model.graph
    init = {t.name: t for t in graph.initializer}
    inputs = {i.name for i in graph.input if i.name not in init}
    consumers = _consumers(graph)
    moved = 0
    for pad in [n for n in graph.node if n.op_type == "Pad" and n.input and n.input[0] in inputs]:
        readers = consumers[pad.output[0]]
        q = readers[0] if len(readers) == 1 else None
        if q is None or q.op_type != "QuantizeLinear" or len(q.input) < 3 or q.input[2] not in init:
            continue
        if list(init[q.input[2]].dims) or node_attr(pad, "mode", b"constant") not in (b"constant", "constant"):
            continue
        if len(pad.input) > 2 and pad.input[2] and not _is_zero(init.get(pad.input[2])):
            continue
        quantized = q.output[0]
        q.input[0], q.output[0] = pad.input[0], quantized + "_unpadded"
        del pad.input[2:]
        pad.input[0] = q.output[0]
        pad.input.append(q.input[2])  # pad value: the zero point, i.e. 0.0 once dequantized
        stale = {pad.output[0], quantized}
        pad.output[0] = quantized
        nodes = [n for n in graph.node if n is not pad]
        nodes.insert(nodes.index(q) + 1, pad)
        del graph.node[:]
        graph.node.extend(nodes)
        keep = [v for v in graph.value_info if v.name not in stale]
        del graph.value_info[:]
        graph.value_info.extend(keep)
        moved += 1
    if moved:
        import onnx

        onnx.save(model, str(model_path))
    return moved


def _is_zero(tensor: Any) -> bool:
    from onnx import numpy_helper

    return tensor is not None and not numpy_helper.to_array(tensor).any()


def _zero_point(node: Any, init: dict[str, Any]) -> Any:
    """A Q/DQ node's zero-point initializer, or None when it has none."""
    return init.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None


#: Element types TensorRT's ONNX parser takes for Q/DQ data (INT8 always; FP8 and INT4 from 10.x).
_TENSORRT_QDQ_TYPES = {"INT8", "FLOAT8E4M3FN", "INT4"}


def tensorrt_qdq_problems(model_path: str | Path) -> list[str]:
    """Why TensorRT's ONNX parser would refuse this Q/DQ model: one line per kind of defect, [] if none.

    TensorRT quantizes symmetrically: Q/DQ data must be signed INT8 (or FP8/INT4), every zero
    point 0, int8 weights within [-127, 127], and no DequantizeLinear of INT32 (biases stay
    float). ONNX Runtime's CPU recipe
    (uint8 activations with zero points, int32 biases) breaks all three; the ``tensorrt``
    target of ``precision.quantize_int8`` meets them. Checked statically, without TensorRT.
    """
    from onnx import TensorProto, numpy_helper

    graph = _onnx(model_path).graph
    init = {t.name: t for t in graph.initializer}
    dtype = {name: t.data_type for name, t in init.items()}
    for n in graph.node:
        if n.op_type == "QuantizeLinear":
            zp = _zero_point(n, init)
            dtype[n.output[0]] = zp.data_type if zp is not None else node_attr(n, "output_dtype", TensorProto.UINT8)
    bad_types: collections.Counter[str] = collections.Counter()
    nonzero = full_range = 0
    for n in graph.node:
        if n.op_type not in _QDQ:
            continue
        weights = init.get(n.input[0]) if n.op_type == "DequantizeLinear" else None
        if (
            weights is not None
            and weights.data_type == TensorProto.INT8
            and (numpy_helper.to_array(weights) < -127).any()
        ):
            full_range += 1
        data = n.output[0] if n.op_type == "QuantizeLinear" else n.input[0]
        name = TensorProto.DataType.Name(dtype.get(data, TensorProto.UNDEFINED))
        if name not in _TENSORRT_QDQ_TYPES:
            bad_types[f"{n.op_type} of {name}"] += 1
        zp = _zero_point(n, init)
        if zp is not None and numpy_helper.to_array(zp).any():
            nonzero += 1
    problems = [
        f"{count} {kind} (TensorRT takes signed INT8 Q/DQ; biases must stay float)"
        for kind, count in sorted(bad_types.items())
    ]
    if nonzero:
        problems.append(f"{nonzero} Q/DQ nodes with a non-zero zero point (TensorRT quantizes symmetrically)")
    if full_range:
        problems.append(f"{full_range} int8 weight tensors use -128 (TensorRT takes weights in [-127, 127])")
    return problems
