"""A mergeable latency histogram: log-spaced bins, so quantiles keep a bounded relative error.

Fleet evaluation merges the latencies of many tasks. Medians of medians are wrong; per-task
histograms over the *same* fixed bins add up exactly, so the merged histogram is the one a
single run over all frames would have built. Bin ``i`` holds values in
``[MIN_MS * RATIO**i, MIN_MS * RATIO**(i+1))`` milliseconds (values below ``MIN_MS`` go to
bin 0); a quantile is reported as its bin's geometric centre, clipped to the exact
min/max, so its relative error is below ``(RATIO - 1) / 2`` (0.5 %). Count, sum, min and
max are kept exactly, so the mean and max are exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

MIN_MS = 1e-3
RATIO = 1.01
_LOG_RATIO = math.log(RATIO)


class LatencyHistogram:
    """Counts of latency samples (milliseconds, float) in fixed log-spaced bins; ``merge`` adds two."""

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    @staticmethod
    def bin_of(value_ms: float) -> int:
        """Bin index of one value (ms)."""
        if not value_ms > MIN_MS:
            return 0
        return int(math.floor(math.log(value_ms / MIN_MS) / _LOG_RATIO))

    @staticmethod
    def bin_centre(index: int) -> float:
        """Geometric centre (ms) of bin ``index``."""
        return MIN_MS * RATIO ** (index + 0.5)

    @classmethod
    def of(cls, values_ms: Iterable[float]) -> LatencyHistogram:
        """Histogram of the given samples (ms)."""
        h = cls()
        for v in values_ms:
            h.add(float(v))
        return h

    def add(self, value_ms: float) -> None:
        """Count one sample (ms)."""
        i = self.bin_of(value_ms)
        self.bins[i] = self.bins.get(i, 0) + 1
        self.count += 1
        self.total += value_ms
        self.min = min(self.min, value_ms)
        self.max = max(self.max, value_ms)

    def merge(self, other: LatencyHistogram) -> None:
        """Add the counts of ``other`` (same fixed bins, so the result is exact)."""
        for i, n in other.bins.items():
            self.bins[i] = self.bins.get(i, 0) + n
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1, numpy's linear-rank position rounded to a bin), ms; NaN when empty."""
        if self.count == 0:
            return float("nan")
        rank = q * (self.count - 1)  # 0-based rank of the sample
        seen = 0
        for i in sorted(self.bins):
            seen += self.bins[i]
            if seen > rank:
                return float(min(max(self.bin_centre(i), self.min), self.max))
        return float(self.max)

    def summary(self) -> dict[str, float]:
        """{median, p95, mean, max} ms, the keys of ``metrics.latency_summary``."""
        return {
            "median": self.quantile(0.5),
            "p95": self.quantile(0.95),
            "mean": self.total / self.count if self.count else float("nan"),
            "max": self.max if self.count else float("nan"),
        }

    def samples(self) -> np.ndarray:
        """One representative value (bin centre, ms) per sample, float64 (N,): for plotting only."""
        idx = sorted(self.bins)
        centres = np.clip([self.bin_centre(i) for i in idx], self.min, self.max) if idx else np.zeros(0)
        return np.repeat(np.asarray(centres, dtype=np.float64), [self.bins[i] for i in idx])

    def to_dict(self) -> dict[str, Any]:
        """JSON form: bins as {"index": count} plus exact count/sum/min/max."""
        return {
            "bins": {str(i): n for i, n in sorted(self.bins.items())},
            "count": self.count,
            "sum_ms": self.total,
            "min_ms": self.min if self.count else None,
            "max_ms": self.max if self.count else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        """Inverse of ``to_dict``."""
        h = cls()
        h.bins = {int(i): int(n) for i, n in data.get("bins", {}).items()}
        h.count = int(data.get("count", 0))
        h.total = float(data.get("sum_ms", 0.0))
        h.min = math.inf if data.get("min_ms") is None else float(data["min_ms"])
        h.max = -math.inf if data.get("max_ms") is None else float(data["max_ms"])
        return h


__all__ = ["MIN_MS", "RATIO", "LatencyHistogram"]
