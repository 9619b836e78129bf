"""Training checkpoints (``last.pt``, ``final_ema.pt``) back into networks."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seg_perception.errors import ModelError
from seg_perception.nets.build import build_model

__all__ = ["checkpoint_weights", "load_checkpoint_model"]


def checkpoint_weights(ck: dict, path: str | Path, use_ema: bool = True) -> dict:
    """The model state dict inside a loaded checkpoint of either format training writes.

    ``last.pt`` holds ``model`` and ``ema`` (EMA weights unless ``use_ema`` is false);
    ``final_ema.pt`` holds the EMA weights under ``model``.

    Raises:
        ModelError: ``ck`` is neither format (``path`` names it in the message).
    """
    if "ema" in ck:
        return ck["ema"]["ema"] if use_ema else ck["model"]
    if "model" in ck:
        return ck["model"]
    raise ModelError(f"{path} is not a seg_perception checkpoint (keys {sorted(ck)[:5]})")


def load_checkpoint_model(ckpt: str | Path, config: dict | None = None, use_ema: bool = True) -> tuple[nn.Module, dict]:
    """Load a CtxSegNet or LiteSegNet from ``final_ema.pt`` (EMA state dict) or ``last.pt`` (training checkpoint).

    Returns (model in eval mode, info dict with ``mean``, ``std``, ``model_config``, ``epoch``).
    """
    path = Path(ckpt)
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelError(f"cannot read checkpoint {path}: {exc}") from exc
    cfg = config or ck.get("config") or {}
    state = checkpoint_weights(ck, path, use_ema)
    if "ema" in ck:  # training checkpoint (last.pt)
        mcfg = (ck.get("config") or cfg).get("model", {})
        data = (ck.get("config") or cfg).get("data", {})
        info = {"mean": data.get("mean"), "std": data.get("std"), "epoch": int(ck.get("epoch", -1)) + 1}
    else:  # final_ema.pt
        mcfg = ck.get("model_config") or cfg.get("model", {})
        info = {"mean": ck.get("mean"), "std": ck.get("std"), "epoch": ck.get("epoch")}
    if info["mean"] is None or info["std"] is None:
        data = cfg.get("data", {})
        info["mean"], info["std"] = data.get("mean"), data.get("std")
    if info["mean"] is None or info["std"] is None:
        raise ModelError("mean/std are neither in the checkpoint nor in the config")
    model = build_model(mcfg, load_pretrained=False)  # the checkpoint holds every weight
    state = {k: v for k, v in state.items() if not k.startswith("aux_head")}
    model.aux_head = None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"checkpoint {path} does not match model config {mcfg}: {exc}") from exc
    info["model_config"] = dict(mcfg)
    return model.eval(), info
