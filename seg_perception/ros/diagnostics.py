"""PipelineStats -> diagnostic_msgs/DiagnosticArray."""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from seg_perception.runtime_stats import PipelineStats

INTERNAL_ERROR_PREFIX = "internal error"  # the node's reason for a frame the backend failed on


def status_name(node_name: str) -> str:
    """``<namespace/node>: segmentation`` from a (fully qualified) node name: unique per instance."""
    return f"{node_name.lstrip('/')}: segmentation"


def build_diagnostics(
    stats: PipelineStats,
    stamp: object,
    node_name: str,
    extra: dict[str, str],
    previous_rejected: int,
    stale_after: float = 5.0,
    now: float | None = None,
) -> DiagnosticArray:
    """One status ``status_name(node_name)`` with rates, latency, counters and the backend in ``extra``.

    Levels, first match wins:
    ERROR "no input yet" before any frame arrived (a camera that never started is an error);
    ERROR when a frame failed inside the pipeline (backend exception) since the last report;
    WARN when malformed frames were rejected since the last report (``previous_rejected``);
    ERROR while frames arrive but none was processed yet;
    ERROR "stale" when no frame was processed for ``stale_after`` seconds (a camera that died);
    else OK. ``now``: time.monotonic() seconds (tests pass their own clock).
    """
    now = time.monotonic() if now is None else now
    snap = stats.snapshot(now)
    status = DiagnosticStatus()
    status.name = status_name(node_name)
    status.hardware_id = extra.get("backend", "")
    rejected_now = int(snap["frames_rejected"]) - previous_rejected
    done = list(stats._done)  # monotonic times of processed frames (PipelineStats keeps them)
    age = now - done[-1] if done else float("inf")
    if int(snap["frames_received"]) == 0:
        status.level, status.message = DiagnosticStatus.ERROR, "no input yet (is the image topic remapped?)"
    elif rejected_now > 0 and str(snap["last_rejection"]).startswith(INTERNAL_ERROR_PREFIX):
        status.level = DiagnosticStatus.ERROR
        status.message = f"backend error on {rejected_now} frame(s): {snap['last_rejection']}"
    elif rejected_now > 0:
        status.level = DiagnosticStatus.WARN
        status.message = f"{rejected_now} malformed frame(s) rejected: {snap['last_rejection']}"
    elif int(snap["frames_processed"]) == 0:
        status.level, status.message = DiagnosticStatus.ERROR, "frames arrive, none processed yet"
    elif age > stale_after:
        status.level, status.message = DiagnosticStatus.ERROR, f"stale: no frame processed for {age:.1f} s"
    else:
        status.level = DiagnosticStatus.OK
        status.message = f"{snap['output_rate_hz']:.1f} Hz, {snap['latency_median_ms']:.1f} ms median latency"
    values = {**{k: (f"{v:.3f}" if isinstance(v, float) else str(v)) for k, v in snap.items()}, **extra}
    values["seconds_since_last_frame"] = f"{age:.3f}" if done else "never"
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [status]
    return msg
