"""CtxSegNet: the compact real-time CamVid network (design notes in docs/models.md).

Input: float32 N x 3 x H x W, RGB, normalised by (x/255 - mean) / std; H, W multiples of 8.
Output: float32 logits N x num_classes x H x W.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seg_perception.errors import ModelError
from seg_perception.nets.blocks import ConvBNAct, TwoScaleSegNet, init_conv_bn, make_act

__all__ = ["CtxSegNet"]


class ContextBlock(nn.Module):
    """Residual dual-depthwise context block (C -> C, same resolution).

    1x1 reduce (C -> C/reduction), depthwise 3x3 (dilation 1) + depthwise 3x3
    (dilation ``dilation``) summed, activation, 1x1 expand back to C, residual,
    activation. Shapes: N x C x H x W -> N x C x H x W.
    """

    def __init__(self, channels: int, dilation: int, reduction: int = 2, act_kind: str = "relu") -> None:
        super().__init__()
        mid = max(8, channels // reduction)
        self.reduce = ConvBNAct(channels, mid, kernel=1, act_kind=act_kind)
        self.local = ConvBNAct(mid, mid, kernel=3, groups=mid, act=False)
        self.context = ConvBNAct(mid, mid, kernel=3, dilation=dilation, groups=mid, act=False)
        self.mid_act = make_act(act_kind, mid)
        self.expand = ConvBNAct(mid, channels, kernel=1, act=False)
        self.out_act = make_act(act_kind, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x C x H x W float32 -> N x C x H x W float32."""
        y = self.reduce(x)
        y = self.mid_act(self.local(y) + self.context(y))
        y = self.expand(y)
        return self.out_act(x + y)


class DownBlock(nn.Module):
    """Strided downsampling (ENet initial block): concat(3x3/s2 conv-BN-act, 2x2 max-pool).

    With ``separable`` the strided conv is depthwise 3x3/s2 + pointwise 1x1.

    N x cin x H x W -> N x cout x H/2 x W/2 (requires cout > cin; H, W even).
    """

    def __init__(self, cin: int, cout: int, act_kind: str = "relu", separable: bool = False) -> None:
        super().__init__()
        if cout <= cin:
            raise ModelError(f"DownBlock needs cout > cin, got {cin} -> {cout}")
        self.conv: nn.Module
        if separable:  # depthwise 3x3/s2 + pointwise: ~9x cheaper for wide inputs
            self.conv = nn.Sequential(
                ConvBNAct(cin, cin, 3, stride=2, groups=cin, act=False),
                ConvBNAct(cin, cout - cin, 1, act_kind=act_kind),
            )
        else:
            self.conv = ConvBNAct(cin, cout - cin, 3, stride=2, act_kind=act_kind)
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x cin x H x W -> N x cout x H/2 x W/2."""
        return torch.cat([self.conv(x), self.pool(x)], dim=1)


class CtxSegNet(TwoScaleSegNet):
    """Compact encoder-decoder segmentation network (design in docs/models.md).

    Args:
        num_classes: number of output classes (11 for CamVid, void excluded).
        stem: channels at 1/2 resolution.
        c1, n1: channels / number of context blocks at 1/4.
        c2, n2: channels / number of context blocks at 1/8.
        dilations1: dilation of each stage-1 block (len n1, cycled if shorter).
        dilations2: dilation of each stage-2 block (len n2, cycled if shorter).
        decoder: decoder channels.
        reduction: bottleneck reduction of context blocks.
        act: activation, ``relu`` (default, fused by ONNX Runtime) or ``prelu``.
        aux: build an auxiliary 1/8 classifier used only by ``forward_train``.
    """

    def __init__(
        self,
        num_classes: int = 11,
        stem: int = 24,
        c1: int = 64,
        n1: int = 3,
        c2: int = 128,
        n2: int = 8,
        dilations1: Sequence[int] = (2,),
        dilations2: Sequence[int] = (2, 4, 8, 16),
        decoder: int = 64,
        reduction: int = 2,
        act: str = "relu",
        aux: bool = True,
    ) -> None:
        super().__init__()
        if num_classes < 1 or n1 < 1 or n2 < 1:
            raise ModelError("num_classes, n1 and n2 must be >= 1")
        self.num_classes = num_classes
        self.stem = ConvBNAct(3, stem, 3, stride=2, act_kind=act)
        self.down1 = DownBlock(stem, c1, act)
        self.stage1 = nn.Sequential(
            *[ContextBlock(c1, dilations1[i % len(dilations1)], reduction, act) for i in range(n1)]
        )
        self.down2 = DownBlock(c1, c2, act, separable=True)
        self.stage2 = nn.Sequential(
            *[ContextBlock(c2, dilations2[i % len(dilations2)], reduction, act) for i in range(n2)]
        )
        self.global_ctx = nn.Conv2d(c2, c2, 1, bias=True)
        self.proj8 = ConvBNAct(c2, decoder, kernel=1, act_kind=act)
        self.proj4 = ConvBNAct(c1, decoder, kernel=1, act=False)
        self._add_head(decoder, num_classes, c2, 32, aux, act)
        self._init_weights()

    def _init_weights(self) -> None:
        init_conv_bn(self.modules())
        # Zero-init the last BN of each residual branch: blocks start as identity.
        for m in self.modules():
            if isinstance(m, ContextBlock):
                nn.init.zeros_(m.expand[1].weight)
        nn.init.zeros_(self.global_ctx.weight)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (1/4 features N x c1 x H/4 x W/4, 1/8 features N x c2 x H/8 x W/8)."""
        f4 = self.stage1(self.down1(self.stem(x)))
        f8 = self.stage2(self.down2(f4))
        f8 = f8 + self.global_ctx(F.adaptive_avg_pool2d(f8, 1))
        return f4, f8

    def _decode(self, x: torch.Tensor, f4: torch.Tensor, f8: torch.Tensor) -> torch.Tensor:
        d = F.interpolate(self.proj8(f8), size=f4.shape[-2:], mode="bilinear", align_corners=False)
        return self._logits(x, d + self.proj4(f4))
