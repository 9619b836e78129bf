"""Building blocks shared by the segmentation networks: conv-BN-activation and the two-scale forward."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from seg_perception.errors import ModelError

__all__ = ["ConvBNAct", "TwoScaleSegNet", "init_conv_bn", "make_act"]


def make_act(kind: str, channels: int) -> nn.Module:
    """Activation module: ``relu`` (fuses into Conv in ONNX Runtime, fastest) or ``prelu``."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "prelu":
        return nn.PReLU(channels)
    raise ModelError(f"unknown activation {kind!r} (use 'relu' or 'prelu')")


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) + BatchNorm2d + optional activation. Shapes: N x cin x H x W -> N x cout x H' x W'."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: bool = True,
        act_kind: str = "relu",
    ) -> None:
        pad = dilation * (kernel // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, pad, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(make_act(act_kind, cout))
        super().__init__(*layers)


def init_conv_bn(modules: Iterable[nn.Module]) -> None:
    """He-normal (fan-out) convolutions with zero bias, BatchNorm at weight 1 and bias 0."""
    for m in modules:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class TwoScaleSegNet(nn.Module):
    """Shared forward passes: ``_features`` gives (skip, deep) maps, ``_decode`` the logits;
    the optional ``aux_head`` reads the deep map. Subclasses define those three."""

    aux_head: nn.Module | None
    refine: nn.Module
    classifier: nn.Module

    def _add_head(self, decoder: int, num_classes: int, aux_in: int, aux_mid: int, aux: bool, act_kind: str) -> None:
        """``refine`` (depthwise 3x3 + pointwise on ``decoder`` channels), ``classifier`` and the optional
        ``aux_head`` (``aux_in`` -> ``aux_mid`` -> ``num_classes``)."""
        self.refine = nn.Sequential(
            ConvBNAct(decoder, decoder, kernel=3, groups=decoder, act=False),
            ConvBNAct(decoder, decoder, kernel=1, act_kind=act_kind),
        )
        self.classifier = nn.Conv2d(decoder, num_classes, 1)
        self.aux_head = None
        if aux:
            self.aux_head = nn.Sequential(
                ConvBNAct(aux_in, aux_mid, kernel=1, act_kind=act_kind), nn.Conv2d(aux_mid, num_classes, 1)
            )

    def _logits(self, x: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
        """Refined, classified ``fused`` decoder features, resized to the input ``x``'s H x W."""
        logits = self.classifier(self.refine(fused))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x 3 x H x W float32 normalised RGB -> logits N x num_classes x H x W float32."""
        skip, deep = self._features(x)
        return self._decode(x, skip, deep)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Training forward: (main logits N x K x H x W, aux logits N x K x H x W or None)."""
        skip, deep = self._features(x)
        main = self._decode(x, skip, deep)
        aux = None
        if self.aux_head is not None:
            aux = F.interpolate(self.aux_head(deep), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return main, aux
