"""Build a backend in the background while another one serves (a TensorRT engine build takes minutes).

The node serves with ONNX Runtime from the first frame; :class:`BackgroundBuild` creates the
TensorRT backend in a daemon thread and hands it over through ``on_ready``, which swaps it into
the ``Segmenter`` (``Segmenter.swap_backend``: atomic, between two frames).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from seg_perception.backends.base import Backend

__all__ = ["BackgroundBuild"]


class BackgroundBuild:
    """Runs ``build()`` in a daemon thread; then ``on_ready(backend)`` or ``on_error(exception)``.

    Attributes:
        state: ``building``, ``ready`` or ``failed``.
        error: the exception when failed.
        seconds: how long the build took (None while building).
    """

    def __init__(
        self,
        build: Callable[[], Backend],
        on_ready: Callable[[Backend], None],
        on_error: Callable[[Exception], None],
        name: str = "seg_perception_engine_build",
    ) -> None:
        self.state = "building"
        self.error: Exception | None = None
        self.seconds: float | None = None
        self._build, self._on_ready, self._on_error = build, on_ready, on_error
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            backend = self._build()
        except Exception as err:  # noqa: BLE001 - any build failure leaves the serving backend in place
            self.seconds = time.monotonic() - self._t0
            self.state, self.error = "failed", err
            self._on_error(err)
            return
        self.seconds = time.monotonic() - self._t0
        self._on_ready(backend)
        self.state = "ready"

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the build; True when it has finished (either way)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def summary(self) -> str:
        """One line for diagnostics."""
        if self.state == "building":
            return f"building for {time.monotonic() - self._t0:.0f} s"
        if self.state == "failed":
            return f"failed after {self.seconds:.1f} s: {self.error}"
        return f"ready after {self.seconds:.1f} s"
