"""``eval-bag --live`` against the real node over DDS (ROS integration tests).

Counts events, not speed: every image sent is either labelled or counted as dropped,
and the labelled ones are scored exactly as the offline pipeline scores them.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
from pathlib import Path

import numpy as np
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


def street_frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """Three 48x64 synthetic street frames with exact labels."""
    from seg_perception.synthetic.street import render_street

    return [(scene.rgb, scene.labels) for scene in (render_street(seed, 48, 64) for seed in range(3))]


def per_frame_confusion(model: Path, frames: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """The offline pipeline's confusion counts of each frame (the truth a labelled live frame must match)."""
    from seg_perception.backends import create_backend
    from seg_perception.evaluation.metrics import ConfusionMatrix
    from seg_perception.model_spec import ModelSpec
    from seg_perception.pipeline import Segmenter

    spec = ModelSpec.for_model(model)
    out = []
    with create_backend("onnxruntime", model) as be:
        segmenter = Segmenter(be, spec)
        for rgb, gt in frames:
            cm = ConfusionMatrix(spec.num_classes, spec.ignore_index, spec.class_names)
            cm.update(gt, segmenter.segment(rgb, want_confidence=False).labels)
            out.append(cm.counts)
    return out


def test_live_agrees_with_offline(tiny_model: Path, tmp_path: Path) -> None:
    from seg_perception.evaluation.bag_writer import make_bag

    frames = street_frames()
    bag = make_bag(frames, tmp_path / "bag", rate_hz=5.0).path
    common = ["--model", str(tiny_model), "--backend", "onnxruntime", "--no-progress", "--no-plots"]
    assert main(["eval-bag", str(bag), "--json", str(tmp_path / "off.json"), *common]) == 0
    assert main(["eval-bag", str(bag), "--live", "--json", str(tmp_path / "live.json"), *common]) == 0
    off = json.loads((tmp_path / "off.json").read_text())
    live = json.loads((tmp_path / "live.json").read_text())
    assert live["mode"] == "live" and live["published_frames"] == 3
    # every frame sent is labelled or dropped, and at least one is labelled
    received, dropped = live["received_frames"], live["dropped_frames"]
    assert received + dropped == 3 and received >= 1 and live["frames"] == received
    assert live["frames_with_gt"] == received  # every frame of the bag has ground truth
    assert (dropped > 0) == any("dropped" in w for w in live["warnings"])
    # the labelled frames are scored pixel for pixel as offline: their confusion is the sum of theirs
    per_frame = per_frame_confusion(tiny_model, frames)
    assert np.array_equal(sum(per_frame), np.array(off["confusion_matrix"]))
    sums = [sum(per_frame[i] for i in subset) for subset in itertools.combinations(range(3), received)]
    assert any(np.array_equal(s, np.array(live["confusion_matrix"])) for s in sums)
    if dropped == 0:
        assert live["miou"] == pytest.approx(off["miou"], abs=1e-12)
    e2e = live["latency_ms"]["end_to_end"]
    assert 0 < e2e["median"] <= e2e["p95"] < 5000
    assert "dropped frames" in (tmp_path / "live.md").read_text()


def test_live_reports_node_startup_failure(tiny_model: Path, tmp_path: Path, capsys) -> None:
    from seg_perception.evaluation.bag_writer import make_bag

    model = tmp_path / "bad.onnx"
    shutil.copy(tiny_model, model)
    meta = yaml.safe_load(tiny_model.with_suffix(".yaml").read_text())
    meta["class_names"] = [*meta["class_names"], "extra"]
    model.with_suffix(".yaml").write_text(yaml.safe_dump(meta))
    bag = make_bag(street_frames()[:2], tmp_path / "bag").path
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
