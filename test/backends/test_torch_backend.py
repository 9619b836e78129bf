"""PyTorch backend on CPU: TorchScript / ExportedProgram / checkpoint loading, inference, labels path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seg_perception.backends import create_backend
from seg_perception.backends import torch as torch_backend
from seg_perception.errors import BackendUnavailable, ConfigError, ModelError
from seg_perception.model_spec import ModelSpec
from seg_perception.nets.build import build_model
from seg_perception.pipeline import Segmenter

K = 5


class TinySeg(nn.Module):
    """3 -> K logits at half resolution, upsampled back: exercises crop/resize paths."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.head = nn.Conv2d(8, K, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(torch.relu(self.conv(x)))
        return nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


@pytest.fixture
def module() -> TinySeg:
    torch.manual_seed(0)
    return TinySeg().eval()


@pytest.fixture
def scripted(tmp_path: Path, module: TinySeg) -> Path:
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(module), str(path))
    return path


def _spec() -> ModelSpec:
    return ModelSpec(class_names=tuple(f"c{i}" for i in range(K)), colors=None, input_size=(16, 24))


def test_torchscript_matches_the_module(scripted: Path, module: TinySeg) -> None:
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 24)).astype(np.float32)
    with create_backend("torch", scripted, device="cpu") as backend:
        assert backend.name == "torch" and backend.device == "cpu"
        assert backend.format == "torchscript"
        assert backend.input_spec.shape == (1, 3, None, None)
        out = backend.infer(x)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    assert out.dtype == np.float32 and out.shape == (1, K, 16, 24)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_segmenter_end_to_end_and_labels_path_agree(scripted: Path) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    backend = create_backend("torch", scripted, device="cpu", postprocess_on_device=True)
    seg = Segmenter(backend, _spec())
    result = seg.segment(rgb)
    assert result.labels.shape == (30, 40) and result.confidence is not None
    tensor, geo = seg.preprocess(rgb)
    fast = backend.infer_labels(tensor, want_confidence=True, content_hw=geo.content, image_hw=geo.image)
    assert fast is not None
    labels, conf = fast
    assert labels.dtype == np.uint8 and labels.shape == (30, 40)
    assert float((labels == result.labels).mean()) >= 0.995
    same = labels == result.labels
    assert np.abs(conf[same].astype(int) - result.confidence[same].astype(int)).max() <= 1
    with pytest.raises(ModelError, match="classes"):
        backend.infer_labels(tensor, want_confidence=False, content_hw=geo.content, image_hw=geo.image, num_classes=3)


def test_labels_path_is_off_on_cpu_by_default(scripted: Path) -> None:
    backend = create_backend("torch", scripted, device="cpu")
    x = np.zeros((1, 3, 8, 8), np.float32)
    assert backend.infer_labels(x, want_confidence=False, content_hw=(8, 8), image_hw=(8, 8)) is None


def test_input_size_makes_the_input_static(scripted: Path) -> None:
    backend = create_backend("torch", scripted, device="cpu", input_size=[16, 24])
    assert backend.input_spec.static_hw == (16, 24)


def test_exported_program(tmp_path: Path, module: TinySeg) -> None:
    path = tmp_path / "tiny.pt2"
    x = torch.randn(1, 3, 16, 24)
    torch.export.save(torch.export.export(module, (x,)), str(path))
    backend = create_backend("torch", path, device="cpu")
    assert backend.format == "exported"
    assert backend.input_spec.shape == (1, 3, 16, 24)  # static export: the Segmenter feeds exactly this
    with torch.no_grad():
        want = module(x).numpy()
    np.testing.assert_allclose(backend.infer(x.numpy()), want, rtol=1e-5, atol=1e-5)


def test_checkpoint_goes_through_the_registered_loader(tmp_path: Path, module: TinySeg) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save({"model_state_dict": module.state_dict(), "epoch": 3}, path)
    seen = []

    def loader(p: Path, map_location: str) -> nn.Module:
        seen.append((p, map_location))
        m = TinySeg()
        m.load_state_dict(torch.load(p, map_location=map_location, weights_only=True)["model_state_dict"])
        return m

    torch_backend.register_checkpoint_loader(loader)
    try:
        backend = create_backend("torch", path, device="cpu")
    finally:
        torch_backend.register_checkpoint_loader(None)
    assert seen == [(path, "cpu")] and backend.format == "checkpoint"
    x = np.ones((1, 3, 8, 8), np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(backend.infer(x), module(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)


def _training_checkpoint(tmp_path: Path):
    cfg = {"stem": 8, "c1": 16, "n1": 1, "c2": 32, "n2": 1, "decoder": 8, "num_classes": K}
    model = build_model(dict(cfg)).eval()
    path = tmp_path / "final_ema.pt"
    # the layout training/train.py writes for final_ema.pt
    torch.save({"model": model.state_dict(), "model_config": cfg, "mean": [0.5] * 3, "std": [0.25] * 3}, path)
    return model, path, cfg


def _same_output(backend, model) -> None:
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(backend.infer(x), model(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-4)


def test_training_checkpoint_loads_through_the_training_code(tmp_path: Path) -> None:
    model, path, _ = _training_checkpoint(tmp_path)
    backend = create_backend("torch", path, device="cpu")
    assert backend.format == "checkpoint"
    _same_output(backend, model)


def test_generic_checkpoint_reader(tmp_path: Path) -> None:
    model, path, cfg = _training_checkpoint(tmp_path)
    torch_backend.register_checkpoint_loader(torch_backend.generic_checkpoint_loader)
    try:
        _same_output(create_backend("torch", path, device="cpu"), model)
        bad = tmp_path / "bad.pt"
        torch.save({"model_state_dict": {"nonsense.weight": torch.zeros(1)}, "model_config": cfg}, bad)
        with pytest.raises(ModelError, match="does not match"):
            create_backend("torch", bad, device="cpu")
    finally:
        torch_backend.register_checkpoint_loader(None)


def test_detect_format(tmp_path: Path, scripted: Path, module: TinySeg) -> None:
    assert torch_backend.detect_format(scripted) == "torchscript"
    torch.save(module.state_dict(), tmp_path / "sd.pt")
    assert torch_backend.detect_format(tmp_path / "sd.pt") == "checkpoint"
    (tmp_path / "legacy.pt").write_bytes(b"\x80\x02not a zip")
    assert torch_backend.detect_format(tmp_path / "legacy.pt") == "checkpoint"


def test_errors(tmp_path: Path, scripted: Path) -> None:
    with pytest.raises(ConfigError, match="fp16"):
        create_backend("torch", scripted, device="cpu", precision="fp16")
    with pytest.raises(ConfigError, match="int8"):
        create_backend("torch", scripted, device="cpu", precision="int8")
    with pytest.raises(ConfigError):
        create_backend("torch", scripted, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="CUDA"):
            create_backend("torch", scripted, device="cuda")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    with pytest.raises(ModelError):
        create_backend("torch", junk, device="cpu")


def test_cuda_graphs_are_ignored_on_cpu_with_a_warning(scripted: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = create_backend("torch", scripted, device="cpu", cuda_graphs=True)
    assert "CUDA graphs" not in backend.description
    assert any("cuda_graphs ignored" in r.message for r in caplog.records)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch CUDA test: no CUDA GPU visible to torch")
def test_cuda_fp16_and_cuda_graphs_agree_with_cpu(scripted: Path) -> None:
    rgb = np.random.default_rng(4).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    with create_backend("torch", scripted, device="cpu") as cpu:
        ref = Segmenter(cpu, _spec()).segment(rgb).labels
    for opts in ({"precision": "fp32"}, {"precision": "fp16"}, {"precision": "fp16", "cuda_graphs": True}):
        with create_backend("torch", scripted, device="cuda", **opts) as gpu:
            seg = Segmenter(gpu, _spec())
            tensor, geo = seg.preprocess(rgb)
            for _ in range(2):  # the second call replays the captured graph
                out = gpu.infer_labels(tensor, want_confidence=True, content_hw=geo.content, image_hw=geo.image)
            assert out is not None  # on by default on CUDA
            assert float((out[0] == ref).mean()) >= 0.99, opts
            assert float((seg.segment(rgb).labels == ref).mean()) >= 0.99, opts
