"""Diagnostics levels: no camera -> ERROR, first frame -> OK, stale -> ERROR, backend error -> ERROR."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus

from seg_perception.ros.diagnostics import build_diagnostics, status_name
from seg_perception.runtime_stats import PipelineStats


def _status(stats: PipelineStats, now: float, previous_rejected: int = 0) -> DiagnosticStatus:
    arr = build_diagnostics(stats, None, "/robot1/seg_perception", {"backend": "x"}, previous_rejected, 2.0, now)
    return arr.status[0]


def test_levels_through_no_camera_ok_stale_backend_error():
    stats = PipelineStats()
    st = _status(stats, 100.0)
    assert st.level == DiagnosticStatus.ERROR and "no input" in st.message
    stats.on_receive(now=100.0)
    assert _status(stats, 100.1).level == DiagnosticStatus.ERROR  # arriving, none processed yet
    stats.on_processed(12.0, now=100.2)
    assert _status(stats, 100.5).level == DiagnosticStatus.OK
    st = _status(stats, 103.0)  # 2.8 s without a frame, stale_after 2 s
    assert st.level == DiagnosticStatus.ERROR and "stale" in st.message
    stats.on_receive(now=103.0)
    stats.on_processed(12.0, now=103.1)
    assert _status(stats, 103.2).level == DiagnosticStatus.OK
    stats.on_reject("bad step")
    assert _status(stats, 103.3).level == DiagnosticStatus.WARN
    stats.on_reject("internal error: RuntimeError('cuda')")
    st = _status(stats, 103.4, previous_rejected=1)
    assert st.level == DiagnosticStatus.ERROR and "backend error" in st.message
    assert _status(stats, 103.5, previous_rejected=2).level == DiagnosticStatus.OK  # reported once


def test_status_name_is_unique_per_namespace():
    assert status_name("/robot1/seg_perception") == "robot1/seg_perception: segmentation"
    assert status_name("/seg_perception") != status_name("/robot2/seg_perception")


def _all(stats: PipelineStats, now: float) -> dict[str, DiagnosticStatus]:
    arr = build_diagnostics(stats, None, "/robot1/seg_perception", {"backend": "onnxruntime CPU"}, 0, 2.0, now)
    return {st.name.split(": ")[1]: st for st in arr.status}


def test_frequency_timestamp_occupancy_and_query_statuses():
    stats = PipelineStats()
    st = _all(stats, 10.0)
    assert set(st) == {"segmentation", "frequency", "timestamp", "occupancy", "queries"}
    assert all(s.name.startswith("robot1/seg_perception: ") and s.hardware_id == "onnxruntime CPU" for s in st.values())
    # 30 Hz in, 10 Hz out: below half the camera's rate
    for k in range(30):
        stats.on_receive(now=10.0 + k / 30)
        if k % 3 == 0:
            stats.on_processed(20.0, now=10.0 + k / 30)
    st = _all(stats, 11.0)
    assert st["frequency"].level == DiagnosticStatus.WARN and "below half" in st["frequency"].message
    assert st["timestamp"].level == DiagnosticStatus.OK
    for k in range(30, 60):
        stats.on_receive(now=10.0 + k / 30)
        stats.on_processed(20.0, now=10.0 + k / 30)
    assert _all(stats, 12.0)["frequency"].level == DiagnosticStatus.OK
    st = _all(stats, 15.0)  # 3 s without a processed frame, stale_after 2 s
    assert st["timestamp"].level == DiagnosticStatus.ERROR and "stale" in st["timestamp"].message
    stats.on_publish("grid_errors")
    assert _all(stats, 12.0)["occupancy"].level == DiagnosticStatus.WARN
    stats.on_publish("occupancy_grid")
    stats.on_publish("query_answers")
    st = _all(stats, 12.0)
    assert st["occupancy"].level == DiagnosticStatus.OK and st["queries"].message == "1 answers"
