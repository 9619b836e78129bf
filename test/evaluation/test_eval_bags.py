"""make-bag and bag I/O: round trips in both storage formats, camera_info from config, rosbag2 metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from seg_perception.cli import main
from seg_perception.conversions.image import compressed_msg_to_rgb, image_msg_to_numpy
from seg_perception.errors import BagError, ConfigError
from seg_perception.evaluation.bag_writer import make_bag
from seg_perception.evaluation.bags import (
    CAMERA_INFO_TOPIC,
    COMPRESSED_TOPIC,
    DEFAULT_START_NS,
    GT_TOPIC,
    IMAGE_TOPIC,
    BagReader,
    stamp_ns,
)
from seg_perception.evaluation.camera_config import camera_for_image, load_camera_config
from seg_perception.evaluation.datasets import SegmentationDataset


def read_topic(bag: Path, topic: str) -> list[tuple[int, object]]:
    with BagReader(bag) as r:
        return [(m.log_ns, m.decode()) for m in r.messages([topic])]


@pytest.mark.parametrize("fmt", ["mcap", "sqlite3"])
def test_make_bag_round_trip(street_dataset: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"bag_{fmt}"
    rc = main(
        [
            "make-bag",
            "--data",
            str(street_dataset),
            "--split",
            "test",
            "--out",
            str(out),
            "--rate",
            "10",
            "--format",
            fmt,
            "--compressed",
            "png",
            "--no-progress",
        ]
    )
    assert rc == 0
    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == fmt and meta["version"] == 9 and meta["message_count"] == 12
    types = {t["topic_metadata"]["name"]: t["topic_metadata"]["type"] for t in meta["topics_with_message_count"]}
    assert types == {
        IMAGE_TOPIC: "sensor_msgs/msg/Image",
        COMPRESSED_TOPIC: "sensor_msgs/msg/CompressedImage",
        CAMERA_INFO_TOPIC: "sensor_msgs/msg/CameraInfo",
        GT_TOPIC: "sensor_msgs/msg/Image",
    }

    ds = SegmentationDataset(street_dataset, "test", sort=True)
    images, gts = read_topic(out, IMAGE_TOPIC), read_topic(out, GT_TOPIC)
    compressed, infos = read_topic(out, COMPRESSED_TOPIC), read_topic(out, CAMERA_INFO_TOPIC)
    assert len(images) == len(gts) == len(compressed) == len(infos) == len(ds) == 3
    for i in range(len(ds)):
        rgb, lab = ds.load(i)
        expected_ns = DEFAULT_START_NS + i * 100_000_000  # 10 Hz
        for log_ns, msg in (images[i], gts[i], compressed[i], infos[i]):
            assert log_ns == expected_ns and stamp_ns(msg.header) == expected_ns
            assert msg.header.frame_id == "camera_optical_frame"
        assert images[i][1].encoding == "rgb8" and gts[i][1].encoding == "mono8"
        np.testing.assert_array_equal(image_msg_to_numpy(images[i][1]), rgb)
        np.testing.assert_array_equal(image_msg_to_numpy(gts[i][1]), lab)
        np.testing.assert_array_equal(compressed_msg_to_rgb(compressed[i][1]), rgb)  # png is lossless
        info = infos[i][1]
        assert (info.width, info.height) == (64, 48) and info.distortion_model == "plumb_bob"
        assert info.k[0] > 0 and info.k[2] == pytest.approx(31.5) and info.p[0] == info.k[0]


def test_camera_config_nested_dotted_and_scaled(tmp_path: Path) -> None:
    k = [400.0, 0.0, 239.5, 0.0, 400.0, 179.5, 0.0, 0.0, 1.0]
    nested = tmp_path / "nested.yaml"
    nested.write_text(
        yaml.safe_dump(
            {
                "seg_perception": {
                    "ros__parameters": {
                        "camera_info": {"width": 480, "height": 360, "k": k, "d": [0.1, 0.0, 0.0, 0.0, 0.0]}
                    }
                }
            }
        )
    )
    cam = load_camera_config(nested)
    assert cam is not None and cam.width == 480 and cam.k[0, 0] == 400.0 and cam.d[0] == 0.1
    dotted = tmp_path / "dotted.yaml"
    dotted.write_text(
        yaml.safe_dump(
            {"/**": {"ros__parameters": {"camera_info.width": 480, "camera_info.height": 360, "camera_info.k": k}}}
        )
    )
    scaled, source = camera_for_image(240, 180, dotted)
    assert scaled.k[0, 0] == pytest.approx(200.0) and scaled.k[0, 2] == pytest.approx(119.5)
    assert "scaled from 480x360" in source

    empty = tmp_path / "no_camera.yaml"
    empty.write_text(yaml.safe_dump({"seg_perception": {"ros__parameters": {"backend": "auto"}}}))
    cam, source = camera_for_image(64, 48, empty)
    assert "default pinhole" in source and cam.k[0, 2] == pytest.approx(31.5)
    with pytest.raises(ConfigError, match="does not exist"):
        camera_for_image(64, 48, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"seg_perception": {"ros__parameters": {"camera_info": {"width": 480, "height": 360, "k": [0.0] * 9}}}}
        )
    )
    with pytest.raises(ConfigError, match="invalid camera_info"):
        load_camera_config(bad)


def test_make_bag_uses_camera_config(street_dataset: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cam.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "seg_perception": {
                    "ros__parameters": {
                        "camera_info": {
                            "width": 64,
                            "height": 48,
                            "k": [50.0, 0, 32.0, 0, 51.0, 24.0, 0, 0, 1],
                            "d": [0.0] * 8,
                        }
                    }
                }
            }
        )
    )
    out = tmp_path / "bag"
    assert (
        main(
            [
                "make-bag",
                "--data",
                str(street_dataset),
                "--out",
                str(out),
                "--camera-config",
                str(cfg),
                "--no-progress",
                "--limit",
                "1",
            ]
        )
        == 0
    )
    ((_, info),) = read_topic(out, CAMERA_INFO_TOPIC)
    assert list(info.k) == [50.0, 0, 32.0, 0, 51.0, 24.0, 0, 0, 1]
    assert info.distortion_model == "rational_polynomial" and len(info.d) == 8


def test_make_bag_errors(street_dataset: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "exists"
    out.mkdir()
    assert main(["make-bag", "--data", str(street_dataset), "--out", str(out), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    with pytest.raises(BagError, match="no frames"):
        make_bag([], tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
    frames = [(np.zeros((4, 8, 3), np.uint8), None), (np.zeros((5, 8, 3), np.uint8), None)]
    with pytest.raises(BagError, match="stream started at 8x4"):
        make_bag(frames, tmp_path / "sizes")
    assert not (tmp_path / "sizes").exists()  # a partial bag is removed
