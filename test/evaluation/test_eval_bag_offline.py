"""``seg-perception eval-bag`` offline: known mIoU, stamp matching, foreign bags, write-bag, grid hook, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seg_perception.backends import create_backend
from seg_perception.cli import main
from seg_perception.conversions.image import encode_compressed, image_fields, image_msg_to_numpy
from seg_perception.evaluation import cli as eval_cli
from seg_perception.evaluation.bags import DEFAULT_START_NS, BagReader, get_typestore, stamp_ns
from seg_perception.evaluation.datasets import SegmentationDataset
from seg_perception.evaluation.eval_bag import GRID_TOPIC, LABELS_TOPIC, OVERLAY_TOPIC, evaluate_bag
from seg_perception.evaluation.eval_dataset import evaluate_dataset
from seg_perception.model_spec import ModelSpec
from seg_perception.pipeline import Segmenter

REPO = Path(__file__).resolve().parents[2]


def make_bag_cli(data: Path, out: Path, *extra: str) -> Path:
    assert main(["make-bag", "--data", str(data), "--out", str(out), "--no-progress", *extra]) == 0
    return out


def eval_bag_cli(bag: Path, model: Path, out: Path, *extra: str, plots: bool = False) -> int:
    args = ["eval-bag", str(bag), "--json", str(out), "--model", str(model), "--no-progress", *extra]
    return main(args if plots else [*args, "--no-plots"])


def foreign_bag(path: Path, topics: dict[str, list[tuple[int, object]]], storage: str = "mcap") -> Path:
    """A bag written with rosbags' own Writer: topic -> [(log_ns, message dataclass)]."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    ts = get_typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as w:
        for topic, msgs in topics.items():
            msgtype = msgs[0][1].__msgtype__ if msgs else "sensor_msgs/msg/Image"
            conn = w.add_connection(topic, msgtype, typestore=ts)
            for log_ns, msg in msgs:
                w.write(conn, log_ns, ts.serialize_cdr(msg, msgtype))
    return path


def header(ns: int, frame_id: str = "cam") -> object:
    t = get_typestore().types
    return t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame_id
    )


def image(arr: np.ndarray, encoding: str, ns: int) -> object:
    return get_typestore().types["sensor_msgs/msg/Image"](header=header(ns), **image_fields(arr, encoding))


def compressed(rgb: np.ndarray, fmt: str, ns: int) -> object:
    name, data = encode_compressed(rgb, fmt, 95)
    return get_typestore().types["sensor_msgs/msg/CompressedImage"](header=header(ns), format=name, data=data)


@pytest.mark.parametrize("fmt", ["mcap", "sqlite3"])
def test_known_miou_matches_dataset_eval(known_dataset: Path, colour_model: Path, tmp_path: Path, ev, fmt) -> None:
    bag = make_bag_cli(known_dataset, tmp_path / "bag", "--format", fmt)
    out = tmp_path / "res.json"
    assert eval_bag_cli(bag, colour_model, out, plots=fmt == "mcap") == 0
    res = json.loads(out.read_text())
    assert res["miou"] == pytest.approx(ev.KNOWN_MIOU)
    assert res["pixel_accuracy"] == pytest.approx(ev.KNOWN_PIXEL_ACCURACY)
    for name, iou in ev.KNOWN_IOU.items():
        assert res["per_class_iou"][name] == pytest.approx(iou)
    assert res["frames"] == res["frames_with_gt"] == 2
    # The grid stage runs because make-bag writes camera_info and the node's grid set-up applies.
    assert set(res["latency_ms"]) == {"decode", "preprocess", "inference", "postprocess", "grid", "total"}
    assert all(v["p95"] >= v["median"] >= 0 for v in res["latency_ms"].values())
    assert res["fps"] > 0 and res["image_topic"] == "/camera/image_raw" and res["warnings"] == []
    report = out.with_suffix(".md").read_text()
    assert "62.50 %" in report and "## Latency" in report
    plots = ("per_class_iou.png", "confusion_matrix.png", "latency.png", "frames.png")
    if fmt == "mcap":
        assert all((tmp_path / "res_plots" / name).stat().st_size > 1000 for name in plots)
        assert "![frames](res_plots/frames.png)" in report
    else:
        assert not (tmp_path / "res_plots").exists() and "## Plots" not in report


def test_ground_truth_is_matched_by_stamp_not_order(colour_model: Path, tmp_path: Path, ev) -> None:
    (rgb1, gt1), (rgb2, gt2) = ev.known_frames()
    t0, t1, t2 = DEFAULT_START_NS, DEFAULT_START_NS + 10**8, DEFAULT_START_NS + 2 * 10**8
    bag = foreign_bag(
        tmp_path / "shuffled",
        {
            # ground truth recorded first and in reverse order; the third image has none
            "/camera/labels_gt": [(t0 - 5, image(gt2, "mono8", t1)), (t0 - 4, image(gt1, "mono8", t0))],
            "/camera/image_raw": [
                (t0, image(rgb1, "rgb8", t0)),
                (t1, image(rgb2, "rgb8", t1)),
                (t2, image(rgb2, "rgb8", t2)),
            ],
        },
    )
    out = tmp_path / "res.json"
    assert eval_bag_cli(bag, colour_model, out) == 0
    res = json.loads(out.read_text())
    assert res["frames"] == 3 and res["frames_with_gt"] == 2
    assert res["miou"] == pytest.approx(ev.KNOWN_MIOU)
    assert "1 frame(s) have no ground truth" in res["warnings"]


def test_foreign_compressed_bag_without_ground_truth(colour_model: Path, tmp_path: Path, ev) -> None:
    cls = np.zeros((32, 48), np.uint8)
    cls[16:, :] = 3
    cls[:, 24:] = 8
    rgb = ev.paint(cls)
    stamps = [123 * 10**9 + i * 33_000_000 for i in range(3)]
    bag = foreign_bag(
        tmp_path / "foreign", {"/front/image/compressed": [(s, compressed(rgb, "jpeg", s)) for s in stamps]}
    )
    out, written = tmp_path / "res.json", tmp_path / "out_bag"
    assert eval_bag_cli(bag, colour_model, out, "--write-bag", str(written), "--write-format", "sqlite3") == 0
    res = json.loads(out.read_text())
    assert "miou" not in res and res["gt_topic"] is None and res["frames"] == 3
    assert res["image_topic"] == "/front/image/compressed" and res["camera_info_topic"] is None
    assert "No ground truth" in out.with_suffix(".md").read_text()
    with BagReader(written) as r:
        assert set(r.topics) == {"/front/image/compressed", LABELS_TOPIC, OVERLAY_TOPIC}
        labels = [m.decode() for m in r.messages([LABELS_TOPIC])]
        overlays = [m.decode() for m in r.messages([OVERLAY_TOPIC])]
    assert [stamp_ns(m.header) for m in labels] == stamps == [stamp_ns(m.header) for m in overlays]
    assert labels[0].header.frame_id == "cam" and overlays[0].encoding == "rgb8"
    agree = np.mean(image_msg_to_numpy(labels[0]) == cls)
    assert agree > 0.95  # jpeg blurs only the colour edges


def test_encodings_and_topic_choice(colour_model: Path, tmp_path: Path, ev) -> None:
    (rgb, gt), _ = ev.known_frames()
    ns = DEFAULT_START_NS
    bag = foreign_bag(
        tmp_path / "multi",
        {
            "/cam/rgb": [(ns, image(rgb, "rgb8", ns))],
            "/cam/bgr": [(ns, image(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", ns))],
            "/cam/rgba": [(ns, image(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), "rgba8", ns))],
            "/cam/png/compressed": [(ns, compressed(rgb, "png", ns))],
            "/cam/mono": [(ns, image(rgb[..., 0].copy(), "mono8", ns))],
            "/camera/labels_gt": [(ns, image(gt, "mono8", ns))],
        },
    )
    out = tmp_path / "r.json"
    rc = eval_bag_cli(bag, colour_model, out)
    assert rc == 2 and not out.exists()
    for topic in ("/cam/rgb", "/cam/bgr", "/cam/rgba", "/cam/png/compressed"):
        assert eval_bag_cli(bag, colour_model, out, "--image-topic", topic) == 0
        res = json.loads(out.read_text())
        assert res["per_class_iou"]["road"] == pytest.approx(0.5), topic  # same prediction from every encoding
    assert eval_bag_cli(bag, colour_model, out, "--image-topic", "/cam/mono") == 0
    assert json.loads(out.read_text())["frames"] == 1


def test_several_image_topics_error_lists_them(colour_model: Path, tmp_path: Path, ev, capsys) -> None:
    (rgb, _), _ = ev.known_frames()
    bag = foreign_bag(
        tmp_path / "two", {"/a/image": [(1, image(rgb, "rgb8", 1))], "/b/image": [(1, image(rgb, "rgb8", 1))]}
    )
    assert eval_bag_cli(bag, colour_model, tmp_path / "r.json") == 2
    err = capsys.readouterr().err
    assert "several image topics: /a/image, /b/image" in err and "--image-topic" in err and "Traceback" not in err


def test_missing_topic_and_zero_images(colour_model: Path, known_dataset: Path, tmp_path: Path, capsys) -> None:
    bag = make_bag_cli(known_dataset, tmp_path / "bag")
    assert eval_bag_cli(bag, colour_model, tmp_path / "r.json", "--image-topic", "/nope") == 2
    err = capsys.readouterr().err
    assert "image topic /nope is not in the bag" in err and "/camera/image_raw (sensor_msgs/msg/Image, 2 msgs)" in err
    assert eval_bag_cli(bag, colour_model, tmp_path / "r.json", "--gt-topic", "/nope") == 2
    assert "ground-truth topic /nope" in capsys.readouterr().err

    empty = foreign_bag(tmp_path / "empty", {"/camera/image_raw": []})
    assert eval_bag_cli(empty, colour_model, tmp_path / "r.json") == 2
    assert "has no messages" in capsys.readouterr().err
    info_only = tmp_path / "info_only"
    t = get_typestore().types
    roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    info = t["sensor_msgs/msg/CameraInfo"](
        header=header(1),
        height=4,
        width=8,
        distortion_model="",
        d=np.zeros(0),
        k=np.eye(3).ravel(),
        r=np.eye(3).ravel(),
        p=np.zeros(12),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )
    foreign_bag(info_only, {"/camera/camera_info": [(1, info)]})
    assert eval_bag_cli(info_only, colour_model, tmp_path / "r.json") == 2
    assert "no camera image topic (image topics: none)" in capsys.readouterr().err
    assert eval_bag_cli(tmp_path / "no_such_bag", colour_model, tmp_path / "r.json") == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["mcap", "sqlite3"])
def test_truncated_and_garbage_bags(known_dataset: Path, colour_model: Path, tmp_path: Path, fmt, capsys) -> None:
    bag = make_bag_cli(known_dataset, tmp_path / "bag", "--format", fmt)
    (data_file,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    os.truncate(data_file, data_file.stat().st_size // 2)
    assert eval_bag_cli(bag, colour_model, tmp_path / "r.json", "--strict") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bag" in err and "Traceback" not in err
    garbage = tmp_path / f"garbage.{'mcap' if fmt == 'mcap' else 'db3'}"
    garbage.write_bytes(b"not a bag at all" * 100)
    assert eval_bag_cli(garbage, colour_model, tmp_path / "r.json") == 2
    assert "error: cannot open bag" in capsys.readouterr().err


def test_ground_truth_size_mismatch(colour_model: Path, tmp_path: Path, ev, capsys) -> None:
    (rgb, gt), _ = ev.known_frames()
    bag = foreign_bag(
        tmp_path / "mismatch",
        {
            "/camera/image_raw": [(5, image(rgb, "rgb8", 5))],
            "/camera/labels_gt": [(5, image(np.zeros((2, 4), np.uint8), "mono8", 5))],
        },
    )
    assert eval_bag_cli(bag, colour_model, tmp_path / "r.json") == 2
    err = capsys.readouterr().err
    assert "ground truth on /camera/labels_gt at 0.000000005 is 4x2 but its image is 8x4" in err
    assert "Traceback" not in err


def test_write_bag_outputs_and_reevaluation(known_dataset: Path, colour_model: Path, tmp_path: Path, ev) -> None:
    bag = make_bag_cli(known_dataset, tmp_path / "bag")
    written = tmp_path / "written"
    assert eval_bag_cli(bag, colour_model, tmp_path / "a.json", "--write-bag", str(written)) == 0
    with BagReader(bag) as r:
        original = {t: [(m.log_ns, bytes(m.raw)) for m in r.messages([t])] for t in r.topics}
    with BagReader(written) as r:
        assert set(r.topics) == set(original) | {LABELS_TOPIC, OVERLAY_TOPIC, GRID_TOPIC}
        for topic, msgs in original.items():
            assert [(m.log_ns, bytes(m.raw)) for m in r.messages([topic])] == msgs  # copied unchanged
        labels = [(m.log_ns, m.decode()) for m in r.messages([LABELS_TOPIC])]
    image_stamps = [ns for ns, _ in original["/camera/image_raw"]]
    assert [ns for ns, _ in labels] == image_stamps == [stamp_ns(m.header) for _, m in labels]
    # the colour model predicts exactly the painted classes: sky|road, then all tree
    np.testing.assert_array_equal(image_msg_to_numpy(labels[0][1])[:, :4], 0)
    np.testing.assert_array_equal(image_msg_to_numpy(labels[0][1])[:, 4:], 3)
    np.testing.assert_array_equal(image_msg_to_numpy(labels[1][1]), 5)
    # the written bag evaluates the same (its /seg_perception outputs are not taken for the camera)
    assert eval_bag_cli(written, colour_model, tmp_path / "b.json") == 0
    assert json.loads((tmp_path / "b.json").read_text())["miou"] == pytest.approx(ev.KNOWN_MIOU)
    assert eval_bag_cli(bag, colour_model, tmp_path / "c.json", "--write-bag", str(written)) == 2  # exists


def fake_grid_fn(calls: list):
    def grid_fn(labels: np.ndarray, info: object) -> tuple[np.ndarray, dict]:
        calls.append((labels.shape, int(info.width), int(info.height)))
        grid = np.where(labels[::2, ::2] == 3, 0, 100).astype(np.int8)
        return grid, {
            "free_fraction": float(np.mean(grid == 0)),
            "resolution": 0.5,
            "origin_x": 1.0,
            "frame_id": "base_footprint",
        }

    return grid_fn


def test_grid_hook(known_dataset: Path, colour_model: Path, tmp_path: Path) -> None:
    bag = make_bag_cli(known_dataset, tmp_path / "bag")
    calls: list = []
    spec = ModelSpec.for_model(colour_model)
    with create_backend("onnxruntime", colour_model) as be:
        res = evaluate_bag(
            bag, Segmenter(be, spec), grid_fn=fake_grid_fn(calls), write_bag=tmp_path / "w", progress=False
        )
    assert calls == [((4, 8), 8, 4), ((4, 8), 8, 4)]  # labels and the bag's camera_info
    d = res.to_dict()
    assert d["grid"]["frames"] == 2
    assert d["grid"]["free_fraction"] == {"mean": pytest.approx(0.25), "min": 0.0, "max": 0.5}
    assert "grid" in d["latency_ms"] and "resolution" not in d["grid"]
    assert all(f.grid is not None for f in res.strip)
    with BagReader(tmp_path / "w") as r:
        grids = [m.decode() for m in r.messages([GRID_TOPIC])]
    assert len(grids) == 2 and grids[0].header.frame_id == "base_footprint"
    assert grids[0].info.resolution == 0.5 and grids[0].info.origin.position.x == 1.0
    assert (grids[0].info.width, grids[0].info.height) == (4, 2)
    assert list(grids[0].data) == [100, 100, 0, 0] * 2


def test_grid_hook_from_cli_and_camera_config_fallback(
    known_dataset: Path, colour_model: Path, tmp_path: Path, monkeypatch
) -> None:
    calls: list = []
    monkeypatch.setattr(eval_cli, "make_grid_fn", lambda spec, cfg: fake_grid_fn(calls))
    rgb = np.zeros((4, 8, 3), np.uint8)
    bag = foreign_bag(tmp_path / "no_info", {"/img": [(7, image(rgb, "rgb8", 7))]})
    out = tmp_path / "g.json"
    assert eval_bag_cli(bag, colour_model, out) == 0
    res = json.loads(out.read_text())
    assert "grid" not in res and "occupancy grid skipped" in res["warnings"][0]
    cfg = tmp_path / "cam.yaml"
    cfg.write_text(
        "seg_perception:\n  ros__parameters:\n    camera_info:\n      width: 16\n      height: 8\n"
        "      k: [10.0, 0.0, 8.0, 0.0, 10.0, 4.0, 0.0, 0.0, 1.0]\n"
    )
    assert eval_bag_cli(bag, colour_model, out, "--camera-config", str(cfg)) == 0
    assert json.loads(out.read_text())["grid"]["frames"] == 1
    assert calls == [((4, 8), 8, 4)]  # camera_info from the config, scaled to the image


def test_camvid_bag_agrees_with_dataset_eval(camvid_dir: Path, tiny_model: Path, tmp_path: Path) -> None:
    bag = make_bag_cli(camvid_dir, tmp_path / "camvid_bag", "--limit", "3")
    out = tmp_path / "bag.json"
    assert eval_bag_cli(bag, tiny_model, out) == 0
    bag_res = json.loads(out.read_text())
    spec = ModelSpec.for_model(tiny_model)
    with create_backend("onnxruntime", tiny_model) as be:
        ds_res = evaluate_dataset(
            SegmentationDataset(camvid_dir, "test", limit=3, sort=True), Segmenter(be, spec), progress=False
        ).to_dict()
    assert bag_res["frames_with_gt"] == ds_res["frames"] == 3
    assert bag_res["miou"] == pytest.approx(ds_res["miou"], abs=1e-12)
    assert bag_res["confusion_matrix"] == ds_res["confusion_matrix"]


def test_eval_bag_subprocess_reports_corrupt_bag_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad_bag"
    bad.mkdir()
    (bad / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9, storage_identifier: mcap}\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seg_perception.cli",
            "eval-bag",
            str(bad),
            "--json",
            str(tmp_path / "x.json"),
            "--model",
            str(tmp_path / "m.onnx"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_live_write_bag_is_rejected(tmp_path: Path, colour_model: Path, capsys) -> None:
    rc = eval_bag_cli(tmp_path / "bag", colour_model, tmp_path / "x.json", "--live", "--write-bag", str(tmp_path / "w"))
    assert rc == 2 and "--write-bag works offline only" in capsys.readouterr().err
