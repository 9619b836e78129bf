"""``eval-bags``: evaluate many bags as Ray tasks and merge them into one exact report.

Each bag is one Ray task (``num_cpus=1``) that runs ``eval_bag.evaluate_bag`` with the
node's ``Segmenter`` on a backend limited to one inference thread, exactly what
``eval-bag`` runs. A task returns its confusion counts (K x (K+1) int64) and per-stage
latency histograms (``histogram.LatencyHistogram``); the driver sums the counts (so the
merged mIoU is the serial one, bit for bit) and merges the histograms (never medians).

The model reaches the workers through Ray's object store: the driver reads the model
file and its YAML once, ``ray.put``s the bytes, and each worker writes them to a local
cache keyed by their SHA-256. Bags are large and must be on storage every worker can
read at the same path; the model is small and is often a fresh local export, so
shipping its bytes needs no shared storage for it and pins every task to the exact
model the driver saw.

Faults: a bag that cannot be read or evaluated comes back ``failed`` with its error and
never stops the others. A worker process that dies is retried by Ray
(``max_retries``); the retry reruns the whole bag, so the result stays exact. Each
bag's result is written atomically (temp file + ``os.replace``) as soon as it arrives,
so ``resume=True`` skips bags whose result exists for the same bag file, model and
options.

Test hook: ``kill_hook=(bag_name, after_frames, marker_path)`` makes the first attempt
on the bag named ``bag_name`` exit its worker process after ``after_frames`` frames
(the marker file records that it happened; the retry sees it and runs normally).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.errors import ConfigError, SegPerceptionError
from seg_perception.evaluation.histogram import LatencyHistogram
from seg_perception.evaluation.metrics import ConfusionMatrix

log = logging.getLogger(__name__)

RAY_HINT = "eval-bags needs Ray: pip install 'seg_perception[fleet]' (or pip install 'ray>=2.40')"
KillHook = tuple[str, int, str]


@dataclass(frozen=True)
class FleetOptions:
    """eval-bag's options, with the same meaning, plus the engine's."""

    model: str | None = None
    backend: str = "auto"
    image_topic: str | None = None
    gt_topic: str | None = None
    camera_info_topic: str | None = None
    camera_config: str | None = None
    address: str | None = None
    num_cpus: int | None = None
    max_retries: int = 3

    def task_options(self) -> dict[str, Any]:
        """What changes a bag's result (part of its fingerprint)."""
        keys = ("backend", "image_topic", "gt_topic", "camera_info_topic", "camera_config")
        return {k: v for k, v in asdict(self).items() if k in keys}


@dataclass
class FleetResult:
    """Merged outcome: ``summary`` is the JSON body; ``bags`` the per-bag records in input order."""

    summary: dict[str, Any]
    bags: list[dict[str, Any]]
    confusion: ConfusionMatrix | None
    latency: dict[str, LatencyHistogram] = field(default_factory=dict)
    evaluated: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)

    @property
    def any_failed(self) -> bool:
        return any(b["status"] == "failed" for b in self.bags)


def import_ray() -> Any:
    """The ``ray`` module, or ConfigError with the install hint (one line)."""
    try:
        import ray
    except ImportError as err:
        raise ConfigError(RAY_HINT) from err
    return ray


# --------------------------------------------------------------------------- model shipping


def model_blob(model: str | None) -> dict[str, Any]:
    """{"name", "sha256", "files": {filename: bytes}} of the model file and its YAML (if any)."""
    from seg_perception.evaluation.session import resolve_model_path

    path = resolve_model_path(model)
    files = {path.name: path.read_bytes()}
    yaml_path = path.with_suffix(".yaml")
    if yaml_path.is_file():
        files[yaml_path.name] = yaml_path.read_bytes()
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name])
    return {"name": path.name, "sha256": digest.hexdigest(), "files": files, "source": str(path)}


def _materialize(blob: dict[str, Any]) -> Path:
    """Write the blob's files into a local cache folder (once per host); the model's path there."""
    folder = Path(tempfile.gettempdir()) / "seg_perception_fleet" / blob["sha256"][:16]
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in blob["files"].items():
        target = folder / name
        if not target.is_file() or target.stat().st_size != len(data):
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, target)
    return folder / blob["name"]


# --------------------------------------------------------------------------- the task


class _ExitAfter:
    """Segmenter proxy for the kill hook: exits the worker process after ``after`` frames."""

    def __init__(self, segmenter: Any, after: int) -> None:
        self._segmenter = segmenter
        self._left = after
        self.spec = segmenter.spec

    def segment(self, rgb: np.ndarray, want_confidence: bool = True) -> Any:
        if self._left <= 0:
            os._exit(17)  # simulate a worker that dies mid-task (OOM kill, node loss)
        self._left -= 1
        return self._segmenter.segment(rgb, want_confidence=want_confidence)


def _status(result: Any) -> str:
    if result.rejected or result.damage or (result.topics.gt is not None and result.frames_with_gt < result.frames):
        return "partial"
    return "ok"


def evaluate_bag_task(
    bag: str, blob: dict[str, Any], options: dict[str, Any], kill_hook: KillHook | None = None
) -> dict[str, Any]:
    """One bag on one inference thread: eval-bag's evaluation, returned as a mergeable record.

    Errors of the bag (or of anything while evaluating it) give ``status: failed`` with the
    error text instead of raising, so one bad bag never fails the run or triggers retries.
    """
    import cv2

    from seg_perception.backends.select import select_backend
    from seg_perception.evaluation.eval_bag import evaluate_bag
    from seg_perception.evaluation.session import make_grid_fn
    from seg_perception.model_spec import ModelSpec
    from seg_perception.pipeline import Segmenter

    cv2.setNumThreads(1)
    start = time.perf_counter()
    record: dict[str, Any] = {"path": bag, "status": "failed", "frames": 0, "miou": None, "error": None}
    try:
        path = _materialize(blob)
        spec = ModelSpec.for_model(path)
        selection = select_backend(options.get("backend", "auto"), path, num_threads=1)
        with selection.backend as be:
            segmenter: Any = Segmenter(be, spec)
            if kill_hook is not None and Path(bag).name == kill_hook[0] and not Path(kill_hook[2]).exists():
                Path(kill_hook[2]).write_text(f"killed pid {os.getpid()}\n")
                segmenter = _ExitAfter(segmenter, kill_hook[1])
            result = evaluate_bag(
                bag,
                segmenter,
                image_topic=options.get("image_topic"),
                gt_topic=options.get("gt_topic"),
                camera_info_topic=options.get("camera_info_topic"),
                grid_fn=make_grid_fn(spec, options.get("camera_config")),
                camera_config=options.get("camera_config"),
                strip_frames=0,
                progress=False,
            )
    except Exception as err:  # noqa: BLE001 - any failure of one bag is reported, never raised
        name = "" if isinstance(err, SegPerceptionError) else f"{type(err).__name__}: "
        record.update(error=f"{name}{err}", wall_s=time.perf_counter() - start)
        return record
    body = result.to_dict()
    stages = {**result.latency, "total": result.total_ms}
    record.update(
        status=_status(result),
        frames=result.frames,
        frames_with_gt=result.frames_with_gt,
        rejected_frames=result.rejected,
        miou=body.get("miou"),
        image_topic=result.topics.image,
        gt_topic=result.topics.gt,
        warnings=list(result.warnings),
        confusion=None if result.confusion is None else result.confusion.counts.tolist(),
        class_names=list(spec.class_names),
        ignore_index=spec.ignore_index,
        latency_hist={s: LatencyHistogram.of(v).to_dict() for s, v in stages.items() if v},
        wall_s=time.perf_counter() - start,
        pid=os.getpid(),
    )
    return record


# --------------------------------------------------------------------------- per-bag results


def bag_fingerprint(bag: str, model_sha: str, options: dict[str, Any]) -> str:
    """SHA-256 over the bag's absolute path, size and mtime (all files), the model and options."""
    p = Path(bag).resolve()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists()]
    text = json.dumps([str(p), stats, model_sha, options], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def result_path(results_dir: Path, bag: str) -> Path:
    """``<results_dir>/<bag name>-<hash of its absolute path>.json``."""
    p = Path(bag).resolve()
    return results_dir / f"{p.name}-{hashlib.sha1(str(p).encode()).hexdigest()[:10]}.json"


def write_atomic(path: Path, record: dict[str, Any]) -> None:
    """Write JSON to a temp file beside ``path`` and rename it over ``path`` (never half written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, path)


def load_done(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """A finished (ok/partial) result for this fingerprint, else None (missing, unreadable, failed, stale)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fingerprint or record.get("status") not in ("ok", "partial"):
        return None
    return record


# --------------------------------------------------------------------------- merge


def merge(records: Sequence[dict[str, Any]]) -> tuple[ConfusionMatrix | None, dict[str, LatencyHistogram], int]:
    """Sum confusion counts and merge latency histograms of the non-failed records: (cm, hists, frames)."""
    cm: ConfusionMatrix | None = None
    hists: dict[str, LatencyHistogram] = {}
    frames = 0
    for r in records:
        if r["status"] == "failed":
            continue
        frames += int(r["frames"])
        if r.get("confusion") is not None and r.get("frames_with_gt"):
            counts = np.asarray(r["confusion"], dtype=np.int64)
            if cm is None:
                cm = ConfusionMatrix(len(r["class_names"]), r.get("ignore_index"), r["class_names"])
            if counts.shape != cm.counts.shape:
                raise ConfigError(f"bag {r['path']} was scored with another class count")
            cm.counts += counts
        for stage, data in r.get("latency_hist", {}).items():
            hists.setdefault(stage, LatencyHistogram()).merge(LatencyHistogram.from_dict(data))
    return cm, hists, frames


def _public(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("path", "status", "frames", "frames_with_gt", "rejected_frames", "miou", "error", "warnings", "wall_s")
    out = {k: record.get(k) for k in keys if k in record}
    out.setdefault("error", None)
    return out


# --------------------------------------------------------------------------- the run


def _init_ray(ray: Any, options: FleetOptions) -> bool:
    """Join or start Ray; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if options.address:
        ray.init(address=options.address, **kwargs)
    else:
        ray.init(num_cpus=options.num_cpus or os.cpu_count() or 1, **kwargs)
    return True


def run_fleet(
    bags: Sequence[str],
    options: FleetOptions,
    results_dir: str | Path,
    *,
    resume: bool = False,
    kill_hook: KillHook | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> FleetResult:
    """Evaluate ``bags`` as Ray tasks (see module docstring) and merge them.

    Args:
        bags: bag paths (as eval-bag takes them); each must be readable by every worker.
        options: eval-bag's options and the engine's (address, num_cpus, max_retries).
        results_dir: folder for the per-bag JSON results (written atomically as they arrive).
        resume: reuse finished per-bag results with the same fingerprint instead of rerunning.
        kill_hook: test hook (module docstring).
        on_result: called with each per-bag record as it arrives (progress).
    Raises ConfigError without Ray or for an empty bag list; ModelError for a missing model.
    """
    if not bags:
        raise ConfigError("no bags given")
    ray = import_ray()
    blob = model_blob(options.model)
    task_opts = options.task_options()
    results_dir = Path(results_dir)
    records: dict[str, dict[str, Any]] = {}
    fingerprints = {b: bag_fingerprint(b, blob["sha256"], task_opts) for b in bags}
    out = FleetResult(summary={}, bags=[], confusion=None)
    if resume:
        for b in bags:
            done = load_done(result_path(results_dir, b), fingerprints[b])
            if done is not None:
                records[b] = done
                out.resumed.append(b)
    todo = [b for b in dict.fromkeys(bags) if b not in records]
    start = time.perf_counter()
    started = _init_ray(ray, options) if todo else False
    try:
        if todo:
            remote = ray.remote(num_cpus=1, max_retries=options.max_retries, retry_exceptions=False)(evaluate_bag_task)
            blob_ref = ray.put(blob)
            pending = {remote.remote(b, blob_ref, task_opts, kill_hook): b for b in todo}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    b = pending.pop(ref)
                    try:
                        record = ray.get(ref)
                    except Exception as err:  # noqa: BLE001 - a lost task (retries spent) fails its bag only
                        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                        record = {"path": b, "status": "failed", "frames": 0, "miou": None, "error": msg}
                    record["fingerprint"] = fingerprints[b]
                    write_atomic(result_path(results_dir, b), record)
                    records[b] = record
                    out.evaluated.append(b)
                    if on_result is not None:
                        on_result(record)
    finally:
        if started:
            ray.shutdown()
    wall_s = time.perf_counter() - start
    ordered = [records[b] for b in dict.fromkeys(bags)]
    cm, hists, frames = merge(ordered)
    summary: dict[str, Any] = {
        "mode": "fleet",
        "model": blob["source"],
        "model_sha256": blob["sha256"],
        "backend": options.backend,
        "frames": frames,
    }
    if cm is not None:
        summary.update(cm.summary())
        summary["class_names"] = list(cm.class_names)
        summary["confusion_matrix"] = cm.counts.tolist()
    summary["latency_ms"] = {s: h.summary() for s, h in hists.items()}
    summary["wall_s"] = wall_s
    summary["wall_fps"] = (sum(int(records[b]["frames"]) for b in out.evaluated) / wall_s) if wall_s > 0 else None
    summary["bags"] = [_public(r) | {"resumed": r["path"] in out.resumed} for r in ordered]
    summary["failed_bags"] = sum(1 for r in ordered if r["status"] == "failed")
    out.summary, out.bags, out.confusion, out.latency = summary, ordered, cm, hists
    return out


__all__ = [
    "RAY_HINT",
    "FleetOptions",
    "FleetResult",
    "evaluate_bag_task",
    "import_ray",
    "merge",
    "model_blob",
    "run_fleet",
]
