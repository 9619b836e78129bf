"""End-to-end smoke tests: tiny training run on a fake CamVid folder, resume, ONNX export."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from seg_perception.errors import ConfigError, ModelError
from seg_perception.training.export import camvid_model_card, export_checkpoint, export_segformer
from seg_perception.training.metrics import confusion_matrix, miou_from_confusion
from seg_perception.training.train import train

TINY = {"stem": 8, "c1": 16, "n1": 1, "c2": 24, "n2": 1, "decoder": 16}
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def _fake_camvid(root: Path, n: int = 4, h: int = 48, w: int = 64) -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = []
        for i in range(n):
            lab = rng.integers(0, 12, (h, w), dtype=np.uint8)
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            cv2.imwrite(str(root / split / f"f{i}.png"), img)
            cv2.imwrite(str(root / f"{split}annot" / f"f{i}.png"), lab)
            lines.append(f"{split}/f{i}.png {split}annot/f{i}.png")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


def _config(tmp_path: Path, epochs: int) -> Path:
    cfg = {
        "name": "tiny", "seed": 1, "run_dir": str(tmp_path / "runs"),
        "data": {"root": str(tmp_path / "camvid"), "train_splits": ["train"], "val_split": "val",
                 "mean": [0.4, 0.4, 0.4], "std": [0.3, 0.3, 0.3], "input_size": [48, 64], "size_divisor": 8},
        "synthetic": {"enabled": False},
        "model": TINY,
        "train": {"num_threads": 1, "epochs": epochs, "batch_size": 2, "crop": [32, 48], "scale_range": [0.5, 2.0],
                  "lr": 0.004, "weight_decay": 0.01, "warmup_steps": 1, "eval_every": 1, "prefetch": 1},
    }
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_miou_metric() -> None:
    t = torch.tensor([[[0, 1], [1, 11]]])
    p = torch.tensor([[[0, 1], [0, 3]]])
    conf = confusion_matrix(p, t)
    assert int(conf.sum()) == 3
    miou, per = miou_from_confusion(conf)
    assert per[0] == pytest.approx(0.5) and per[1] == pytest.approx(0.5) and len(per) == 11
    assert miou == pytest.approx(1.0 / 11)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("train")
    _fake_camvid(tmp / "camvid")
    cfg = _config(tmp, epochs=1)
    final = train(cfg)
    assert final["epochs_done"] == 1 and final["val_miou"] is not None
    return tmp, cfg


def test_train_writes_checkpoint_log_curve_and_resumes(trained) -> None:
    tmp, _ = trained
    run = tmp / "runs" / "tiny"
    for f in ("last.pt", "final_ema.pt", "log.jsonl", "curves.png", "final_metrics.json"):
        assert (run / f).is_file(), f
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert rows[0]["type"] == "start" and rows[0]["trained_on"] == ["train"]
    cfg2 = _config(tmp, epochs=2)
    final = train(cfg2, resume=True)
    assert final["epochs_done"] == 2
    ck = torch.load(run / "last.pt", weights_only=False)
    assert ck["epoch"] == 1 and {"model", "ema", "optimizer", "scheduler", "rng"} <= set(ck)


def test_init_checkpoint_warm_start(trained) -> None:
    tmp, _ = trained
    src = tmp / "runs" / "tiny" / "final_ema.pt"
    cfg = yaml.safe_load(_config(tmp, epochs=1).read_text())
    cfg["name"] = "tiny_s2"
    cfg["train"].update(init_checkpoint=str(src), lr=0.0)  # lr 0: weights must stay the loaded ones
    p = tmp / "s2.yaml"
    p.write_text(yaml.safe_dump(cfg))
    train(p)
    run = tmp / "runs" / "tiny_s2"
    start = json.loads((run / "log.jsonl").read_text().splitlines()[0])
    assert start["init_checkpoint"] == str(src)
    before = torch.load(src, weights_only=False)["model"]
    after = torch.load(run / "final_ema.pt", weights_only=False)["model"]
    for k, v in before.items():
        if k.endswith(".weight") or k.endswith(".bias"):
            assert torch.allclose(v, after[k], atol=1e-6), k  # EMA of equal weights: rounding only


def test_init_checkpoint_errors(trained) -> None:
    tmp, _ = trained
    cfg = yaml.safe_load(_config(tmp, epochs=1).read_text())
    cfg["name"] = "tiny_bad"
    cfg["train"]["init_checkpoint"] = str(tmp / "missing.pt")
    p = tmp / "bad.yaml"
    p.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ModelError, match="no such file"):
        train(p)
    cfg["train"]["init_checkpoint"] = str(tmp / "runs" / "tiny" / "final_ema.pt")
    cfg["model"] = {**TINY, "c2": 32}  # another architecture
    p.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ModelError, match="does not fit"):
        train(p)


def test_model_card_keys() -> None:
    card = camvid_model_card("x", [0.4] * 3, [0.3] * 3)
    assert card["class_names"][3] == "road" and len(card["colors"]) == 11
    assert card["ignore_index"] == 11 and card["layout"] == "NCHW" and card["output"] == "logits"


@pytest.mark.skipif(not HAS_ORT, reason="onnx/onnxruntime not installed")
def test_export_checkpoint_matches_torch(trained, tmp_path) -> None:
    run_tmp, cfg = trained
    imgs = [np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8) for i in range(2)]
    res = export_checkpoint(run_tmp / "runs" / "tiny" / "last.pt", tmp_path / "m.onnx", tmp_path / "m.yaml",
                            str(cfg), verify_images=imgs)
    assert res["max_abs_diff"] < 1e-3 and res["label_agreement"] > 0.999
    card = yaml.safe_load((tmp_path / "m.yaml").read_text())
    assert card["size_divisor"] == 8 and card["mean"] == [0.4, 0.4, 0.4]
    import onnx
    import onnxruntime as ort

    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == 17
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"input": np.zeros((1, 3, 32, 40), np.float32)})[0]  # dynamic H/W
    assert out.shape == (1, 11, 32, 40)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ORT or importlib.util.find_spec("transformers") is None
                    or importlib.util.find_spec("onnxscript") is None,
                    reason="transformers/onnxscript/onnxruntime not installed")
def test_export_segformer_tiny(tmp_path) -> None:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    cfg = SegformerConfig(num_labels=11, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1],
                          hidden_sizes=[8, 16], num_attention_heads=[1, 1], patch_sizes=[7, 3], strides=[4, 2],
                          mlp_ratios=[2, 2], decoder_hidden_size=16)
    SegformerForSemanticSegmentation(cfg).eval().save_pretrained(tmp_path / "sf")
    img = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    res = export_segformer(tmp_path / "sf", tmp_path / "sf.onnx", tmp_path / "sf.yaml", input_size=(64, 96),
                           verify_images=[img])
    assert res["max_abs_diff"] < 1e-3 and res["label_agreement"] > 0.999
    card = yaml.safe_load((tmp_path / "sf.yaml").read_text())
    assert card["size_divisor"] == 32 and len(card["class_names"]) == 11


def test_lovasz_weight_reaches_the_training_loss(trained) -> None:
    # Same data order and frozen weights (lr 0) with and without the Lovász term: the logged
    # losses differ by the mean Lovász value, which lies in (0, 1].
    tmp, _ = trained
    src = tmp / "runs" / "tiny" / "final_ema.pt"
    losses = {}
    for name, extra in (("tiny_ce", {}), ("tiny_lovasz", {"lovasz_weight": 1.0})):
        cfg = yaml.safe_load(_config(tmp, epochs=1).read_text())
        cfg["name"] = name
        cfg["train"].update(init_checkpoint=str(src), lr=0.0, aux_weight=0.0, **extra)
        p = tmp / f"{name}.yaml"
        p.write_text(yaml.safe_dump(cfg))
        train(p)
        rows = [json.loads(line) for line in (tmp / "runs" / name / "log.jsonl").read_text().splitlines()]
        losses[name] = next(r["loss"] for r in rows if r["type"] == "epoch")
    assert 0.0 < losses["tiny_lovasz"] - losses["tiny_ce"] <= 1.0
    cfg["name"], cfg["train"]["loss"] = "tiny_badloss", "focal"
    p.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="unknown loss"):
        train(p)
