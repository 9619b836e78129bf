"""``seg-perception build-engine``: arguments, errors without TensorRT, progress heartbeat."""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import pytest

from seg_perception.backends import cli as engine_cli
from seg_perception.errors import ConfigError, ModelError


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    engine_cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_arguments() -> None:
    args = _parse(["build-engine", "m.onnx", "--precision", "int8", "--calib", "imgs", "--input-size", "360", "480"])
    assert args.func is engine_cli.build_engine_command
    assert (args.precision, args.calib, args.input_size) == ("int8", Path("imgs"), [360, 480])
    assert _parse(["build-engine", "m.onnx"]).precision == "fp16"
    with pytest.raises(SystemExit):
        _parse(["build-engine", "m.onnx", "--precision", "bf16"])


def test_argument_errors(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    with pytest.raises(ConfigError, match="ONNX"):
        engine_cli.build_engine_command(_parse(["build-engine", str(tmp_path / "m.engine")]))
    with pytest.raises(ModelError, match="does not exist"):
        engine_cli.build_engine_command(_parse(["build-engine", str(tmp_path / "missing.onnx")]))
    with pytest.raises(ConfigError, match="--calib"):
        engine_cli.build_engine_command(_parse(["build-engine", str(model), "--precision", "int8"]))
    with pytest.raises(ConfigError, match="--output"):
        engine_cli.build_engine_command(_parse(["build-engine", str(model), "--output", str(tmp_path / "x.onnx")]))


def test_main_reports_missing_tensorrt_as_one_error_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from seg_perception import cli

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    code = cli.main(["build-engine", str(model), "--cache-dir", str(tmp_path / "c")])
    out, err = capsys.readouterr()
    assert code == 2
    assert "building can take minutes" in out  # the progress message comes first
    assert err.startswith("error: ") and "TensorRT" in err and err.count("\n") == 1


def test_heartbeat_prints_while_the_body_runs() -> None:
    buf = io.StringIO()
    with engine_cli.Heartbeat("still building", period=0.02, stream=buf) as hb:
        time.sleep(0.15)
    assert hb.beats >= 2 and "still building" in buf.getvalue()
    n = hb.beats
    time.sleep(0.06)
    assert hb.beats == n  # stopped


def test_measure_latency() -> None:
    calls = []
    stats = engine_cli.measure_latency(lambda: calls.append(1), runs=10, warmup=3)
    assert len(calls) == 13
    assert 0 <= stats["min_ms"] <= stats["median_ms"] <= stats["p90_ms"]
