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
    msg.status = [status, *_detail_statuses(snap, node_name, extra, age, stale_after)]
    return msg


def _status(name: str, level: bytes, message: str, values: dict[str, str], hardware_id: str) -> DiagnosticStatus:
    st = DiagnosticStatus(name=name, level=level, message=message, hardware_id=hardware_id)
    st.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    return st


def _detail_statuses(
    snap: dict, node_name: str, extra: dict[str, str], age: float, stale_after: float
) -> list[DiagnosticStatus]:
    """diagnostic_updater-style statuses beside the summary: frequency, timestamp, occupancy, queries.

    * frequency: output rate against the input rate (the camera's rate is the expected window):
      WARN below half of it, ERROR at 0 Hz while frames arrive;
    * timestamp: age of the newest processed frame, ERROR beyond ``stale_after`` seconds;
    * occupancy: grid frames published vs skipped (bad camera_info, no ground in view);
    * queries: answers given, embedding status.
    """
    base = node_name.lstrip("/")
    hw = extra.get("backend", "")
    rate_in, rate_out = float(snap["input_rate_hz"]), float(snap["output_rate_hz"])
    if rate_in <= 0:
        freq = (
            (DiagnosticStatus.OK, "no input")
            if int(snap["frames_received"]) == 0
            else (DiagnosticStatus.WARN, "input stopped")
        )
    elif rate_out <= 0:
        freq = (DiagnosticStatus.ERROR, f"0 Hz out while {rate_in:.1f} Hz arrive")
    elif rate_out < 0.5 * rate_in:
        freq = (DiagnosticStatus.WARN, f"{rate_out:.1f} Hz out of {rate_in:.1f} Hz in (below half)")
    else:
        freq = (DiagnosticStatus.OK, f"{rate_out:.1f} Hz out of {rate_in:.1f} Hz in")
    freq_values = {
        "expected_hz": f"{rate_in:.3f}",
        "output_hz": f"{rate_out:.3f}",
        "frames_dropped": str(snap["frames_dropped"]),
    }
    if age == float("inf"):
        ts = (DiagnosticStatus.OK if int(snap["frames_received"]) == 0 else DiagnosticStatus.ERROR, "no frame yet")
    elif age > stale_after:
        ts = (DiagnosticStatus.ERROR, f"stale: newest frame processed {age:.1f} s ago")
    else:
        ts = (DiagnosticStatus.OK, f"newest frame {age:.2f} s ago")
    ts_values = {
        "seconds_since_last_frame": "never" if age == float("inf") else f"{age:.3f}",
        "latency_median_ms": f"{float(snap['latency_median_ms']):.3f}",
        "latency_p95_ms": f"{float(snap['latency_p95_ms']):.3f}",
    }
    grids, grid_errors = int(snap.get("published_occupancy_grid", 0)), int(snap.get("published_grid_errors", 0))
    occ = (
        (DiagnosticStatus.WARN, f"{grid_errors} frame(s) without a grid (see the node's warnings)")
        if (grid_errors and not grids)
        else (DiagnosticStatus.OK, f"{grids} grids published")
    )
    occ_values = {
        "grids": str(grids),
        "grid_errors": str(grid_errors),
        "scans": str(snap.get("published_obstacle_scan", 0)),
        "labeled_points": str(snap.get("published_labeled_points", 0)),
    }
    answers = int(snap.get("published_query_answers", 0))
    q_values = {"answers": str(answers), "embeddings": extra.get("query_embeddings", "")}
    return [
        _status(f"{base}: frequency", freq[0], freq[1], freq_values, hw),
        _status(f"{base}: timestamp", ts[0], ts[1], ts_values, hw),
        _status(f"{base}: occupancy", occ[0], occ[1], occ_values, hw),
        _status(f"{base}: queries", DiagnosticStatus.OK, f"{answers} answers", q_values, hw),
    ]
