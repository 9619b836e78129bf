"""Compact real-time semantic segmentation network ("CtxSegNet").

Design (DABNet / CGNet / ESPNet inspired, tuned for cheap CPU training and
inference):

* Stem at 1/2 resolution: one strided 3x3 conv (3 -> ``stem``).
* Downsample to 1/4 ("ENet initial block"): concat(strided 3x3 conv, max-pool).
* Stage 1 (1/4): ``n1`` residual context blocks with ``c1`` channels.
* Downsample to 1/8 the same way. All channel counts are multiples of 8
  (ONNX Runtime's NCHWc kernels are much slower otherwise).
* Stage 2 (1/8): ``n2`` residual context blocks with ``c2`` channels and
  growing dilations (2, 4, 8, 16 ...), i.e. a large receptive field at 1/8.
* Global context: image-level average pooling -> 1x1 conv, added to the 1/8
  features (BiSeNet / PSP style).
* Decoder: 1/8 features are upsampled to 1/4, fused with a 1x1 projection of
  the stage-1 features (boundary detail for poles, signs, pedestrians), refined
  by a depthwise-separable 3x3 conv, classified at 1/4 and bilinearly upsampled
  to the input size inside the model.

Context block ("DDC block", dual depthwise context): 1x1 reduce C -> C/r,
two parallel depthwise 3x3 convs (dilation 1 and dilation d) summed,
1x1 expand C/r -> C, residual add, ReLU (PReLU optional).

Input: float32 tensor N x 3 x H x W, RGB, normalised by (x/255 - mean) / std.
Output: float32 logits N x num_classes x H x W (same H, W as the input).
H and W must be multiples of 8 (``size_divisor`` = 8).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seg_perception.errors import ModelError

__all__ = ["CtxSegNet", "build_model", "count_parameters"]


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


class TwoScaleSegNet(nn.Module):
    """Shared forward passes: ``_features`` gives (skip, deep) maps, ``_decode`` the logits;
    the optional ``aux_head`` reads the deep map. Subclasses define those three."""

    aux_head: nn.Module | None

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


class CtxSegNet(TwoScaleSegNet):
    """Compact encoder-decoder segmentation network (see module docstring).

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
        self.refine = nn.Sequential(
            ConvBNAct(decoder, decoder, kernel=3, groups=decoder, act=False),
            ConvBNAct(decoder, decoder, kernel=1, act_kind=act),
        )
        self.classifier = nn.Conv2d(decoder, num_classes, 1)
        self.aux_head: nn.Module | None = None
        if aux:
            self.aux_head = nn.Sequential(ConvBNAct(c2, 32, kernel=1, act_kind=act), nn.Conv2d(32, num_classes, 1))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
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
        d = self.refine(d + self.proj4(f4))
        logits = self.classifier(d)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def build_model(cfg: dict | None = None, num_classes: int = 11, load_pretrained: bool = True) -> nn.Module:
    """Build a model from a ``model`` config dict (``name`` selects the class, other keys = its args).

    ``name``: ``CtxSegNet`` (default) or ``LiteSegNet`` (EfficientNet-Lite0 encoder,
    :mod:`seg_perception.training.lite_seg`). Keys set to null are ignored. ``load_pretrained=False`` skips reading
    pretrained encoder weights (for loading a checkpoint that overwrites them anyway).
    """
    # null keys are dropped: a derived config unsets what its base set for another model
    cfg = {k: v for k, v in (cfg or {}).items() if v is not None}
    name = str(cfg.pop("name", "CtxSegNet"))
    cfg.setdefault("num_classes", num_classes)
    try:
        if name == "LiteSegNet":
            from seg_perception.training.lite_seg import LiteSegNet

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
