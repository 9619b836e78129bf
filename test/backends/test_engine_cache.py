"""Engine cache: keys, lookups, invalidation, corrupt entries, shapes and profiles (no TensorRT needed)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest

from seg_perception.backends.engine_cache import (
    CACHE_DIR_ENV,
    EngineCache,
    EngineKey,
    GpuInfo,
    default_cache_dir,
    model_fingerprint,
    optimization_profile,
    resolve_input_shape,
    sha256_file,
    slug,
)
from seg_perception.errors import ConfigError, ModelError

KEY = EngineKey(
    model_sha256="a" * 64,
    tensorrt_version="10.3.0",
    gpu_name="Orin",
    compute_capability=(8, 7),
    precision="fp16",
    input_shape=(1, 3, 360, 480),
)


def test_digest_is_stable_and_changes_with_every_part() -> None:
    assert KEY.digest == replace(KEY).digest
    assert len(KEY.digest) == 20
    variants = [
        replace(KEY, model_sha256="b" * 64),
        replace(KEY, tensorrt_version="10.4.0"),
        replace(KEY, gpu_name="NVIDIA GeForce RTX 4090"),
        replace(KEY, compute_capability=(8, 9)),
        replace(KEY, precision="int8"),
        replace(KEY, input_shape=(1, 3, 720, 960)),
        replace(KEY, calibration="c1"),
        replace(KEY, workspace_bytes=1 << 30),
    ]
    digests = {v.digest for v in variants}
    assert KEY.digest not in digests and len(digests) == len(variants)


def test_key_round_trips_through_dict() -> None:
    assert EngineKey.from_dict(json.loads(json.dumps(KEY.as_dict()))) == KEY


def test_differences_name_what_changed() -> None:
    new = replace(KEY, precision="int8", model_sha256="b" * 64)
    diff = new.differences(KEY)
    assert "precision fp16 -> int8" in diff
    assert "ONNX file changed" in diff
    assert len(diff) == 2


def test_store_then_load_hits(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "engines")
    assert not cache.load(KEY, "camvid").hit
    path = cache.store(KEY, "camvid", b"ENGINE-BYTES")
    assert path is not None and path.exists() and path.suffix == ".engine"
    assert path.name.startswith("camvid-fp16-360x480-")
    hit = cache.load(KEY, "camvid")
    assert hit.hit and hit.data == b"ENGINE-BYTES" and hit.reason == "cache hit"
    assert not list((tmp_path / "engines").glob("*.tmp"))  # atomic writes leave nothing behind


def test_changed_key_misses_and_explains(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    cache.store(KEY, "camvid", b"x")
    miss = cache.load(replace(KEY, precision="fp32"), "camvid")
    assert not miss.hit
    assert "precision fp16 -> fp32" in miss.reason
    assert "no cached engine for other" == cache.load(KEY, "other").reason


@pytest.mark.parametrize("damage", ["truncate", "modify", "bad_json", "other_key", "no_meta"])
def test_corrupt_entries_are_discarded_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture, damage) -> None:
    cache = EngineCache(tmp_path)
    engine = cache.store(KEY, "camvid", b"0123456789")
    meta = cache.meta_path(KEY, "camvid")
    if damage == "truncate":
        engine.write_bytes(b"01234")
    elif damage == "modify":
        engine.write_bytes(b"0123456780")
    elif damage == "bad_json":
        meta.write_text("{not json")
    elif damage == "other_key":
        record = json.loads(meta.read_text())
        record["key"]["precision"] = "int8"
        meta.write_text(json.dumps(record))
    else:
        meta.unlink()
    with caplog.at_level(logging.WARNING):
        lookup = cache.load(KEY, "camvid")
    assert not lookup.hit
    if damage == "no_meta":  # an engine without its record is an interrupted write: a plain miss
        assert "no cached engine" in lookup.reason
        return
    assert lookup.reason.startswith("corrupt cache entry")
    assert any("rebuilding" in r.message for r in caplog.records)
    assert not engine.exists() and not meta.exists()
    # and the slot is usable again
    cache.store(KEY, "camvid", b"fresh")
    assert cache.load(KEY, "camvid").data == b"fresh"


def test_unwritable_cache_warns_once_and_does_not_raise(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = EngineCache(blocker / "sub")  # parent is a file: mkdir fails
    with caplog.at_level(logging.WARNING):
        assert cache.store(KEY, "camvid", b"x") is None
        assert cache.store(KEY, "camvid", b"x") is None
    assert sum("not writable" in r.message for r in caplog.records) == 1


def test_cache_dir_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(ConfigError):
        EngineCache(f)


def test_timing_and_calibration_blobs(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    gpu = GpuInfo("NVIDIA GeForce RTX 4090", (8, 9))
    tpath = cache.timing_cache_path("10.3.0", gpu)
    assert tpath.name == "timing-trt10.3.0-nvidia-geforce-rtx-4090-sm89.cache"
    assert cache.read_blob(tpath) == b""
    assert cache.write_blob(tpath, b"timing")
    assert cache.read_blob(tpath) == b"timing"
    c1 = cache.calibration_cache_path("a" * 64, (1, 3, 360, 480), "fp1", "camvid")
    c2 = cache.calibration_cache_path("a" * 64, (1, 3, 360, 480), "fp2", "camvid")
    assert c1 != c2 and c1.name.startswith("calib-camvid-360x480-")


def test_model_fingerprint_covers_external_data(tmp_path: Path) -> None:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"graph")
    fp1 = model_fingerprint(onnx)
    (tmp_path / "m.onnx.data").write_bytes(b"weights-1")
    fp2 = model_fingerprint(onnx)
    (tmp_path / "m.onnx.data").write_bytes(b"weights-2")
    fp3 = model_fingerprint(onnx)
    (tmp_path / "other.onnx").write_bytes(b"unrelated")
    assert len({fp1, fp2, fp3}) == 3
    assert model_fingerprint(onnx) == fp3
    assert sha256_file(onnx) == hashlib.sha256(b"graph").hexdigest()
    with pytest.raises(ModelError):
        sha256_file(tmp_path / "missing.onnx")


def test_default_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "seg_perception" / "engines"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "seg_perception" / "engines"


def test_slug() -> None:
    assert slug("NVIDIA GeForce RTX 4090/Laptop") == "nvidia-geforce-rtx-4090-laptop"
    assert slug("???") == "x"


# -- shapes ---------------------------------------------------------------------------


def test_static_model_shape_wins() -> None:
    assert resolve_input_shape((1, 3, 360, 480)) == (1, 3, 360, 480)
    assert resolve_input_shape((1, 3, 360, 480), [360, 480]) == (1, 3, 360, 480)
    assert resolve_input_shape((1, 3, 360, 480), None, (100, 100)) == (1, 3, 360, 480)
    with pytest.raises(ConfigError, match="contradicts"):
        resolve_input_shape((1, 3, 360, 480), (720, 960))


def test_dynamic_model_uses_requested_then_metadata_size() -> None:
    assert resolve_input_shape((None, 3, None, None), (720, 960)) == (1, 3, 720, 960)
    # metadata size rounded up to the divisor exactly as the Segmenter sizes its input
    assert resolve_input_shape((-1, 3, -1, -1), None, (360, 481), size_divisor=8) == (1, 3, 360, 488)
    assert resolve_input_shape((1, 3, 360, None), (360, 640)) == (1, 3, 360, 640)
    with pytest.raises(ConfigError, match="dynamic"):
        resolve_input_shape((1, 3, None, None))


def test_bad_shapes() -> None:
    with pytest.raises(ModelError):
        resolve_input_shape((1, 360, 480))
    with pytest.raises(ModelError, match="batch"):
        resolve_input_shape((4, 3, 360, 480))
    with pytest.raises(ConfigError):
        resolve_input_shape((1, 3, None, None), (0, 10))


def test_optimization_profile_is_the_shape_in_use() -> None:
    mn, opt, mx = optimization_profile((1, 3, 360, 480))
    assert mn == opt == mx == (1, 3, 360, 480)
    with pytest.raises(ConfigError):
        optimization_profile((1, 3, -1, 480))
