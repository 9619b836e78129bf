"""``eval-bag --live`` against the real node over DDS (ROS integration tests)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from seg_perception.cli import main

pytest.importorskip("rclpy", reason="rclpy is not installed")
pytestmark = pytest.mark.ros


@pytest.fixture(autouse=True)
def isolated_ros(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep these runs off other sessions' DDS traffic; the node subprocess inherits the environment.
    monkeypatch.setenv("ROS_DOMAIN_ID", str(random.randint(101, 200)))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


def test_live_agrees_with_offline(street_dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    assert main(["make-bag", "--data", str(street_dataset), "--out", str(bag), "--rate", "5", "--no-progress"]) == 0
    common = ["--model", str(tiny_model), "--backend", "onnxruntime", "--no-progress", "--no-plots"]
    assert main(["eval-bag", str(bag), "--json", str(tmp_path / "off.json"), *common]) == 0
    assert main(["eval-bag", str(bag), "--live", "--json", str(tmp_path / "live.json"), *common]) == 0
    off = json.loads((tmp_path / "off.json").read_text())
    live = json.loads((tmp_path / "live.json").read_text())
    assert live["mode"] == "live" and live["published_frames"] == 3
    # 5 Hz of 48x64 images is far below what the node sustains: nothing may be dropped
    assert live["received_frames"] == 3 and live["dropped_frames"] == 0 and live["frames_with_gt"] == 3
    assert live["miou"] == pytest.approx(off["miou"], abs=1e-12)
    assert live["confusion_matrix"] == off["confusion_matrix"]  # the same labels, pixel for pixel
    e2e = live["latency_ms"]["end_to_end"]
    assert 0 < e2e["median"] <= e2e["p95"] < 5000
    assert "dropped frames" in (tmp_path / "live.md").read_text()


def test_live_reports_node_startup_failure(known_dataset: Path, tmp_path: Path, ev, capsys) -> None:
    model = ev.make_colour_model(tmp_path / "bad.onnx")
    meta = yaml.safe_load(model.with_suffix(".yaml").read_text())
    meta["class_names"] = [*meta["class_names"], "extra"]
    meta["colors"] = [*meta["colors"], [1, 2, 3]]
    model.with_suffix(".yaml").write_text(yaml.safe_dump(meta))
    bag = tmp_path / "bag"
    assert main(["make-bag", "--data", str(known_dataset), "--out", str(bag), "--no-progress"]) == 0
    rc = main(
        [
            "eval-bag",
            str(bag),
            "--live",
            "--json",
            str(tmp_path / "x.json"),
            "--model",
            str(model),
            "--backend",
            "onnxruntime",
            "--no-progress",
            "--startup-timeout",
            "60",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "error: the node exited with code 1 before it was ready" in err
    assert "11 classes" in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()
