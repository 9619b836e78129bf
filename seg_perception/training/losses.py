"""Training losses: class-weighted cross-entropy plus an optional Lovász-softmax term.

The Lovász-softmax loss (Berman, Rannen Triki and Blaschko, "The Lovász-Softmax loss: a
tractable surrogate for the optimization of the intersection-over-union measure in neural
networks", CVPR 2018) is the Lovász extension of the Jaccard loss ``1 - IoU`` evaluated on the
per-pixel errors ``|1[y = c] - p_c|``. On one-hot probabilities it equals ``1 - IoU`` of each
class exactly; on soft probabilities it is a convex, piecewise-linear surrogate. Averaged over
the classes present in the batch, it weights a rare class (pole, sign) as much as road, as
mIoU does, which pixel-wise cross-entropy does not. Why and how it is used: docs/models.md.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from seg_perception.errors import ConfigError

__all__ = ["SegLoss", "lovasz_grad", "lovasz_softmax"]


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss, one class per row.

    ``gt_sorted``: float (K, P) or (P,) foreground indicators (0/1) of the pixels, each row
    sorted by decreasing error. Returns weights ``w`` of the same shape, with
    ``sum(w * errors_sorted, -1)`` the extension's value per row.
    """
    gts = gt_sorted.sum(-1, keepdim=True)
    intersection = gts - gt_sorted.cumsum(-1)
    union = gts + (1.0 - gt_sorted).cumsum(-1)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def lovasz_softmax(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Lovász-softmax loss over a batch, averaged over the classes present in ``labels``.

    ``logits``: float (N, C, H, W); ``labels``: int64 (N, H, W) with values in [0, C) or
    ``ignore_index`` (those pixels are left out). The batch is one pool of pixels (the
    "batch" variant of the paper; the per-image variant is noisier on 8-image batches).
    Returns a scalar tensor; 0 when no pixel is labelled.
    """
    if logits.dim() != 4 or labels.shape != (logits.shape[0], *logits.shape[2:]):
        raise ConfigError(
            f"lovasz_softmax: logits (N,C,H,W) and labels (N,H,W) expected, got "
            f"{tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    c = logits.shape[1]
    probs = F.softmax(logits.float(), dim=1).permute(0, 2, 3, 1).reshape(-1, c)
    flat = labels.reshape(-1)
    keep = flat != ignore_index
    probs, flat = probs[keep], flat[keep]
    if flat.numel() == 0:
        return logits.sum() * 0.0
    present = torch.nonzero(torch.bincount(flat, minlength=c)[:c]).squeeze(1)  # no sort, unlike unique
    fg = (flat.unsqueeze(0) == present.unsqueeze(1)).float()  # (K, P)
    errors = (fg - probs[:, present].t()).abs()
    # One sort per present class, all rows at once. Errors are >= 0, and non-negative IEEE floats
    # order exactly as their bit patterns read as int32; torch sorts int32 about 1.7x faster.
    with torch.no_grad():
        perm = torch.sort(errors.detach().view(torch.int32), dim=1, descending=True).indices
    errors_sorted = torch.gather(errors, 1, perm)
    fg_sorted = torch.gather(fg, 1, perm)
    return (errors_sorted * lovasz_grad(fg_sorted)).sum(1).mean()


class SegLoss(nn.Module):
    """``CE(weight=class_weights) + lovasz_weight * Lovász-softmax`` on logits (N, C, H, W).

    ``class_weights``: float (C,) cross-entropy weights (ENet weighting in the trainer);
    ``lovasz_weight`` >= 0 (0: plain weighted cross-entropy, the loss of every earlier stage).
    """

    def __init__(self, class_weights: torch.Tensor, ignore_index: int = 255, lovasz_weight: float = 0.0) -> None:
        super().__init__()
        if not lovasz_weight >= 0.0:
            raise ConfigError(f"train.lovasz_weight must be >= 0, got {lovasz_weight}")
        self.ce = nn.CrossEntropyLoss(weight=class_weights, ignore_index=ignore_index)
        self.ignore_index = int(ignore_index)
        self.lovasz_weight = float(lovasz_weight)

    @classmethod
    def from_config(cls, tcfg: dict, class_weights: torch.Tensor, ignore_index: int = 255) -> SegLoss:
        """From a training config's ``train`` section: ``loss`` (only ``weighted_ce``) and
        ``lovasz_weight`` (default 0)."""
        name = str(tcfg.get("loss", "weighted_ce"))
        if name != "weighted_ce":
            raise ConfigError(f"train.loss: unknown loss {name!r} (known: weighted_ce, plus train.lovasz_weight)")
        return cls(class_weights, ignore_index, float(tcfg.get("lovasz_weight", 0.0)))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = self.ce(logits, labels)
        if self.lovasz_weight > 0.0:
            loss = loss + self.lovasz_weight * lovasz_softmax(logits, labels, self.ignore_index)
        return loss
