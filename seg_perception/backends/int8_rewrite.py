"""Exact fp32 graph rewrites that put a model's depthwise convolutions on ONNX Runtime's fast int8 kernels.

Applied by the INT8 recipe (``precision.quantize_int8``) to the pre-optimized fp32 graph,
before Q/DQ nodes are inserted. Each rewrite leaves the function unchanged up to float
rounding; the recipe verifies the result against the source model anyway.

1. ``merge_parallel_depthwise``: ``DW_a(x) + DW_b(x)``, two centred stride-1 depthwise
   convolutions of the same tensor summed (CtxSegNet's local + dilated context branches),
   becomes one depthwise convolution whose kernel holds both sets of taps, when that kernel is
   at most ``max_kernel`` wide (a 3x3 plus a 3x3 of dilation 2 is one 5x5). In int8 the pair
   costs two QLinearConvs and a QLinearAdd, and fp32 fuses none of them.
2. ``pad_depthwise_groups``: ORT's symmetric depthwise kernel (MLAS ``ConvSym``) takes only
   group counts that are a multiple of 16 on x86; others fall back to a slow generic path.
   A depthwise convolution of C channels is padded to the next multiple with all-zero
   filters, together with the convolution that produces its input (zero output filters and
   bias) and the convolution that consumes the result (zero input weights). Zero channels
   stay zero through Relu and Add, so the outputs are unchanged.
3. ``pad_image_channels``: MLAS's symmetric int8 convolution (``ConvSym``, the fast path of
   ``QLinearConv``) takes input channel counts that are a multiple of 4 only. A quantized
   convolution fed by a 3-channel image gets a 4th, all-zero input channel: a ``Pad`` of the
   image and a zero weight column. (After Q/DQ insertion, ``quant_recipe.image_pads_after_quantize``
   moves the Pad behind the image's QuantizeLinear, so it pads uint8 instead of float.)
4. ``pad_narrow_convs``: ``ConvSym`` also wants at least 16 output channels. A dense
   convolution with fewer (the 11-class classifier) gets zero filters up to 16 and a ``Slice``
   that drops them again.

Why and the measured effect on CtxSegNet: docs/deploying.md, "INT8 recipe".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Group alignment of MLAS's symmetric int8 depthwise kernel on x86 (8 on ARM64).
DEPTHWISE_ALIGN = 16
#: Widest merged kernel: a 3x3 plus a 3x3 of dilation 2. A dilation-4 pair would make a 9x9
#: kernel (81 taps for 18), slower than the three ops it replaces.
MAX_MERGED_KERNEL = 5
#: Input channel alignment and minimum output channels of MLAS's symmetric int8 dense convolution.
DENSE_INPUT_ALIGN = 4
DENSE_MIN_OUTPUTS = 16
#: Ops a zero channel passes through as zero (Relu(0) = 0, 0 + 0 = 0).
_ZERO_PRESERVING = ("Relu", "Add")


@dataclass
class RewriteReport:
    """What ``rewrite_for_int8`` changed (for the model card).

    Attributes:
        merged_depthwise: names of the Add nodes whose two depthwise inputs became one conv.
        padded_groups: ``[channels, padded_channels]`` per padded channel region.
        padded_image_channels: names of the image-fed convs given a channel-padded input.
        padded_narrow_convs: ``[name, outputs, padded_outputs]`` per conv widened and sliced back.
    """

    merged_depthwise: list[str] = field(default_factory=list)
    padded_groups: list[list[int]] = field(default_factory=list)
    padded_image_channels: list[str] = field(default_factory=list)
    padded_narrow_convs: list[list[Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "merged_depthwise": list(self.merged_depthwise),
            "padded_groups": [list(g) for g in self.padded_groups],
            "padded_image_channels": list(self.padded_image_channels),
            "padded_narrow_convs": [list(c) for c in self.padded_narrow_convs],
        }

    def changed(self) -> bool:
        return any(self.as_dict().values())


class _Graph:
    """Index of an ONNX graph: producers, consumers, initializers (numpy) and their use counts."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.model, self.graph, self._nh = model, model.graph, numpy_helper
        self.init = {t.name: t for t in self.graph.initializer}
        self.reindex()

    def reindex(self) -> None:
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.consumers: dict[str, list[Any]] = {}
        self.uses: dict[str, int] = {}
        for n in self.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
                self.uses[i] = self.uses.get(i, 0) + 1
        self.outputs = {o.name for o in self.graph.output}

    def array(self, name: str) -> np.ndarray:
        return self._nh.to_array(self.init[name])

    def set_array(self, name: str, value: np.ndarray) -> None:
        self.init[name].CopyFrom(self._nh.from_array(value, name))

    def add_initializer(self, name: str, value: np.ndarray) -> None:
        tensor = self._nh.from_array(value, name)
        self.graph.initializer.append(tensor)
        self.init[name] = self.graph.initializer[-1]

    def owned(self, names: Iterable[str]) -> bool:
        """True when every named initializer exists and is used by one node input only."""
        return all(n in self.init and self.uses.get(n, 0) == 1 for n in names)

    def drop_unused_initializers(self) -> None:
        used = {i for n in self.graph.node for i in n.input}
        keep = [t for t in self.graph.initializer if t.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(keep)
        self.init = {t.name: t for t in self.graph.initializer}


def node_attr(node: Any, name: str, default: Any = None) -> Any:
    """The value of ONNX ``node``'s attribute ``name`` (strings as bytes), or ``default``."""
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _set_int_attr(node: Any, name: str, value: int) -> None:
    for a in node.attribute:
        if a.name == name:
            a.i = value
            return


def _weights(g: _Graph, node: Any) -> np.ndarray | None:
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in g.init:
        return None
    if len(node.input) > 2 and node.input[2] and node.input[2] not in g.init:
        return None
    if node_attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    w = g.array(node.input[1])
    return w if w.ndim == 4 else None


def _is_depthwise(g: _Graph, node: Any) -> bool:
    w = _weights(g, node)
    return w is not None and w.shape[1] == 1 and int(node_attr(node, "group", 1)) == w.shape[0] > 1


def _is_dense(g: _Graph, node: Any) -> bool:
    return _weights(g, node) is not None and int(node_attr(node, "group", 1)) == 1


def _centred(g: _Graph, node: Any) -> tuple[np.ndarray, int, int] | None:
    """(weights C x 1 x k x k, dilation, radius) of a stride-1 depthwise conv padded to keep its size."""
    if not _is_depthwise(g, node):
        return None
    w = g.array(node.input[1])
    k = w.shape[2]
    dil = list(node_attr(node, "dilations", [1, 1]))
    if w.shape[3] != k or dil[0] != dil[1] or list(node_attr(node, "strides", [1, 1])) != [1, 1]:
        return None
    span = dil[0] * (k - 1)
    if span % 2 or list(node_attr(node, "pads", [0, 0, 0, 0])) != [span // 2] * 4:
        return None
    return w, dil[0], span // 2


def _bias(g: _Graph, node: Any, channels: int) -> np.ndarray:
    if len(node.input) > 2 and node.input[2]:
        return g.array(node.input[2]).astype(np.float32)
    return np.zeros(channels, np.float32)


def merge_parallel_depthwise(model: Any, max_kernel: int = MAX_MERGED_KERNEL) -> list[str]:
    """Replace summed depthwise pairs of one tensor by one depthwise conv, in place; the Add names merged."""
    from onnx import helper

    g = _Graph(model)
    merged: list[str] = []
    for add in [n for n in g.graph.node if n.op_type == "Add" and len(n.input) == 2]:
        a, b = (g.producer.get(i) for i in add.input)
        if a is None or b is None or a is b or a.input[0] != b.input[0]:
            continue
        ca, cb = _centred(g, a), _centred(g, b)
        if ca is None or cb is None or ca[0].shape[0] != cb[0].shape[0]:
            continue
        if any(len(g.consumers[n.output[0]]) != 1 or n.output[0] in g.outputs for n in (a, b)):
            continue
        radius = max(ca[2], cb[2])
        kernel = 2 * radius + 1
        if kernel > max_kernel:
            continue
        channels = ca[0].shape[0]
        w = np.zeros((channels, 1, kernel, kernel), np.float32)
        for taps, dil, r in (ca, cb):
            k = taps.shape[2]
            off = radius - r
            w[:, :, off : off + dil * (k - 1) + 1 : dil, off : off + dil * (k - 1) + 1 : dil] += taps
        bias = _bias(g, a, channels) + _bias(g, b, channels)
        wname, bname = f"{add.name or add.output[0]}_dw_w", f"{add.name or add.output[0]}_dw_b"
        g.add_initializer(wname, w)
        g.add_initializer(bname, bias)
        conv = helper.make_node(
            "Conv",
            [a.input[0], wname, bname],
            [add.output[0]],
            name=f"{add.name or add.output[0]}_dw_merged",
            group=channels,
            kernel_shape=[kernel, kernel],
            pads=[radius] * 4,
            strides=[1, 1],
            dilations=[1, 1],
        )
        nodes = list(g.graph.node)
        g.graph.node.insert(nodes.index(add), conv)
        for n in (a, b, add):
            g.graph.node.remove(n)
        g.reindex()
        merged.append(add.name or add.output[0])
    g.drop_unused_initializers()
    return merged


def _channel_region(g: _Graph, start: str) -> tuple[set[str], set[str], set[str], set[str]] | None:
    """The tensors sharing ``start``'s channels through Relu, Add and depthwise convs.

    Returns (tensors, producing dense convs, depthwise/elementwise nodes, consuming dense
    convs), or None when the region touches anything that cannot take zero channels.
    """
    tensors: set[str] = set()
    sources: set[str] = set()
    inner: set[str] = set()
    sinks: set[str] = set()
    stack = [start]
    while stack:
        t = stack.pop()
        if t in tensors:
            continue
        if t in g.outputs:
            return None
        tensors.add(t)
        p = g.producer.get(t)
        if p is None:
            return None  # a graph input or an initializer
        if _is_dense(g, p):
            sources.add(p.name)
        elif _is_depthwise(g, p) or p.op_type in _ZERO_PRESERVING:
            inner.add(p.name)
            stack.extend(p.input[:1] if p.op_type == "Conv" else p.input)
        else:
            return None
        for c in g.consumers.get(t, []):
            if _is_depthwise(g, c) and c.input[0] == t:
                inner.add(c.name)
                stack.append(c.output[0])
            elif c.op_type in _ZERO_PRESERVING:
                inner.add(c.name)
                stack.extend([c.output[0], *c.input])
            elif _is_dense(g, c) and c.input[0] == t:
                sinks.add(c.name)
            else:
                return None
    return tensors, sources, inner, sinks


def _pad_axis(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, size - a.shape[axis])
    return np.pad(a, widths)


def pad_depthwise_groups(model: Any, align: int = DEPTHWISE_ALIGN) -> list[list[int]]:
    """Pad depthwise channel counts up to a multiple of ``align``, in place; ``[C, padded]`` per region."""
    g = _Graph(model)
    by_name = {n.name: n for n in g.graph.node}
    if len(by_name) != len(g.graph.node):
        return []  # unnamed or duplicate names: regions cannot be tracked (optimize_basic names all)
    padded: list[list[int]] = []
    done: set[str] = set()
    for dw in [n for n in g.graph.node if _is_depthwise(g, n)]:
        channels = g.array(dw.input[1]).shape[0]
        if channels % align == 0 or dw.name in done:
            continue
        region = _channel_region(g, dw.input[0])
        if region is None:
            continue
        tensors, sources, inner, sinks = region
        convs = [by_name[n] for n in sources | sinks | inner if by_name[n].op_type == "Conv"]
        if not sources or not sinks or not g.owned(i for c in convs for i in c.input[1:] if i):
            continue
        target = -(-channels // align) * align
        depthwise = {n for n in inner if by_name[n].op_type == "Conv"}
        for c in (by_name[n] for n in sources | depthwise):  # zero output filters (and bias)
            for i in c.input[1:3]:
                if i:
                    g.set_array(i, _pad_axis(g.array(i), 0, target))
            if c.name in depthwise:
                _set_int_attr(c, "group", target)
                done.add(c.name)
        for c in (by_name[n] for n in sinks):
            g.set_array(c.input[1], _pad_axis(g.array(c.input[1]), 1, target))
        # Shapes recorded for the region's tensors are stale now: ORT re-infers them.
        keep = [v for v in g.graph.value_info if v.name not in tensors]
        del g.graph.value_info[:]
        g.graph.value_info.extend(keep)
        padded.append([int(channels), int(target)])
    return padded


def pad_image_channels(model: Any, convs: Iterable[str], align: int = DENSE_INPUT_ALIGN) -> list[str]:
    """Pad the input channels of the named image-fed dense convs to a multiple of ``align``, in place.

    The image (a graph input) is padded with zero channels by one ``Pad`` per input and size,
    and each conv's weights get zero columns for them: the outputs are unchanged. Returns the
    names of the convs rewired; convs not fed by a graph input, already aligned or sharing
    their weights are left alone.
    """
    from onnx import helper

    g = _Graph(model)
    inputs = {i.name for i in g.graph.input if i.name not in g.init}
    wanted, done = set(convs), []
    pads: dict[tuple[str, int], str] = {}
    for node in list(g.graph.node):
        if node.name not in wanted or not _is_dense(g, node) or node.input[0] not in inputs:
            continue
        w = g.array(node.input[1])
        if w.shape[1] % align == 0 or not g.owned(node.input[1:2]):
            continue
        target = -(-w.shape[1] // align) * align
        key = (node.input[0], target)
        if key not in pads:
            name = f"{node.input[0]}_channels_{target}"
            widths = np.zeros(2 * w.ndim, np.int64)
            widths[w.ndim + 1] = target - w.shape[1]  # after the last channel (axis 1)
            g.add_initializer(name + "_pads", widths)
            pad = helper.make_node("Pad", [node.input[0], name + "_pads"], [name], name=name, mode="constant")
            g.graph.node.insert(0, pad)  # reads only a graph input: first is a valid topological place
            pads[key] = name
        g.set_array(node.input[1], _pad_axis(w, 1, target))
        node.input[0] = pads[key]
        done.append(node.name)
    return done


def pad_narrow_convs(model: Any, minimum: int = DENSE_MIN_OUTPUTS) -> list[list[Any]]:
    """Widen dense convs with fewer than ``minimum`` output channels by zero filters, sliced off after; in place.

    Each such conv gets zero filters (and bias) up to ``minimum`` and writes to a new tensor; a
    ``Slice`` on axis 1 gives back the original tensor, so consumers are unchanged. Returns
    ``[name, outputs, minimum]`` per conv widened.
    """
    from onnx import helper

    g = _Graph(model)
    widened: list[list[Any]] = []
    for node in list(g.graph.node):
        if not _is_dense(g, node):
            continue
        params = [i for i in node.input[1:3] if i]
        outputs = g.array(node.input[1]).shape[0]
        if outputs >= minimum or not g.owned(params):
            continue
        for i in params:
            g.set_array(i, _pad_axis(g.array(i), 0, minimum))
        sliced, wide = node.output[0], node.output[0] + "_widened"
        stem = wide + "_slice"
        for suffix, value in (("_starts", 0), ("_ends", outputs), ("_axes", 1)):
            g.add_initializer(stem + suffix, np.array([value], np.int64))
        node.output[0] = wide
        cut = helper.make_node("Slice", [wide, stem + "_starts", stem + "_ends", stem + "_axes"], [sliced], name=stem)
        g.graph.node.insert(list(g.graph.node).index(node) + 1, cut)
        widened.append([node.name, int(outputs), int(minimum)])
    return widened


def rewrite_for_int8(model: Any, image_convs: Iterable[str] = ()) -> RewriteReport:
    """Apply the rewrites to an ONNX ``ModelProto`` in place (merge first: it can remove a pair to pad).

    ``image_convs``: the image-fed convs that will be quantized (the others keep the image as is).
    """
    report = RewriteReport()
    report.merged_depthwise = merge_parallel_depthwise(model)
    report.padded_groups = pad_depthwise_groups(model)
    report.padded_image_channels = pad_image_channels(model, image_convs)
    report.padded_narrow_convs = pad_narrow_convs(model)
    return report


def rewrite_file(path: Any, image_convs: Iterable[str] = ()) -> RewriteReport:
    """``rewrite_for_int8`` on the ONNX file at ``path``, saved back in place."""
    import onnx

    model = onnx.load(str(path))
    report = rewrite_for_int8(model, image_convs)
    if report.changed():
        onnx.save(model, str(path))
    return report
