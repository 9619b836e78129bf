"""ONNX Runtime backend: a dynamic-size model is planned for the one shape the pipeline feeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import yaml

from seg_perception.backends.onnxruntime import OnnxRuntimeBackend
from seg_perception.model_spec import ModelSpec
from seg_perception.pipeline import Segmenter

from ..conftest import make_tiny_onnx

REPO = Path(__file__).resolve().parents[2]


def _with_input_size(tmp_path: Path, size: list[int] | None, divisor: int = 1) -> Path:
    path = make_tiny_onnx(tmp_path / "tiny.onnx")
    meta = yaml.safe_load(path.with_suffix(".yaml").read_text())
    meta.update(input_size=size, size_divisor=divisor)
    path.with_suffix(".yaml").write_text(yaml.safe_dump(meta))
    return path


def test_metadata_size_pins_the_shape(tmp_path: Path) -> None:
    be = OnnxRuntimeBackend(_with_input_size(tmp_path, [40, 56], divisor=8), num_threads=1)
    assert be.input_spec.shape == (1, 3, 40, 56) and be.input_spec.static_hw == (40, 56)
    assert be.infer(np.zeros((1, 3, 40, 56), np.float32)).shape == (1, 11, 40, 56)


def test_no_known_size_stays_dynamic(tiny_model: Path) -> None:
    be = OnnxRuntimeBackend(tiny_model, num_threads=1)
    assert be.input_spec.static_hw is None
    assert be.infer(np.zeros((1, 3, 24, 40), np.float32)).shape == (1, 11, 24, 40)


def test_explicit_size_wins_and_off_divisor_sizes_stay_dynamic(tmp_path: Path) -> None:
    path = _with_input_size(tmp_path, [40, 56], divisor=8)
    assert OnnxRuntimeBackend(path, input_size=(64, 96)).input_spec.static_hw == (64, 96)
    # 60 is no multiple of 8: the Segmenter pads such a size up, so the backend must accept it.
    assert OnnxRuntimeBackend(path, input_size=(60, 96)).input_spec.static_hw is None


def test_pinned_default_model_gives_the_same_labels(tmp_path: Path) -> None:
    model = REPO / "models" / "camvid.onnx"
    bare = tmp_path / "camvid.onnx"  # no YAML beside it: no size known, so the session stays dynamic
    shutil.copy(model, bare)
    spec = ModelSpec.for_model(model)
    pinned, dynamic = OnnxRuntimeBackend(model, num_threads=1), OnnxRuntimeBackend(bare, num_threads=1)
    assert pinned.input_spec.static_hw == (360, 480) and dynamic.input_spec.static_hw is None
    rgb = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)  # not the network size
    a, b = Segmenter(pinned, spec), Segmenter(dynamic, spec)
    ta, geo_a = a.preprocess(rgb)
    tb, geo_b = b.preprocess(rgb)
    assert geo_a == geo_b and ta.shape == (1, 3, 360, 480)
    np.testing.assert_allclose(pinned.infer(ta), dynamic.infer(tb), atol=1e-4)


def _config_entry(backend: OnnxRuntimeBackend, key: str) -> str | None:
    try:
        return backend._session.get_session_options().get_session_config_entry(key)
    except RuntimeError:  # ORT raises for a key that was never set
        return None


def test_thread_spinning_and_memory_pattern_reach_the_session(tiny_model: Path) -> None:
    """The node's default (no spinning) and the library default (spinning) give the sessions ORT reports."""
    key = "session.intra_op.allow_spinning"
    quiet = OnnxRuntimeBackend(tiny_model, num_threads=2, thread_spinning=False)
    busy = OnnxRuntimeBackend(tiny_model, num_threads=2)
    assert _config_entry(quiet, key) == "0"
    assert _config_entry(busy, key) is None  # ORT's default: spin
    for be in (quiet, busy):  # CPU sessions plan no single block for all intermediates (RSS)
        assert be._session.get_session_options().enable_mem_pattern is False
        assert be.infer(np.zeros((1, 3, 24, 40), np.float32)).shape == (1, 11, 24, 40)


def test_node_config_hands_thread_spinning_to_the_backend(tiny_model: Path) -> None:
    from seg_perception.assembly import open_backend
    from seg_perception.node_config import NodeConfig

    for spinning, entry in ((False, "0"), (True, None)):
        cfg = NodeConfig(backend="onnxruntime", thread_spinning=spinning)
        selection, build = open_backend(cfg, tiny_model, lambda b: None, lambda e: None)
        assert build is None
        assert _config_entry(selection.backend, "session.intra_op.allow_spinning") == entry


def test_a_converted_model_run_as_stored_reports_its_card_precision(tmp_path: Path) -> None:
    path = make_tiny_onnx(tmp_path / "tiny_int8.onnx")
    assert "onnxruntime fp32" in OnnxRuntimeBackend(path, num_threads=1).description
    (tmp_path / "tiny_int8.card.yaml").write_text(yaml.safe_dump({"precision": "int8"}))
    be = OnnxRuntimeBackend(path, num_threads=1)
    assert be.precision == "int8" and "onnxruntime int8" in be.description
    (tmp_path / "tiny_int8.card.yaml").write_text(": not yaml : [")
    assert OnnxRuntimeBackend(path, num_threads=1).precision == "fp32"
