"""The real TensorRT path on a real GPU: build, cache, FP16/INT8 agreement with ONNX Runtime CPU.

Skipped (with the reason) where ``tensorrt`` cannot be imported or PyTorch sees no CUDA
device. Uses ``models/camvid.onnx`` when it exists, else a generated model whose
logits are a colour term plus a strong per-class spatial prior (it checks the plumbing:
shapes, copies, GPU arg-max, caching; the agreement figures that matter come from the
trained model). Frames: CamVid ``val/`` for agreement and ``train/`` for INT8
calibration (never ``test/``), from $SEG_PERCEPTION_CAMVID, ../shared/datasets/camvid
relative to the repository root, or /work/shared/datasets/camvid.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from seg_perception.backends import create_backend
from seg_perception.backends.calibration import list_calibration_images, load_rgb
from seg_perception.backends.select import select_backend
from seg_perception.model_spec import ModelSpec
from seg_perception.pipeline import Segmenter

REPO = Path(__file__).resolve().parents[1]
N_FRAMES = 12
N_CALIB = 64


def _unavailable() -> str | None:
    try:
        import tensorrt
    except (ImportError, OSError) as err:
        return f"tensorrt is not installed ({err})"
    if int(str(tensorrt.__version__).split(".")[0]) < 10:
        return f"TensorRT {tensorrt.__version__} < 10"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch"
    return None


REASON = _unavailable()


#: fp16 on both lines: TensorRT 10.x sets the FP16 flag, 11+ builds the fp16 ONNX strongly typed.
PRECISION = "fp16"
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"TensorRT GPU test: {REASON}")]


def _camvid() -> Path | None:
    env = os.environ.get("SEG_PERCEPTION_CAMVID")
    for c in (env, REPO.parent / "shared/datasets/camvid", "/work/shared/datasets/camvid"):
        if c and (Path(c) / "val").is_dir():
            return Path(c)
    return None


def _generated_model(folder: Path) -> Path:
    """11-class 360x480 ONNX model: smoothed colour logits + per-class horizontal band prior."""
    import onnx
    from onnx import TensorProto, helper

    k, h, w = 11, 360, 480
    rng = np.random.default_rng(0)
    smooth = np.zeros((3, 3, 3, 3), np.float32)
    for c in range(3):
        smooth[c, c] = 1.0 / 9.0
    colour = (rng.standard_normal((k, 3, 1, 1)) * 0.7).astype(np.float32)
    rows = np.arange(h, dtype=np.float32)[:, None]
    centres = (np.arange(k, dtype=np.float32) + 0.5) * h / k
    prior = np.exp(-(((rows - centres[None, :]) / (h / k * 0.6)) ** 2)) * 4.0  # h x k
    prior = np.broadcast_to(prior.T[None, :, :, None], (1, k, h, w)).astype(np.float32)
    inits = [
        helper.make_tensor("smooth", TensorProto.FLOAT, smooth.shape, smooth.ravel().tolist()),
        helper.make_tensor("colour", TensorProto.FLOAT, colour.shape, colour.ravel().tolist()),
        helper.make_tensor("prior", TensorProto.FLOAT, prior.shape, prior.tobytes(), raw=True),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "smooth"], ["s"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["s", "colour"], ["c"]),
        helper.make_node("Add", ["c", "prior"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "generated",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, k, h, w])],
        inits,
    )
    path = folder / "generated.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    spec = ModelSpec(class_names=tuple(f"class{i}" for i in range(k)), colors=None, input_size=(h, w))
    import yaml

    path.with_suffix(".yaml").write_text(yaml.safe_dump(spec.to_dict()))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    trained = REPO / "models" / "camvid.onnx"
    if trained.exists() and trained.with_suffix(".yaml").exists():
        return trained
    return _generated_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def camvid() -> Path:
    root = _camvid()
    if root is None:
        pytest.skip("CamVid not found (set SEG_PERCEPTION_CAMVID)")
    return root


@pytest.fixture(scope="module")
def frames(camvid: Path) -> list[np.ndarray]:
    return [load_rgb(p) for p in list_calibration_images(camvid / "val", N_FRAMES)]


@pytest.fixture(scope="module")
def reference(model: Path, frames: list[np.ndarray]) -> list[np.ndarray]:
    spec = ModelSpec.for_model(model)
    with create_backend("onnxruntime", model, device="cpu") as ort:
        seg = Segmenter(ort, spec)
        return [seg.segment(f, want_confidence=False).labels for f in frames]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engines")


def _agreement(backend, model: Path, frames, reference) -> tuple[float, float]:
    """(agreement of the infer() path, agreement of the GPU infer_labels path) with the reference."""
    spec = ModelSpec.for_model(model)
    seg = Segmenter(backend, spec)
    slow, fast = [], []
    for rgb, ref in zip(frames, reference, strict=True):
        slow.append(float((seg.segment(rgb, want_confidence=False).labels == ref).mean()))
        tensor, geo = seg.preprocess(rgb)
        out = backend.infer_labels(
            tensor, want_confidence=True, content_hw=geo.content, image_hw=geo.image, num_classes=spec.num_classes
        )
        assert out is not None, "TensorRT backend should post-process logits on the GPU"
        labels, conf = out
        assert labels.shape == ref.shape and conf is not None and conf.dtype == np.uint8
        fast.append(float((labels == ref).mean()))
    return float(np.mean(slow)), float(np.mean(fast))


def test_fp16_build_then_cache_hit_and_agreement(model, frames, reference, cache_dir) -> None:
    from seg_perception.backends.tensorrt import TensorRTBackend

    first = TensorRTBackend(model, precision=PRECISION, engine_cache_dir=cache_dir)
    try:
        assert first.source.built and first.source.path.exists()
        assert first.input_spec.static_hw is not None
        slow, fast = _agreement(first, model, frames, reference)
    finally:
        first.close()
    print(f"fp16 agreement with ONNX Runtime CPU: {slow:.4f} (logits path), {fast:.4f} (GPU arg-max path)")
    assert slow >= 0.99 and fast >= 0.99
    second = TensorRTBackend(model, precision=PRECISION, engine_cache_dir=cache_dir)
    try:
        assert not second.source.built and second.source.reason == "cache hit"
    finally:
        second.close()
    assert list(cache_dir.glob("timing-*.cache")), "timing cache should be saved"


def test_int8_calibrated_agreement(model, frames, reference, cache_dir, camvid) -> None:
    from seg_perception.backends.tensorrt import TensorRTBackend

    with TensorRTBackend(
        model, precision="int8", engine_cache_dir=cache_dir, calibration_dir=camvid / "train", calib_max_images=N_CALIB
    ) as backend:
        slow, fast = _agreement(backend, model, frames, reference)
    print(f"int8 agreement with ONNX Runtime CPU: {slow:.4f} (logits path), {fast:.4f} (GPU arg-max path)")
    if _tensorrt_major() < 11:  # implicit INT8: the entropy calibrator's scales are cached
        assert list(cache_dir.glob("calib-*.cache")), "calibration cache should be saved"
    assert slow >= 0.97 and fast >= 0.97


def _tensorrt_major() -> int:
    import tensorrt

    return int(str(tensorrt.__version__).split(".")[0])


def test_tensorrt_qdq_flavour_parses_builds_and_agrees(model, frames, reference, cache_dir) -> None:
    """The shipped NAME_int8_trt.onnx (symmetric int8, zero points 0, float biases) through TensorRT's parser."""
    from seg_perception.backends.precision import tensorrt_qdq_problems
    from seg_perception.backends.tensorrt import TensorRTBackend

    qdq = model.with_name(model.stem + "_int8_trt.onnx")
    if not qdq.exists():
        pytest.skip(f"{qdq.name} is not shipped for this model")
    assert tensorrt_qdq_problems(qdq) == []
    # precision fp32: the engine is built from the Q/DQ file as given (explicit quantization).
    with TensorRTBackend(qdq, precision="fp32", engine_cache_dir=cache_dir) as backend:
        slow, fast = _agreement(backend, qdq, frames, reference)
    print(f"TensorRT Q/DQ flavour agreement with ONNX Runtime CPU fp32: {slow:.4f}, {fast:.4f}")
    assert slow >= 0.97 and fast >= 0.97


def test_a_closed_backend_refuses_inference_clearly(model, frames, cache_dir) -> None:
    from seg_perception.backends.tensorrt import TensorRTBackend
    from seg_perception.errors import ModelError

    backend = TensorRTBackend(model, precision=PRECISION, engine_cache_dir=cache_dir)
    spec = ModelSpec.for_model(model)
    tensor, geo = Segmenter(backend, spec).preprocess(frames[0])
    backend.close()
    with pytest.raises(ModelError, match="closed"):
        backend.infer(tensor)
    with pytest.raises(ModelError, match="closed"):
        backend.infer_labels(
            tensor, want_confidence=False, content_hw=geo.content, image_hw=geo.image, num_classes=spec.num_classes
        )


def test_corrupt_cached_engine_is_rebuilt(model, cache_dir, caplog) -> None:
    from seg_perception.backends.tensorrt import TensorRTBackend

    with TensorRTBackend(model, precision=PRECISION, engine_cache_dir=cache_dir) as b:
        path = b.source.path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING), TensorRTBackend(model, precision=PRECISION, engine_cache_dir=cache_dir) as b:
        assert b.source.built
    assert any("rebuilding" in r.message for r in caplog.records)


def test_prebuilt_engine_file_as_model_path(model, frames, reference, cache_dir, tmp_path) -> None:
    from seg_perception.backends.tensorrt import TensorRTBackend

    with TensorRTBackend(model, precision=PRECISION, engine_cache_dir=cache_dir) as b:
        src = b.source.path
    engine = tmp_path / "model_fp16.engine"
    shutil.copyfile(src, engine)
    shutil.copyfile(model.with_suffix(".yaml"), engine.with_suffix(".yaml"))
    with create_backend("tensorrt", engine) as backend:
        assert backend.source.reason == "prebuilt engine file"
        slow, _ = _agreement(backend, engine, frames, reference)
    assert slow >= 0.99


def test_auto_picks_tensorrt_here(model, cache_dir) -> None:
    sel = select_backend("auto", model, precision=PRECISION, engine_cache_dir=cache_dir)
    try:
        assert sel.backend.name == "tensorrt", sel.summary
    finally:
        sel.backend.close()
