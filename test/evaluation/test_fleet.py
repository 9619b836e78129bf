"""eval-bags on a local 2-CPU Ray: exact merge vs eval-bag, corrupt bag, killed worker, --resume, no Ray.

One Ray instance is shared by the module (start-up takes seconds); bags are tiny
(3 frames of 12x16) and written with make-bag's writer in both storage formats.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from seg_perception.cli import main
from seg_perception.evaluation.bag_writer import make_bag
from seg_perception.evaluation.histogram import LatencyHistogram

FRAMES_PER_BAG = 3


def _frames(ev: SimpleNamespace, seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Palette-painted images (predicted exactly as painted) with ground truth that differs in places."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        classes = rng.integers(0, 11, size=(12, 16)).astype(np.uint8)
        gt = classes.copy()
        flip = rng.random(gt.shape) < 0.3
        gt[flip] = rng.integers(0, 12, size=int(flip.sum()))  # includes void (11)
        out.append((ev.paint(classes), gt))
    return out


@pytest.fixture(scope="module")
def ray_local() -> Any:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 1024**2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A colour model, 4 bags (sqlite3/mcap mixed) and one bag holding all their frames in order."""
    from importlib import util

    conftest = Path(__file__).with_name("conftest.py")
    spec = util.spec_from_file_location("_ev_conftest", conftest)
    ev = util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(ev)  # type: ignore[union-attr]
    root = tmp_path_factory.mktemp("fleet")
    model = ev.make_colour_model(root / "colour.onnx")
    bags, every = [], []
    for i in range(4):
        frames = _frames(ev, i, FRAMES_PER_BAG)
        every += frames
        bags.append(make_bag(iter(frames), root / f"bag{i}", storage=("sqlite3", "mcap")[i % 2]).path)
    combined = make_bag(iter(every), root / "all", storage="mcap").path
    return SimpleNamespace(root=root, model=model, bags=[str(b) for b in bags], combined=str(combined))


def _eval_bags(fleet: SimpleNamespace, out: Path, bags: list[str], *extra: str) -> tuple[int, dict[str, Any]]:
    rc = main(["eval-bags", *bags, "--json", str(out), "--model", str(fleet.model), "--no-plots", *extra])
    return rc, json.loads(out.read_text())


def test_histogram_merge_is_exact_and_quantiles_close() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.lognormal(2.0, 0.5, 500), rng.lognormal(2.5, 0.3, 700)
    merged = LatencyHistogram.of(a)
    merged.merge(LatencyHistogram.from_dict(json.loads(json.dumps(LatencyHistogram.of(b).to_dict()))))
    whole = LatencyHistogram.of(np.concatenate([a, b]))
    assert merged.bins == whole.bins and merged.count == 1200 and merged.max == whole.max
    both = np.concatenate([a, b])
    for q in (0.5, 0.95):
        assert merged.quantile(q) == pytest.approx(np.percentile(both, 100 * q), rel=0.011)
    assert merged.summary()["mean"] == pytest.approx(both.mean(), rel=1e-12)


def test_no_ray_gives_one_line_install_hint(
    fleet: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    rc = main(["eval-bags", fleet.bags[0], "--json", str(tmp_path / "out.json"), "--model", str(fleet.model)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "needs Ray" in err and "pip install 'seg_perception[fleet]'" in err
    assert not (tmp_path / "out.json").exists()


def test_merged_miou_equals_eval_bag_on_all_frames(ray_local: Any, fleet: SimpleNamespace, tmp_path: Path) -> None:
    serial_json = tmp_path / "serial.json"
    assert (
        main(["eval-bag", fleet.combined, "--json", str(serial_json), "--model", str(fleet.model), "--no-plots"]) == 0
    )
    serial = json.loads(serial_json.read_text())
    rc, merged = _eval_bags(fleet, tmp_path / "fleet.json", fleet.bags)
    assert rc == 0
    assert merged["frames"] == serial["frames"] == 4 * FRAMES_PER_BAG
    assert merged["confusion_matrix"] == serial["confusion_matrix"]
    assert abs(merged["miou"] - serial["miou"]) <= 1e-9
    for name, iou in serial["per_class_iou"].items():
        assert (merged["per_class_iou"][name] is None) == (iou is None)
        if iou is not None:
            assert abs(merged["per_class_iou"][name] - iou) <= 1e-9
    assert [b["status"] for b in merged["bags"]] == ["ok"] * 4
    assert [b["frames"] for b in merged["bags"]] == [FRAMES_PER_BAG] * 4
    assert merged["latency_ms"]["total"]["max"] > 0
    assert (tmp_path / "fleet.md").read_text().count("| ok |") == 4


def test_corrupt_bag_from_manifest_is_failed_and_others_counted(
    ray_local: Any, fleet: SimpleNamespace, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.mcap"
    corrupt.write_bytes(b"this is not an mcap file" * 10)
    manifest = tmp_path / "bags.txt"
    manifest.write_text(f"# three bags\n{fleet.bags[0]}\ncorrupt.mcap\n\n{fleet.bags[1]}\n")  # relative to the file
    rc, out = _eval_bags(fleet, tmp_path / "out.json", [], "--manifest", str(manifest))
    assert rc == 1
    statuses = {Path(b["path"]).name: b for b in out["bags"]}
    assert statuses["corrupt.mcap"]["status"] == "failed" and "corrupt.mcap" in statuses["corrupt.mcap"]["error"]
    assert statuses["bag0"]["status"] == statuses["bag1"]["status"] == "ok"
    assert out["frames"] == 2 * FRAMES_PER_BAG and out["failed_bags"] == 1


def test_killed_worker_is_retried_and_result_unchanged(
    ray_local: Any, fleet: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bags = fleet.bags[:2]
    rc, clean = _eval_bags(fleet, tmp_path / "clean.json", bags)
    assert rc == 0
    marker = tmp_path / "killed.txt"
    monkeypatch.setenv("SEG_PERCEPTION_FLEET_TEST_KILL", f"bag1:1:{marker}")
    rc, killed = _eval_bags(fleet, tmp_path / "killed.json", bags)
    assert rc == 0
    assert marker.exists()  # the first attempt did exit its worker after one frame
    killed_pid = int(marker.read_text().split()[-1])
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "killed_bags").glob("bag1-*.json")]
    assert record["status"] == "ok" and record["pid"] != killed_pid  # finished by a retry in another process
    assert killed["confusion_matrix"] == clean["confusion_matrix"] and killed["miou"] == clean["miou"]
    assert [b["frames"] for b in killed["bags"]] == [FRAMES_PER_BAG] * 2


def test_resume_skips_bags_already_done(ray_local: Any, fleet: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    # An interrupted run: only bag0 and bag1 finished (their per-bag files exist).
    assert _eval_bags(fleet, out, fleet.bags[:2])[0] == 0
    results = sorted((tmp_path / "run_bags").glob("*.json"))
    assert len(results) == 2
    before = {p.name: p.stat().st_mtime_ns for p in results}
    rc, resumed = _eval_bags(fleet, out, fleet.bags[:3], "--resume")
    assert rc == 0
    assert [b["resumed"] for b in resumed["bags"]] == [True, True, False]
    assert {p.name: p.stat().st_mtime_ns for p in results} == before  # not rewritten
    assert len(list((tmp_path / "run_bags").glob("*.json"))) == 3
    full = _eval_bags(fleet, tmp_path / "full.json", fleet.bags[:3])[1]
    assert resumed["confusion_matrix"] == full["confusion_matrix"] and resumed["frames"] == 3 * FRAMES_PER_BAG
