"""Recover a warm-start checkpoint from an exported ONNX model (when ``runs/`` was lost).

The TorchScript exporter folds each BatchNorm into the convolution before it, so an exported
model holds ``W' = W * g / sqrt(v + eps)`` and ``b' = (b - m) * g / sqrt(v + eps) + beta``.
This module maps the ONNX ``Conv`` nodes back onto the network's convolutions (in execution
order, shapes checked) and writes each folded pair as the convolution ``W'`` plus an identity
BatchNorm (mean 0, variance ``1 - eps``, weight 1, bias ``b'``). The result computes the same
function in eval mode; it is only a valid starting point for training with frozen BatchNorm
statistics (``train.freeze_bn: true``), which the trainer enforces (``bn_folded`` in the file).
Why and how it was used: docs/models.md ("Recovered warm start").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from seg_perception.errors import ModelError
from seg_perception.nets.build import build_model

__all__ = ["conv_bn_order", "recover_checkpoint"]


def conv_bn_order(model: nn.Module, x: torch.Tensor) -> list[tuple[nn.Conv2d, nn.BatchNorm2d | None]]:
    """Convolutions of ``model.forward(x)`` in execution order, each with the BatchNorm that reads its output.

    ``model`` must be in eval mode; the auxiliary head (training only) is not run.
    """
    calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []  # (module, input, output), held alive
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: calls.append((mod, inp[0], out)))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d | None]] = []
    for (mod, _, out), nxt in zip(calls, [*calls[1:], None], strict=True):
        if isinstance(mod, nn.Conv2d):
            reads_it = nxt is not None and isinstance(nxt[0], nn.BatchNorm2d) and nxt[1] is out
            pairs.append((mod, nxt[0] if reads_it else None))
    return pairs


def _onnx_convs(onnx_path: Path) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weight, bias or None) of every ``Conv`` node, in graph order (the exporter's trace order)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as err:
        raise ModelError("recovering a checkpoint needs the onnx package") from err
    try:
        graph = onnx.load(str(onnx_path)).graph
    except Exception as err:  # onnx raises several types for unreadable files
        raise ModelError(f"cannot read {onnx_path}: {err}") from err
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        w = inits.get(node.input[1])
        b = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if w is None:
            raise ModelError(f"{onnx_path}: Conv {node.name} has a computed weight; cannot recover")
        convs.append((w, b))
    return convs


def recover_checkpoint(
    onnx_path: str | Path, config: dict, out: str | Path, size: tuple[int, int] = (360, 480)
) -> dict:
    """Write ``out`` (``final_ema.pt`` format) holding the weights of ``onnx_path`` for ``config['model']``.

    The auxiliary head, absent from the ONNX, keeps its fresh initialisation. Verifies the
    recovered network against ONNX Runtime on one random input of ``size`` (H, W).

    Returns: {"convs": n, "folded_bn": n, "max_abs_diff": float, "out": str}.

    Raises:
        ModelError: the ONNX does not match the configured architecture, or verification fails.
    """
    onnx_path = Path(onnx_path)
    mcfg = dict(config["model"])
    model = build_model(mcfg, load_pretrained=False).eval()
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    pairs = conv_bn_order(model, x)
    convs = _onnx_convs(onnx_path)
    if len(pairs) != len(convs):
        raise ModelError(f"{onnx_path} has {len(convs)} Conv nodes, the configured model runs {len(pairs)}")
    folded = 0
    with torch.no_grad():
        for k, ((conv, bn), (w, b)) in enumerate(zip(pairs, convs, strict=True)):
            if tuple(conv.weight.shape) != w.shape:
                raise ModelError(f"Conv #{k}: ONNX weight {w.shape} vs model {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(np.array(w)))
            bias = torch.from_numpy(np.array(b)) if b is not None else torch.zeros(w.shape[0])
            if bn is not None:
                if conv.bias is not None:
                    conv.bias.zero_()
                bn.weight.fill_(1.0)
                bn.bias.copy_(bias)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                folded += 1
            elif conv.bias is not None:
                conv.bias.copy_(bias)
            elif b is not None and np.any(b != 0):
                raise ModelError(f"Conv #{k}: the ONNX has a bias but the model's conv has neither bias nor BN")
        ref = model(x).numpy()
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    except Exception as err:  # ORT raises its own exception types
        raise ModelError(f"cannot run {onnx_path} for verification: {err}") from err
    diff = float(np.max(np.abs(got - ref)))
    if not diff < 1e-3:
        raise ModelError(f"recovered network differs from {onnx_path}: max |logit diff| {diff:.2e}")
    data = config.get("data", {})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": {k: v.cpu() for k, v in model.state_dict().items()},
            "model_config": mcfg,
            "mean": data.get("mean"),
            "std": data.get("std"),
            "trained_on": None,
            "epoch": None,
            "recovered_from": str(onnx_path),
            "bn_folded": True,
        },
        out,
    )
    return {"convs": len(convs), "folded_bn": folded, "max_abs_diff": diff, "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    """``python -m seg_perception.training.recover --onnx models/camvid.onnx --config ... --out ...``."""
    import argparse

    from seg_perception.training.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", required=True, help="exported model (e.g. models/camvid.onnx)")
    ap.add_argument("--config", required=True, help="the training config it was trained with")
    ap.add_argument("--out", required=True, help="checkpoint to write (final_ema.pt format)")
    args = ap.parse_args(argv)
    print(recover_checkpoint(args.onnx, load_config(args.config), args.out))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
