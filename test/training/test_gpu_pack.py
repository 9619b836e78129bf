"""The GPU-machine path of training: device choice, --run-dir, and the compact data pack.

CUDA itself is exercised only where torch sees a GPU; everything else runs on CPU.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from seg_perception.errors import ConfigError
from seg_perception.training.data import load_camvid_split, load_synthetic
from seg_perception.training.loop_support import train_device
from seg_perception.training.train import train

from .test_train_export import _config, _fake_camvid

REPO = Path(__file__).resolve().parents[2]


def _pack_module():
    spec = importlib.util.spec_from_file_location("pack_camvid", REPO / "scripts" / "pack_camvid.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_device_choice() -> None:
    assert train_device("cpu") == torch.device("cpu")
    assert train_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="cpu, cuda or auto"):
        train_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            train_device("cuda")


def test_pack_round_trip_and_training_reads_it(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    _fake_camvid(tmp_path / "camvid", n=3)
    render = lambda seed, height, width: type("S", (), {  # noqa: E731 - a tiny deterministic scene
        "rgb": np.full((height, width, 3), seed % 256, np.uint8),
        "labels": np.full((height, width), seed % 11, np.uint8)})()
    cache = tmp_path / "synth"
    load_synthetic([5, 6], cache, 48, 64, renderer=render)  # what the pack reads as the local cache
    mod = _pack_module()
    mod.ROOT = tmp_path  # the pack looks for ROOT/runs/synth_cache
    (tmp_path / "runs").mkdir()
    cache.rename(tmp_path / "runs" / "synth_cache")
    out = tmp_path / "pack"
    size = mod.pack(tmp_path / "camvid", out, ["train", "val"], [range(5, 7)], quality=95, height=48, width=64)
    assert 0 < size < 64 * 2**20
    with pytest.raises(SystemExit):
        mod.pack(tmp_path / "camvid", tmp_path / "p2", ["test"], [], quality=95)

    for split in ("train", "val"):
        orig, packed = load_camvid_split(tmp_path / "camvid", split), load_camvid_split(out, split)
        assert len(packed) == len(orig) == 3
        for a, b in zip(orig.labels, packed.labels, strict=True):
            np.testing.assert_array_equal(a, b)  # labels are lossless
        assert all(n.endswith(".jpg") for n in packed.names)

    def no_render(*_a, **_k):
        raise AssertionError("packed scenes must be read, not rendered")

    scenes = load_synthetic([5, 6], out / "synth_cache", 48, 64, renderer=no_render)
    np.testing.assert_array_equal(scenes.labels[1], np.full((48, 64), 6, np.uint8))
    assert abs(int(scenes.images[0].mean()) - 5) <= 2  # JPEG, near-lossless at quality 95

    # The stage recipe reads the pack through a `base:` config and writes into --run-dir.
    base = _config(tmp_path, epochs=1)
    cfg = tmp_path / "gpu.yaml"
    cfg.write_text(yaml.safe_dump({"base": str(base), "data": {"root": str(out)}, "train": {"device": "auto"}}))
    final = train(cfg, run_root=tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "tiny" / "final_ema.pt").is_file() and final["epochs_done"] == 1
    weights = torch.load(tmp_path / "elsewhere" / "tiny" / "final_ema.pt", weights_only=False)["model"]
    assert all(v.device.type == "cpu" for v in weights.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU test: torch sees no CUDA device")
def test_train_on_cuda(tmp_path: Path) -> None:
    _fake_camvid(tmp_path / "camvid")
    base = _config(tmp_path, epochs=1)
    cfg = tmp_path / "cuda.yaml"
    cfg.write_text(yaml.safe_dump({"base": str(base), "train": {"device": "cuda"}}))
    final = train(cfg)
    assert final["epochs_done"] == 1 and final["val_miou"] is not None
