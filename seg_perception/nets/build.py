"""Network construction from a ``model`` config dict, and parameter counting."""

from __future__ import annotations

from torch import nn

from seg_perception.errors import ModelError
from seg_perception.nets.ctx_seg import CtxSegNet
from seg_perception.nets.lite_seg import LiteSegNet

__all__ = ["build_model", "count_parameters"]


def build_model(cfg: dict | None = None, num_classes: int = 11, load_pretrained: bool = True) -> nn.Module:
    """Build a model from a ``model`` config dict (``name`` selects the class, other keys = its args).

    ``name``: ``CtxSegNet`` (default) or ``LiteSegNet`` (EfficientNet-Lite0 encoder,
    :mod:`seg_perception.nets.lite_seg`). Keys set to null are ignored. ``load_pretrained=False`` skips reading
    pretrained encoder weights (for loading a checkpoint that overwrites them anyway).
    """
    # null keys are dropped: a derived config unsets what its base set for another model
    cfg = {k: v for k, v in (cfg or {}).items() if v is not None}
    name = str(cfg.pop("name", "CtxSegNet"))
    cfg.setdefault("num_classes", num_classes)
    try:
        if name == "LiteSegNet":
            if not load_pretrained:
                cfg["pretrained"] = False
            return LiteSegNet(**cfg)
        if name != "CtxSegNet":
            raise ModelError(f"unknown model name {name!r} (use 'CtxSegNet' or 'LiteSegNet')")
        return CtxSegNet(**cfg)
    except TypeError as exc:
        raise ModelError(f"invalid model config {cfg}: {exc}") from exc


def count_parameters(model: nn.Module, include_aux: bool = False) -> int:
    """Number of parameters (the aux head is excluded unless ``include_aux``)."""
    return sum(p.numel() for n, p in model.named_parameters() if include_aux or not n.startswith("aux_head"))
