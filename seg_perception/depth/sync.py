"""Match depth frames to colour frames by stamp, within a bounded slop."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

__all__ = ["DepthBuffer"]


class DepthBuffer:
    """The last few depth frames, looked up by the colour frame's stamp.

    Thread-safe: the depth callback pushes, the worker thread matches.

    Args:
        slop_s: largest |stamp difference| accepted, seconds.
        capacity: depth frames kept (older ones are forgotten).
    """

    def __init__(self, slop_s: float = 0.02, capacity: int = 8) -> None:
        self.slop_ns = int(round(slop_s * 1e9))
        self._items: deque[tuple[int, Any]] = deque(maxlen=max(1, int(capacity)))
        self._cond = threading.Condition()
        self.matched = 0
        self.unmatched = 0

    def push(self, stamp_ns: int, item: Any) -> None:
        with self._cond:
            self._items.append((int(stamp_ns), item))
            self._cond.notify_all()

    def _best(self, stamp_ns: int) -> tuple[int, Any] | None:
        if not self._items:
            return None
        return min(self._items, key=lambda it: abs(it[0] - stamp_ns))

    def match(self, stamp_ns: int, wait_s: float = 0.0) -> Any | None:
        """The depth item closest to ``stamp_ns`` within the slop, or None (counted as unmatched).

        When no depth that new has arrived yet, waits up to ``wait_s`` for it (depth often
        arrives a little after its colour frame); never waits once a newer depth is there.
        """
        with self._cond:
            deadline = None
            while True:
                best = self._best(stamp_ns)
                if best is not None and abs(best[0] - stamp_ns) <= self.slop_ns:
                    self.matched += 1
                    return best[1]
                newest = self._items[-1][0] if self._items else None
                if wait_s <= 0 or (newest is not None and newest >= stamp_ns):
                    break
                now = time.monotonic()
                deadline = deadline or now + wait_s
                if now >= deadline:
                    break
                self._cond.wait(deadline - now)
            self.unmatched += 1
            return None
