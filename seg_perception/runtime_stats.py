"""Counters and rolling statistics of a running pipeline (ROS-free; the node turns them into diagnostics)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class PipelineStats:
    """Thread-safe counters and recent latencies.

    ``received`` counts input messages, ``processed`` segmented frames, ``dropped``
    frames replaced by a newer one before the worker reached them, ``rejected``
    malformed inputs. Latency is callback-receipt to publish, milliseconds.
    """

    window_s: float = 10.0
    received: int = 0
    processed: int = 0
    dropped: int = 0
    rejected: int = 0
    last_rejection: str = ""
    published: dict[str, int] = field(default_factory=dict)
    _receipts: deque = field(default_factory=lambda: deque(maxlen=2000))
    _done: deque = field(default_factory=lambda: deque(maxlen=2000))
    _latency: deque = field(default_factory=lambda: deque(maxlen=500))
    _stages: dict[str, deque] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_receive(self, now: float | None = None) -> None:
        with self._lock:
            self.received += 1
            self._receipts.append(time.monotonic() if now is None else now)

    def on_drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def on_reject(self, reason: str) -> None:
        with self._lock:
            self.rejected += 1
            self.last_rejection = reason

    def on_publish(self, topic: str) -> None:
        with self._lock:
            self.published[topic] = self.published.get(topic, 0) + 1

    def on_processed(self, latency_ms: float, stages: dict[str, float] | None = None, now: float | None = None) -> None:
        with self._lock:
            self.processed += 1
            self._done.append(time.monotonic() if now is None else now)
            self._latency.append(latency_ms)
            for k, v in (stages or {}).items():
                self._stages.setdefault(k, deque(maxlen=500)).append(v)

    @staticmethod
    def _rate(stamps: deque, now: float, window: float) -> float:
        recent = [t for t in stamps if now - t <= window]
        if len(recent) < 2:
            return 0.0
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0

    def snapshot(self, now: float | None = None) -> dict[str, float | int | str]:
        """Current figures: rates (Hz), latency median/p95 (ms), counters, per-stage medians."""
        now = time.monotonic() if now is None else now
        with self._lock:
            lat = np.asarray(self._latency, dtype=float)
            out: dict[str, float | int | str] = {
                "input_rate_hz": self._rate(self._receipts, now, self.window_s),
                "output_rate_hz": self._rate(self._done, now, self.window_s),
                "latency_median_ms": float(np.median(lat)) if lat.size else float("nan"),
                "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                "frames_received": self.received,
                "frames_processed": self.processed,
                "frames_dropped": self.dropped,
                "frames_rejected": self.rejected,
                "last_rejection": self.last_rejection,
            }
            for k, v in self.published.items():
                out[f"published_{k}"] = v
            for k, v in self._stages.items():
                out[f"{k}_median_ms"] = float(np.median(np.asarray(v))) if v else float("nan")
        return out
