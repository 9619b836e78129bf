"""Recovering a warm-start checkpoint from an exported ONNX (BN folded) and training from it with frozen BN."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seg_perception.errors import ConfigError, ModelError
from seg_perception.nets.build import build_model

pytest.importorskip("efficientnet_lite_pytorch")
if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
    pytest.skip("onnx/onnxruntime not installed", allow_module_level=True)

from seg_perception.training.export import export_checkpoint
from seg_perception.training.loop_support import freeze_bn_layers, load_init_weights
from seg_perception.training.recover import conv_bn_order, recover_checkpoint

MCFG = {"name": "LiteSegNet", "cut": 16, "head": 32, "decoder": 16, "pretrained": False, "aux": True}
CFG = {"name": "lite_tiny", "data": {"mean": [0.498] * 3, "std": [0.502] * 3, "input_size": [64, 96],
                                     "size_divisor": 8}, "model": MCFG, "train": {}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[nn.Module, Path]:
    """A tiny LiteSegNet with non-trivial BN statistics, exported as the shipped models are."""
    tmp = tmp_path_factory.mktemp("recover")
    torch.manual_seed(0)
    model = build_model(MCFG).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # folding must matter: mean/var/affine far from identity
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    ckpt = tmp / "final_ema.pt"
    torch.save({"model": model.state_dict(), "model_config": MCFG, "mean": [0.498] * 3, "std": [0.502] * 3,
                "epoch": 1}, ckpt)
    export_checkpoint(ckpt, tmp / "m.onnx", tmp / "m.yaml", CFG)
    return model, tmp / "m.onnx"


def test_recovered_weights_compute_the_exported_function(exported, tmp_path: Path) -> None:
    model, onnx_path = exported
    res = recover_checkpoint(onnx_path, CFG, tmp_path / "rec.pt", size=(64, 96))
    assert res["max_abs_diff"] < 1e-4 and res["folded_bn"] >= 20 and res["convs"] > res["folded_bn"]
    ck = torch.load(tmp_path / "rec.pt", weights_only=False)
    assert ck["bn_folded"] and ck["recovered_from"] == str(onnx_path)
    rec = build_model(MCFG, load_pretrained=False)
    rec.load_state_dict(ck["model"])
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        np.testing.assert_allclose(rec.eval()(x).numpy(), model(x).numpy(), atol=1e-4)
    # every BN became the identity plus the folded bias
    bns = [m for m in rec.modules() if isinstance(m, nn.BatchNorm2d) and m.running_var.numel()]
    assert all(float(b.running_mean.abs().max()) == 0.0 for b in bns if b is not rec.aux_head[0][1])


def test_pairs_follow_execution_order() -> None:
    model = build_model(MCFG, load_pretrained=False).eval()
    pairs = conv_bn_order(model, torch.zeros(1, 3, 64, 96))
    assert pairs[0][0] is model.stem[0] and pairs[0][1] is model.stem[1]
    assert pairs[-1][0] is model.classifier and pairs[-1][1] is None
    assert all(c is not model.aux_head[0][0] for c, _ in pairs)  # the training-only head does not run


def test_wrong_architecture_is_refused(exported, tmp_path: Path) -> None:
    _, onnx_path = exported
    other = {**CFG, "model": {**MCFG, "head": 48}}
    with pytest.raises(ModelError, match="Conv #"):
        recover_checkpoint(onnx_path, other, tmp_path / "x.pt", size=(64, 96))


def test_folded_weights_need_frozen_bn(exported, tmp_path: Path) -> None:
    _, onnx_path = exported
    recover_checkpoint(onnx_path, CFG, tmp_path / "rec.pt", size=(64, 96))
    model = build_model(MCFG, load_pretrained=False).train()
    with pytest.raises(ConfigError, match="freeze_bn"):
        load_init_weights(model, tmp_path / "rec.pt", freeze_bn=False)
    load_init_weights(model, tmp_path / "rec.pt", freeze_bn=True)
    freeze_bn_layers(model)
    assert model.training and not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    before = model.stem[1].running_mean.clone()
    model.forward_train(torch.randn(2, 3, 64, 96))
    assert torch.equal(model.stem[1].running_mean, before)  # statistics stay frozen while training


def test_a_warm_start_may_lack_only_the_declared_new_modules(exported, tmp_path: Path) -> None:
    """Stage 3 adds the 1/4 detail branch: its weights are fresh, every other weight must load."""
    _, onnx_path = exported
    recover_checkpoint(onnx_path, CFG, tmp_path / "rec.pt", size=(64, 96))
    wider = build_model({**MCFG, "detail4": 8}, load_pretrained=False)
    new = ["proj4", "proj_dec", "detail", "classifier4"]
    with pytest.raises(ModelError, match="does not fit"):
        load_init_weights(wider, tmp_path / "rec.pt", freeze_bn=True)  # strict by default
    with pytest.raises(ModelError, match="missing .*classifier4"):
        load_init_weights(wider, tmp_path / "rec.pt", freeze_bn=True, new_modules=new[:3])
    load_init_weights(wider, tmp_path / "rec.pt", freeze_bn=True, new_modules=new)
    base = build_model(MCFG, load_pretrained=False)
    load_init_weights(base, tmp_path / "rec.pt", freeze_bn=True)
    assert torch.equal(wider.classifier.weight, base.classifier.weight)
    assert not wider.classifier4.weight.any()
