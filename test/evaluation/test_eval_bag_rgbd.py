"""RGB-D bags: ``make-bag --synthetic`` round-trips depth and truth; ``eval-bag`` scores depth grid and positions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seg_perception.cli import main
from seg_perception.evaluation.bag_writer import make_bag
from seg_perception.evaluation.bags import BagReader, stamp_ns
from seg_perception.evaluation.rgbd_bag import (
    DEPTH_TOPIC,
    MARKER_ARRAY,
    MAX_DEPTH_M,
    PARAMS_FILE,
    TRUTH_GRID_TOPIC,
    TRUTH_OBJECTS_TOPIC,
    StampIndex,
    depth_at,
    grid_at,
    positions_at,
    write_params,
)
from seg_perception.node_config import NodeConfig
from seg_perception.synthetic.rgbd import depth_mm
from seg_perception.synthetic.rgbd_scenes import rgbd_rig, rgbd_sequence
from seg_perception.synthetic.street import VOID

H, W = 240, 320


def test_synthetic_bag_round_trips_depth_and_truth_exactly(tmp_path: Path) -> None:
    bag = tmp_path / "rgbd"
    assert main(["make-bag", "--synthetic", "overhang", "--limit", "2", "--size", f"{W}x{H}", "--out", str(bag),
                 "--no-progress"]) == 0
    frames = list(rgbd_sequence("overhang", 2, H, W))
    with BagReader(bag) as reader:
        assert reader.topics[DEPTH_TOPIC].count == 2
        depth = StampIndex(reader, DEPTH_TOPIC, "sensor_msgs/msg/Image")
        grids = StampIndex(reader, TRUTH_GRID_TOPIC, "nav_msgs/msg/OccupancyGrid")
        objects = StampIndex(reader, TRUTH_OBJECTS_TOPIC, MARKER_ARRAY)
        stamps = sorted(depth._raw)
        for ns, f in zip(stamps, frames, strict=True):
            msg = depth.get(ns)
            assert msg.encoding == "16UC1" and (msg.width, msg.height) == (W, H)
            raw = np.frombuffer(bytes(msg.data), "<u2").reshape(H, W)
            with np.errstate(invalid="ignore"):
                expected = np.where(f.depth_m <= MAX_DEPTH_M, f.depth_m, np.nan)  # 16 bits hold 65.535 m
            np.testing.assert_array_equal(raw, depth_mm(expected))  # exactly the driver's millimetres
            metres = depth_at(depth, ns)
            np.testing.assert_array_equal(np.isnan(metres), np.isnan(expected))
            assert np.nanmax(np.abs(metres - expected)) <= 0.0005 + 1e-6
            np.testing.assert_array_equal(grid_at(grids, ns), f.truth_grid)
            truth = positions_at(objects, ns)
            assert [t.index for t in truth] == [o.index for o in f.objects] and truth
            for t, o in zip(truth, f.objects, strict=True):
                np.testing.assert_allclose(t.centre, o.centre, atol=1e-9)
        image_stamps = [stamp_ns(m.decode().header) for m in reader.messages(["/camera/image_raw"])]
        assert image_stamps == stamps  # depth shares the colour frame's header
    cfg = NodeConfig.from_yaml(bag / PARAMS_FILE)
    rig = rgbd_rig("overhang", H, W)
    assert tuple(cfg.camera_xyz) == tuple(rig.pose.xyz) and cfg.grid == rig.grid


def test_camvid_has_no_depth(known_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["make-bag", "--data", str(known_dataset), "--out", str(tmp_path / "b"), "--depth",
                 "--no-progress"]) != 0
    assert "no depth" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def _painted_bag(scene: str, out: Path, ev: object, n: int = 3) -> Path:
    """An RGB-D bag whose images the colour model labels exactly (VOID ground painted as sky)."""
    rig = rgbd_rig(scene, H, W)
    frames = ((ev.paint(np.where(f.labels == VOID, 0, f.labels)), f.labels, f) for f in rgbd_sequence(scene, n, H, W))
    make_bag(frames, out, camera=rig.intrinsics)
    write_params(out, rig.node_params())
    return out


def _eval(bag: Path, model: Path, out: Path) -> dict:
    assert main(["eval-bag", str(bag), "--json", str(out), "--model", str(model), "--no-progress", "--no-plots"]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("scene", ["overhang", "ramp"])
def test_eval_bag_depth_grid_and_positions_on_scenes_where_flat_ground_is_wrong(
    scene: str, tmp_path: Path, colour_model: Path, ev: object
) -> None:
    report = _eval(_painted_bag(scene, tmp_path / "bag", ev), colour_model, tmp_path / "r.json")
    assert report["miou"] == pytest.approx(1.0)
    rgbd = report["rgbd"]
    assert rgbd["depth_topic"] == DEPTH_TOPIC and rgbd["frames_with_depth"] == 3
    depth, flat = rgbd["depth_grid"], rgbd["flat_grid"]
    # depth grid: obstacles where they are (within a cell or so); the flat-ground grid puts them beyond
    assert depth["obstacle_range_error_m"] <= 0.15 and depth["occupied_precision"] >= 0.95
    assert flat["obstacle_range_error_m"] >= 0.5
    assert flat["obstacle_range_error_m"] > 5 * depth["obstacle_range_error_m"]
    assert flat["occupied_precision"] < depth["occupied_precision"]
    pos = rgbd["positions"]
    assert pos["found"] == pos["objects"] > 0
    assert pos["max_error_pct_of_range"] <= 2.0  # issue 18: at most 2 % of range
    md = (tmp_path / "r.md").read_text()
    assert "## RGB-D" in md and "| depth |" in md and "| flat |" in md


def test_bag_without_depth_evaluates_as_before(street_dataset: Path, tmp_path: Path, colour_model: Path) -> None:
    bag = tmp_path / "plain"
    assert main(["make-bag", "--data", str(street_dataset), "--out", str(bag), "--no-progress"]) == 0
    report = _eval(bag, colour_model, tmp_path / "p.json")
    assert "rgbd" not in report and report["frames"] == 3 and "grid" in report
    assert "RGB-D" not in (tmp_path / "p.md").read_text()


def test_rgbd_pictures_of_a_synthetic_bag(tmp_path: Path, ev: object) -> None:
    from seg_perception.assembly import build_mapper
    from seg_perception.evaluation.rgbd_pictures import write_rgbd_pictures
    from seg_perception.model_spec import ModelSpec

    bag = _painted_bag("overhang", tmp_path / "bag", ev, n=2)
    with BagReader(bag) as reader:
        labels = {stamp_ns(m.decode().header): m.decode() for m in reader.messages(["/camera/labels_gt"])}
    from seg_perception.conversions.image import image_msg_to_numpy

    labels = {ns: image_msg_to_numpy(msg) for ns, msg in labels.items()}
    spec = ModelSpec(class_names=ev.CLASSES, colors=ev.PALETTE, drivable_classes=("road",), name="t")
    cfg = NodeConfig.from_yaml(bag / PARAMS_FILE)
    paths = write_rgbd_pictures(bag, labels, build_mapper(cfg, spec), rgbd_rig("overhang", H, W).intrinsics,
                                ev.PALETTE, tmp_path / "rgbd", k=2)
    assert len(paths) == 2 and all(p.stat().st_size > 10_000 for p in paths)
