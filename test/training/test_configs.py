"""The committed training configs and the default model's provenance agree with each other.

A staged recipe only reproduces the committed model if every stage builds the same
architecture, warm-starts from the previous stage's run, never trains on ``test`` and the
model card names the config that produced it. None of this needs the dataset.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from seg_perception.errors import ConfigError
from seg_perception.nets.build import build_model, count_parameters
from seg_perception.training.config import load_config

REPO = Path(__file__).resolve().parents[2]
STAGE_CONFIGS = [REPO / "config" / "train_camvid.yaml", *sorted((REPO / "config").glob("train_camvid_stage*.yaml"))]
ALL_CONFIGS = sorted((REPO / "config").glob("train_*.yaml"))


def _stage(path: Path) -> int:
    m = re.search(r"_stage(\d+)\.yaml$", path.name)
    return int(m.group(1)) if m else 1


def _stages() -> list[dict]:
    return [load_config(p) for p in sorted(STAGE_CONFIGS, key=_stage)]


def test_configs_found() -> None:
    assert [_stage(p) for p in sorted(STAGE_CONFIGS, key=_stage)] == list(range(1, len(STAGE_CONFIGS) + 1))
    assert len(STAGE_CONFIGS) >= 2


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.name)
def test_config_never_reads_test(path: Path) -> None:
    cfg = load_config(path)
    assert "test" not in cfg["data"]["train_splits"]
    assert cfg["data"]["val_split"] != "test"


def test_stages_share_architecture_and_chain_warm_starts() -> None:
    stages = _stages()
    first = stages[0]
    assert "init_checkpoint" not in first["train"], "stage 1 trains from scratch"
    for prev, cur in pairwise(stages):
        assert cur["model"] == first["model"], f"{cur['name']}: architecture differs from stage 1"
        assert cur["data"]["train_splits"] == first["data"]["train_splits"]
        init = Path(cur["train"]["init_checkpoint"])
        assert init.parent.name == prev["name"], f"{cur['name']} must warm-start from {prev['name']}"
        assert init.name == "final_ema.pt"
        assert cur["name"] != prev["name"] and cur["seed"] != prev["seed"]


def test_fast_model_card_names_the_last_stage() -> None:
    card = yaml.safe_load((REPO / "models" / "camvid_fast.yaml").read_text())
    training = card["training"]
    last = _stages()[-1]
    assert card["name"] == last["name"]
    assert (REPO / training["config"]).resolve() == Path(last["_config_path"])
    assert Path(training["warm_start_from"]) == Path(last["train"]["init_checkpoint"])
    model = build_model(last["model"], num_classes=len(card["class_names"]))
    assert count_parameters(model) == training["params"]


def test_default_model_card_names_the_lite_recipe() -> None:
    card = yaml.safe_load((REPO / "models" / "camvid.yaml").read_text())
    training = card["training"]
    cfg = load_config(REPO / training["config"])
    assert card["name"] == cfg["name"] and training["architecture"] == cfg["model"]["name"] == "LiteSegNet"
    assert card["mean"] == cfg["data"]["mean"] and card["std"] == cfg["data"]["std"]
    model = build_model(cfg["model"], num_classes=len(card["class_names"]), load_pretrained=False)
    assert count_parameters(model) == training["params"]
    assert (REPO / "models" / "camvid.onnx").stat().st_size <= 16 * 1024 * 1024


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def test_base_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", {
        "name": "a", "seed": 1, "data": {"root": "d", "train_splits": ["train", "val"], "ignore_index": 11},
        "model": {"name": "CtxSegNet", "c1": 48}, "train": {"lr": 0.004, "epochs": 44},
    })
    _write(tmp_path / "b.yaml", {"base": "a.yaml", "name": "b", "data": {"train_splits": ["train"]},
                                 "train": {"lr": 0.002}})
    cfg = load_config(_write(tmp_path / "c.yaml", {"base": "b.yaml", "train": {"epochs": 10}}))
    assert cfg["name"] == "b" and cfg["seed"] == 1 and "base" not in cfg
    assert cfg["data"] == {"root": "d", "train_splits": ["train"], "ignore_index": 11}
    assert cfg["train"] == {"lr": 0.002, "epochs": 10}
    assert cfg["model"] == {"name": "CtxSegNet", "c1": 48}
    assert Path(cfg["_config_path"]) == (tmp_path / "c.yaml").resolve()


def test_base_errors_name_the_file(tmp_path: Path) -> None:
    _write(tmp_path / "x.yaml", {"base": "y.yaml", "name": "x"})
    _write(tmp_path / "y.yaml", {"base": "x.yaml", "name": "y"})
    with pytest.raises(ConfigError, match="loops back"):
        load_config(tmp_path / "x.yaml")
    with pytest.raises(ConfigError, match="not found: .*missing.yaml"):
        load_config(_write(tmp_path / "z.yaml", {"base": "missing.yaml", "name": "z"}))
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path / "w.yaml", {"base": "bad.yaml"}))


def test_gpu_config_is_the_stage1_recipe_on_the_pack() -> None:
    gpu, stage1 = load_config(REPO / "config" / "train_camvid_gpu.yaml"), _stages()[0]
    assert gpu["model"] == stage1["model"] and gpu["train"]["device"] == "cuda"
    assert gpu["data"]["root"] == "gpu_pack" and gpu["synthetic"]["cache_dir"] == "gpu_pack/synth_cache"
    assert gpu["name"] not in {s["name"] for s in _stages()}
