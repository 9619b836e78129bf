"""Truncated bags (a robot that lost power): eval-bag scores the intact frames, reports the loss, exits 0."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from seg_perception.cli import main
from seg_perception.evaluation.bags import DEFAULT_START_NS, GT_TOPIC, IMAGE_TOPIC, BagReader, stamp_ns

N_FRAMES = 10
RATE_HZ = 15.0


def frames(ev, shape: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """HxW frames painted in palette colours; ground truth differs from the painting by frame."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(N_FRAMES):
        classes = rng.integers(0, 11, size=shape, dtype=np.uint8)
        gt = classes.copy()
        gt[: 2 + i, :] = (gt[: 2 + i, :] + 1 + i % 3) % 11  # more wrong rows in later frames
        out.append((ev.paint(classes), gt))
    return out


def make(
    ev, root: Path, name: str, chosen: list[int] | None = None, fmt: str = "mcap", shape: tuple[int, int] = (48, 64)
) -> Path:
    all_frames = frames(ev, shape)
    picked = [all_frames[i] for i in (chosen if chosen is not None else range(N_FRAMES))]
    data = ev.write_dataset(root / f"{name}_data", picked)
    bag = root / name
    args = ["make-bag", "--data", str(data), "--out", str(bag), "--format", fmt, "--no-progress"]
    assert main([*args, "--rate", str(RATE_HZ)]) == 0
    return bag


def data_file(bag: Path) -> Path:
    (f,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    return f


def eval_bag(bag: Path, model: Path, out: Path, *extra: str) -> int:
    return main(
        ["eval-bag", str(bag), "--json", str(out), "--model", str(model), "--no-progress", "--no-plots", *extra]
    )


def frame_index(ns: int) -> int:
    return round((ns - DEFAULT_START_NS) * RATE_HZ / 1e9)


def intact_by_bytes(bag: Path, cut: int) -> dict[str, set[int]]:
    """Frame indices per topic whose whole message record lies before byte ``cut`` of the uncut MCAP file.

    Independent of the salvage code: each message's CDR bytes are found in the file, and a record
    is intact when its data ends before the cut.
    """
    blob = data_file(bag).read_bytes()
    out: dict[str, set[int]] = {IMAGE_TOPIC: set(), GT_TOPIC: set()}
    with BagReader(bag) as reader:
        for m in reader.messages([IMAGE_TOPIC, GT_TOPIC]):
            raw = bytes(m.raw)
            at = blob.find(raw)
            assert at > 0 and blob.find(raw, at + 1) == -1
            if at + len(raw) <= cut:
                out[m.topic].add(frame_index(stamp_ns(m.decode().header)))
    return out


@pytest.mark.parametrize("fraction", [0.5, 0.95])
def test_truncated_mcap_scores_its_intact_frames(colour_model: Path, tmp_path: Path, ev, fraction, capsys) -> None:
    bag = make(ev, tmp_path, "bag")
    cut_bag = tmp_path / "cut"
    shutil.copytree(bag, cut_bag)
    size = data_file(bag).stat().st_size
    cut = int(size * fraction)
    os.truncate(data_file(cut_bag), cut)
    intact = intact_by_bytes(bag, cut)
    both = sorted(intact[IMAGE_TOPIC] & intact[GT_TOPIC])
    assert 0 < len(both) < N_FRAMES

    out = tmp_path / "cut.json"
    assert eval_bag(cut_bag, colour_model, out) == 0
    res = json.loads(out.read_text())
    assert res["frames"] == len(intact[IMAGE_TOPIC]) and res["frames_with_gt"] == len(both)
    assert res["lost_frames"] == N_FRAMES - len(intact[IMAGE_TOPIC])
    damage = res["damage"]
    assert damage["lost_by_topic"][IMAGE_TOPIC] == N_FRAMES - len(intact[IMAGE_TOPIC])
    assert damage["lost_by_topic"][GT_TOPIC] == N_FRAMES - len(intact[GT_TOPIC])
    assert damage["messages_read"] + damage["messages_lost"] == 3 * N_FRAMES  # image, camera_info, gt per frame
    assert damage["file_bytes"] == cut and 0 < damage["damaged_at_byte"] < cut
    assert "File end magic is invalid" in damage["reason"]
    assert any(w.startswith("damaged bag") and "lost" in w for w in res["warnings"])

    # the same score as evaluating exactly the intact frames
    ref = make(ev, tmp_path, "ref", chosen=both)
    assert eval_bag(ref, colour_model, tmp_path / "ref.json") == 0
    want = json.loads((tmp_path / "ref.json").read_text())
    assert res["confusion_matrix"] == want["confusion_matrix"]
    assert res["miou"] == pytest.approx(want["miou"], abs=1e-12)

    capsys.readouterr()
    assert eval_bag(cut_bag, colour_model, tmp_path / "strict.json", "--strict") == 2
    err = capsys.readouterr().err
    assert "error: cannot open bag" in err and "File end magic is invalid" in err and "Traceback" not in err


def test_truncated_zstd_mcap_reads_the_decodable_part(colour_model: Path, tmp_path: Path, ev) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

    from seg_perception.evaluation.bags import get_typestore

    plain = make(ev, tmp_path, "plain", shape=(96, 128))  # several zstd blocks: the first ones decode
    bag = tmp_path / "zstd"
    store = get_typestore()
    writer = Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with BagReader(plain) as reader, writer:
        conns = {t: writer.add_connection(t, info.msgtype, typestore=store) for t, info in reader.topics.items()}
        for m in reader.messages(list(reader.topics)):
            writer.write(conns[m.topic], m.log_ns, bytes(m.raw))
    os.truncate(data_file(bag), data_file(bag).stat().st_size // 2)
    out = tmp_path / "z.json"
    assert eval_bag(bag, colour_model, out) == 0
    res = json.loads(out.read_text())
    assert 0 < res["frames"] < N_FRAMES and res["lost_frames"] == N_FRAMES - res["frames"]


def test_truncated_sqlite3_reads_the_readable_rows(colour_model: Path, tmp_path: Path, ev, capsys) -> None:
    bag = make(ev, tmp_path, "bag", fmt="sqlite3")
    os.truncate(data_file(bag), data_file(bag).stat().st_size // 2)
    out = tmp_path / "cut.json"
    assert eval_bag(bag, colour_model, out) == 0
    res = json.loads(out.read_text())
    assert 0 < res["frames"] < N_FRAMES
    assert res["frames"] + res["lost_frames"] == N_FRAMES
    assert "malformed" in res["damage"]["where"] and "row id" in res["damage"]["where"]
    with BagReader(bag) as reader:
        stamps = {frame_index(stamp_ns(m.decode().header)) for m in reader.messages([IMAGE_TOPIC])}
        gts = {frame_index(stamp_ns(m.decode().header)) for m in reader.messages([GT_TOPIC])}
    ref = make(ev, tmp_path, "ref", chosen=sorted(stamps & gts))
    assert eval_bag(ref, colour_model, tmp_path / "ref.json") == 0
    assert res["confusion_matrix"] == json.loads((tmp_path / "ref.json").read_text())["confusion_matrix"]
    capsys.readouterr()
    assert eval_bag(bag, colour_model, tmp_path / "strict.json", "--strict") == 2
    assert "malformed" in capsys.readouterr().err

    # cut before the topics table (page 4 of 4 KiB pages): nothing can be attributed to a topic
    os.truncate(data_file(bag), 2 * 4096)
    assert eval_bag(bag, colour_model, out) == 2
    err = capsys.readouterr().err
    assert "topics table is unreadable" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("fmt", "size", "message"),
    [
        ("mcap", 5, "cut inside its 8-byte magic"),
        ("mcap", 20, "no message is intact"),
        ("sqlite3", 50, "cut inside its 100-byte SQLite header"),
    ],
)
def test_file_cut_inside_its_header_is_a_clear_error(
    colour_model: Path, tmp_path: Path, ev, fmt, size, message, capsys
) -> None:
    bag = make(ev, tmp_path, "bag", fmt=fmt)
    os.truncate(data_file(bag), size)
    assert eval_bag(bag, colour_model, tmp_path / "r.json") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open bag") and message in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()
