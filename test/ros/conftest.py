"""ROS integration harness: the real node in a subprocess, a test node in this process, Fast DDS on loopback."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Isolate these tests from other ROS traffic on the machine (parallel runs, other sessions).
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
# The shipped Fast DDS profile, as env.sh, the launch file and the node's main set it.
from seg_perception.ros.transport import apply_default_profile

apply_default_profile()

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402


def node_executable(name: str = "segmentation_node") -> Path:
    """The installed `ros2 run seg_perception <name>` executable."""
    from ament_index_python.packages import get_package_prefix

    return Path(get_package_prefix("seg_perception")) / "lib" / "seg_perception" / name


class NodeProcess:
    """The real segmentation node started as users start it (the installed executable)."""

    def __init__(
        self,
        params: dict[str, object],
        remaps: dict[str, str] | None = None,
        name: str = "seg_perception",
        params_file: Path | None = None,
        env: dict[str, str] | None = None,
        executable: str = "segmentation_node",
    ):
        args = [str(node_executable(executable)), "--ros-args", "-r", f"__node:={name}"]
        if params_file is not None:
            args += ["--params-file", str(params_file)]
        for k, v in params.items():
            val = (
                str(v).lower() if isinstance(v, bool) else (f"[{','.join(map(str, v))}]" if isinstance(v, list) else v)
            )
            args += ["-p", f"{k}:={val}"]
        for k, v in (remaps or {}).items():
            args += ["-r", f"{k}:={v}"]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def call_service(client: object, request: object, timeout: float = 30.0) -> object:
    """The response of one service call (the harness executor spins the client); fails the test on timeout."""
    future = client.call_async(request)  # type: ignore[attr-defined]
    assert Harness.wait_for(future.done, timeout, period=0.005), f"no answer from {client.srv_name}"  # type: ignore[attr-defined]
    return future.result()


def query(client: object, text: str, timeout: float = 30.0) -> object:
    """``~/segment_query`` answer to ``text``."""
    from seg_perception.srv import SegmentQuery

    return call_service(client, SegmentQuery.Request(query=text), timeout)


def diag_count(diags: list, key: str) -> int:
    """Newest value of diagnostics key ``key`` among the received arrays (0 when never seen)."""
    for arr in reversed(diags):
        for st in arr.status:
            for kv in st.values:
                if kv.key == key:
                    return int(float(kv.value))
    return 0


class Harness:
    """A test node spinning in a background thread, with helpers to publish and wait."""

    def __init__(self) -> None:
        self.node = Node(f"test_harness_{os.getpid()}_{random.randint(0, 1 << 30)}")
        # Single-threaded: the multi-threaded executor polls in Python and starves the publishing
        # test thread of the GIL (bench_stream.py measured stalls of up to 2 s).
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def collect(self, msg_type: type, topic: str, qos: object = 10) -> list:
        """Subscribe and return the (growing) list of received messages."""
        got: list = []
        self.node.create_subscription(msg_type, topic, got.append, qos)
        return got

    @staticmethod
    def wait_for(pred: Callable[[], bool], timeout: float = 20.0, period: float = 0.02) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            time.sleep(period)
        return pred()

    def publish_until(self, pub: object, msg: object, pred: Callable[[], bool], timeout: float = 20.0) -> bool:
        """Publish ``msg`` every 0.3 s until ``pred()`` holds (best-effort links may lose the first ones)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pub.publish(msg)  # type: ignore[attr-defined]
            if self.wait_for(pred, 0.3):
                return True
        return pred()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture(scope="module")
def ros_context() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture()
def harness(ros_context: None) -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


@pytest.fixture()
def start_node() -> Iterator[Callable[..., NodeProcess]]:
    """Factory starting the real node process; every process is stopped at teardown."""
    procs: list[NodeProcess] = []

    def start(
        params: dict[str, object],
        remaps: dict[str, str] | None = None,
        name: str = "seg_perception",
        params_file: Path | None = None,
        env: dict[str, str] | None = None,
        executable: str = "segmentation_node",
    ) -> NodeProcess:
        p = NodeProcess(params, remaps, name, params_file, env, executable)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


@pytest.fixture(scope="session")
def node_exe() -> Path:
    return node_executable()


SLOW_SEGMENTER = """
# Test-only start-up hook (sitecustomize): every Segmenter.segment call first sleeps, so the node
# is slower than any publisher whatever the machine or backend.
import os, time
from seg_perception import pipeline as _pipeline

_delay = float(os.environ["SEG_TEST_SEGMENT_DELAY_S"])
_segment = _pipeline.Segmenter.segment


def _slow_segment(self, *args, **kwargs):
    time.sleep(_delay)
    return _segment(self, *args, **kwargs)


_pipeline.Segmenter.segment = _slow_segment
"""


@pytest.fixture
def slow_segmenter_env(tmp_path: Path) -> Callable[[float], dict[str, str]]:
    """Environment for ``start_node(..., env=...)`` making each segmentation take ``delay_s`` longer."""

    def env(delay_s: float) -> dict[str, str]:
        hook = tmp_path / "slow_hook"
        hook.mkdir(exist_ok=True)
        (hook / "sitecustomize.py").write_text(SLOW_SEGMENTER)
        path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
        return {"PYTHONPATH": path, "SEG_TEST_SEGMENT_DELAY_S": str(delay_s)}

    return env
