"""Optimisation helpers: the weight EMA, AdamW parameter groups and the LR schedule."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["ModelEMA", "lr_lambda", "param_groups"]


class ModelEMA:
    """Exponential moving average of model weights; BN buffers are copied.

    decay_t = min(decay, (1 + t) / (10 + t)) ramps up early in training.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        msd = model.state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])

    def state_dict(self) -> dict:
        return {"ema": self.ema.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, sd: dict) -> None:
        self.ema.load_state_dict(sd["ema"])
        self.updates = int(sd["updates"])


def param_groups(model: nn.Module, weight_decay: float, lr: float, encoder_lr_mult: float = 1.0) -> list[dict]:
    """AdamW groups: decay on conv/linear weights only; a pretrained encoder (the parameters
    under the model's ``encoder_prefixes``) at ``lr * encoder_lr_mult``, so fine-tuning does not
    wash out the ImageNet features while the new head learns at the full rate."""
    prefixes = tuple(getattr(model, "encoder_prefixes", ()))
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (bool(prefixes) and name.startswith(prefixes), p.ndim > 1 and not name.endswith(".bias"))
        groups.setdefault(key, []).append(p)
    return [
        {
            "params": params,
            "weight_decay": weight_decay if decays else 0.0,
            "lr": lr * (encoder_lr_mult if in_encoder else 1.0),
        }
        for (in_encoder, decays), params in sorted(groups.items())
    ]


def lr_lambda(plan: dict, warmup_steps: int, power: float, min_ratio: float) -> Callable[[int], float]:
    """Linear warmup then poly decay to ``min_ratio`` at ``plan["total_steps"]`` (mutable: the
    deadline guard may shorten the run)."""

    def f(step: int) -> float:
        if step < warmup_steps:
            return 0.01 + 0.99 * step / max(1, warmup_steps)
        total_steps = plan["total_steps"]
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * (1 - t) ** power

    return f
