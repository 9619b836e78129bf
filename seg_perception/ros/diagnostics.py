"""PipelineStats -> diagnostic_msgs/DiagnosticArray."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from seg_perception.runtime_stats import PipelineStats


def build_diagnostics(
    stats: PipelineStats, stamp: object, node_name: str, extra: dict[str, str], previous_rejected: int
) -> DiagnosticArray:
    """One status "<node>: segmentation" with rates, latency, counters and the backend in ``extra``.

    Level: ERROR before any frame was processed while frames arrive, WARN when frames
    were rejected since the last report (``previous_rejected``), else OK.
    """
    snap = stats.snapshot()
    status = DiagnosticStatus()
    status.name = f"{node_name}: segmentation"
    status.hardware_id = extra.get("backend", "")
    rejected_now = int(snap["frames_rejected"]) - previous_rejected
    if int(snap["frames_received"]) > 0 and int(snap["frames_processed"]) == 0 and rejected_now == 0:
        status.level = DiagnosticStatus.OK
        status.message = "waiting for the first frame to finish"
    elif rejected_now > 0:
        status.level = DiagnosticStatus.WARN
        status.message = f"{rejected_now} malformed frame(s) rejected: {snap['last_rejection']}"
    elif int(snap["frames_received"]) == 0:
        status.level = DiagnosticStatus.OK
        status.message = "no input yet"
    else:
        status.level = DiagnosticStatus.OK
        status.message = f"{snap['output_rate_hz']:.1f} Hz, {snap['latency_median_ms']:.1f} ms median latency"
    values = {**{k: (f"{v:.3f}" if isinstance(v, float) else str(v)) for k, v in snap.items()}, **extra}
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [status]
    return msg
