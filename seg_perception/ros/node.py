"""The segmentation node: converts messages and wires topics; all work is in the core package.

Threads: the image callback only stores the newest message (a newer one replaces an
unprocessed one, counted as dropped). One worker thread segments and publishes. The
executor is single-threaded: rclpy's multi-threaded executor cost more CPU per frame
than the whole post-processing and lost frames at 30 Hz on two cores (bench_stream.py).
A query answer runs in the executor thread, so it never waits for the worker; image
messages wait in the subscription queue (depth 5) meanwhile. The callback groups keep
the code ready for a multi-threaded executor.

``configure_pipeline`` / ``activate_pipeline`` / ``deactivate_pipeline`` / ``cleanup_pipeline``
are the lifecycle steps; the plain node runs the first two in its constructor and
``ros/lifecycle_node.py`` maps them onto a managed node's transitions.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, LaserScan

from seg_perception.assembly import build_mapper, open_backend
from seg_perception.backends.base import check_model_path
from seg_perception.conversions.image import (
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    numpy_to_image_msg,
)
from seg_perception.conversions.occupancy import grid_to_msg, ranges_to_scan_msg
from seg_perception.depth.grid import frame_depth_occupancy
from seg_perception.errors import ConfigError, GeometryError, ModelError, SegPerceptionError
from seg_perception.geometry.camera import CameraIntrinsics
from seg_perception.geometry.mapper import MapperOutput
from seg_perception.model_spec import ModelSpec
from seg_perception.node_config import NodeConfig
from seg_perception.pipeline import Frame, Segmenter, overlay
from seg_perception.query.engine import QueryEngine
from seg_perception.ros.camera_state import CameraState
from seg_perception.ros.depth_input import DepthInput
from seg_perception.ros.diagnostics import build_diagnostics
from seg_perception.ros.label_info import publish_label_info
from seg_perception.ros.parameters import LiveParameters, current_config, declare_parameters, declare_read_only
from seg_perception.ros.query_service import QueryService
from seg_perception.ros.tf_pose import TfPoseSource
from seg_perception.ros.transport import apply_default_profile
from seg_perception.runtime_stats import PipelineStats
from seg_perception.upsampling import grid_label_shape, labels_for_grid

NODE_NAME = "seg_perception"


class SegmentationNode(Node):
    """ROS 2 wrapper around ``Segmenter``.

    Raises SegPerceptionError from the constructor when a parameter is invalid or the
    model cannot be loaded; ``main`` turns that into one error line and exit code 1.
    """

    def __init__(self, node_name: str = NODE_NAME, *, autostart: bool = True, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.config: NodeConfig = declare_parameters(self)
        self.stats = PipelineStats()
        self._lock = threading.Condition()
        self._pending: tuple[Any, float] | None = None
        self.latest: Frame | None = None
        self._stop = threading.Event()
        self._last_warn: dict[str, float] = {}
        self._reported_rejected = 0
        self._warned_no_info = False
        self._applied_info: CameraInfo | None = None
        self.camera = CameraState(self.stats, self.warn_throttled)
        self._live: LiveParameters | None = None
        self._active: list[Any] = []  # subscriptions, publishers, timers, services of the active state
        self._worker: threading.Thread | None = None
        self.segmenter: Segmenter | None = None
        self.depth_input: DepthInput | None = None
        if autostart:
            self.configure_pipeline()
            self.activate_pipeline()

    # ------------------------------------------------------------- lifecycle
    def configure_pipeline(self) -> None:
        """Load the model and build the core objects (lifecycle: on_configure). Raises SegPerceptionError."""
        self.config = current_config(self)  # a lifecycle node's parameters may have changed since start
        cfg = self.config
        try:
            model_path = check_model_path(cfg.resolved_model_path())
            self.spec = ModelSpec.for_model(model_path)
        except ModelError as err:
            raise ModelError(f"parameter model_path: {err}") from err
        selection, self._engine_build = open_backend(cfg, model_path, self._serve_built, self._build_failed)
        self.segmenter = Segmenter(selection.backend, self.spec, tuple(cfg.input_size) or None)
        self.backend_summary = selection.summary
        self.get_logger().info(f"model {model_path} ({self.spec.num_classes} classes); {selection.summary}")
        for note in selection.notes:
            self.get_logger().warning(note)
        if not self.has_parameter("class_names"):
            declare_read_only(self, "class_names", list(self.spec.class_names))
        try:
            self.mapper = build_mapper(cfg, self.spec)
        except ConfigError as err:
            raise ConfigError(f"parameters drivable_classes/obstacle_classes: {err}") from err
        self._tf = TfPoseSource(self, cfg.grid.frame_id) if cfg.use_tf else None
        if self._live is None:  # after every declaration: rclpy runs on-set callbacks for declarations too
            self._live = LiveParameters(self, cfg, self._prepare_config)
        else:
            self._live.reset(cfg)
        embeddings = {"auto": "auto", "required": True, "disabled": False}[cfg.query_embeddings]
        self.query_engine = QueryEngine(
            self.spec.class_names,
            embeddings,
            background=embeddings == "auto",
            torch_threads=1,
            on_ready=lambda status: self.get_logger().info(f"segment_query embeddings: {status}"),
            detector="auto" if cfg.query_detector == "auto" else None,
        )
        self.get_logger().info(f"segment_query embeddings: {self.query_engine.embedding_status}")

    def activate_pipeline(self) -> None:
        """Subscribe, advertise and start the worker (lifecycle: on_activate)."""
        cfg = self.config
        reliability = (
            ReliabilityPolicy.BEST_EFFORT if cfg.qos_reliability == "best_effort" else ReliabilityPolicy.RELIABLE
        )
        image_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=cfg.qos_depth, reliability=reliability)
        # qos.* give the default profile; rclpy's standard overrides (qos_overrides./<topic>.subscription.*)
        # win over them. An incompatible publisher (a best-effort camera for a reliable subscription)
        # is warned about and counted instead of meaning silence.
        image_type, image_topic = (
            (CompressedImage, "image/compressed") if cfg.image_transport == "compressed" else (Image, "image")
        )
        self._image_sub = self.create_subscription(
            image_type,
            image_topic,
            self._on_image,
            image_qos,
            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos),
        )
        info_sub = self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos_profile_sensor_data)
        self.labels_pub = self.create_publisher(Image, "~/labels", 10)
        self.confidence_pub = self.create_publisher(Image, "~/confidence", 10)
        self.overlay_pub = self.create_publisher(Image, "~/overlay", 10) if cfg.publish_overlay else None
        self.grid_pub = self.create_publisher(OccupancyGrid, "~/occupancy_grid", 10)
        self.scan_pub = self.create_publisher(LaserScan, "~/obstacle_scan", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        label_info = publish_label_info(self, self.spec.class_names)
        if cfg.depth_enabled:
            self.depth_input = DepthInput(self, self.stats, self.warn_throttled, cfg.depth_slop)
        diag_timer = self.create_timer(
            cfg.diagnostics_period, self._publish_diagnostics, MutuallyExclusiveCallbackGroup()
        )
        self._queries = QueryService(self, self.query_engine)
        pubs = (self.labels_pub, self.confidence_pub, self.overlay_pub, self.grid_pub, self.scan_pub, self.diag_pub)
        self._active = [self._image_sub, info_sub, *pubs, label_info, diag_timer]
        self._stop.clear()
        self._worker = threading.Thread(target=self._run_worker, name="seg_perception_worker", daemon=True)
        self._worker.start()

    def deactivate_pipeline(self) -> None:
        """Stop the worker and withdraw every topic and the service (lifecycle: on_deactivate)."""
        self._stop_worker()
        for entity in (*self._active, *(self.depth_input.entities() if self.depth_input else ())):
            if entity is None:
                continue
            destroy = {
                "Subscription": self.destroy_subscription,
                "Publisher": self.destroy_publisher,
                "Timer": self.destroy_timer,
            }.get(type(entity).__name__)
            if destroy is not None:
                destroy(entity)
        self._queries.destroy()
        self._active, self.depth_input, self.latest = [], None, None
        with self._lock:
            self._pending = None  # a frame from before deactivation is never served after it

    def cleanup_pipeline(self) -> None:
        """Release the backend (lifecycle: on_cleanup)."""
        if self.segmenter is not None:
            self.segmenter.backend.close()
            self.segmenter = None

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            self._stop.set()
            with self._lock:
                self._lock.notify_all()
            worker.join(timeout=2.0)

    # ------------------------------------------------------------------ input
    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.stats.on_receive()
        with self._lock:
            if self._pending is not None:
                self.stats.on_drop()
            self._pending = (msg, time.monotonic())
            self._lock.notify()

    def _on_incompatible_qos(self, event: Any) -> None:
        self.stats.on_publish("incompatible_qos")
        self.warn_throttled(
            "qos",
            f"a publisher on {self._image_sub.topic_name} has incompatible QoS (policy "
            f"{getattr(event, 'last_policy_kind', '?')}); no frames flow from it. The node "
            f"subscribes {self.config.qos_reliability}: set qos.reliability to match the camera",
        )

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera.info = msg

    def _prepare_config(self, config: NodeConfig) -> Any:
        """The grid mapper for a changed config (on-set callback); ConfigError refuses the change."""
        try:
            return build_mapper(config, self.spec)
        except (ConfigError, GeometryError) as err:
            raise ConfigError(f"parameters drivable_classes/obstacle_classes/grid/camera_pose: {err}") from err

    def _apply_live_parameters(self) -> None:
        """Swap in parameters accepted since the last frame (worker thread, before a frame)."""
        pending = self._live.take()
        if pending is not None:
            self.config, self.mapper = pending
            self._applied_info = None  # the new mapper needs the camera intrinsics again
            self.get_logger().info("parameters changed: applied from this frame on")

    def warn_throttled(self, key: str, text: str) -> None:
        """Log ``text`` at most once per ``warn_throttle`` seconds per ``key``.

        Not rclpy's ``throttle_duration_sec``: that fixes the interval per call site and raises
        ValueError when it changes, and ``warn_throttle`` is a runtime parameter.
        """
        now = time.monotonic()
        if now - self._last_warn.get(key, -1e9) >= self.config.warn_throttle:
            self._last_warn[key] = now
            self.get_logger().warning(text)

    # ----------------------------------------------------------------- worker
    def _run_worker(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                while self._pending is None and not self._stop.is_set():
                    self._lock.wait(timeout=0.2)
                if self._stop.is_set():
                    return
                msg, received = self._pending  # type: ignore[misc]
                self._pending = None
            try:
                self._process(msg, received)
            except SegPerceptionError as err:
                self.stats.on_reject(str(err))
                self.warn_throttled("input", f"rejected frame: {err}")
            except Exception as err:  # noqa: BLE001 - one bad frame must not kill the worker thread
                self.stats.on_reject(f"internal error: {err!r}")
                self.get_logger().error(f"processing failed: {err!r}")

    def _process(self, msg: Image | CompressedImage, received: float) -> None:
        self._apply_live_parameters()
        t0 = time.perf_counter()
        rgb = compressed_msg_to_rgb(msg) if isinstance(msg, CompressedImage) else image_msg_to_rgb(msg)
        decode_ms = (time.perf_counter() - t0) * 1e3
        want_conf = self.confidence_pub.get_subscription_count() > 0
        seg = self.segmenter.segment(rgb, want_confidence=want_conf)
        header = msg.header
        cfg = self.config
        depth = None
        if self.depth_input is not None:
            have_info = self.camera.info is not None
            depth = self.depth_input.for_frame(header, seg.labels.shape[:2], cfg.depth_slop, have_info)
        self.labels_pub.publish(numpy_to_image_msg(seg.labels, "mono8", header, msg_cls=Image))
        self.stats.on_publish("labels")
        if want_conf and seg.confidence is not None:
            self.confidence_pub.publish(numpy_to_image_msg(seg.confidence, "mono8", header, msg_cls=Image))
            self.stats.on_publish("confidence")
        if self.overlay_pub is not None and self.overlay_pub.get_subscription_count() > 0:
            over = overlay(rgb, seg.labels, self.spec.colors, self.config.overlay_alpha)
            self.overlay_pub.publish(numpy_to_image_msg(over, "rgb8", header, msg_cls=Image))
            self.stats.on_publish("overlay")
        intrinsics = self.intrinsics(seg.labels.shape[:2]) if depth is not None else None
        if depth is not None and intrinsics is not None and self.depth_input is not None:
            self.depth_input.publish_points(
                depth, seg.labels, rgb, intrinsics, header, cfg.depth_points_decimation, cfg.depth_points_rgb
            )
        grid_ms = self._publish_grid(seg.labels, header, depth.metres if depth is not None else None)
        frame = Frame(
            rgb=rgb,
            labels=seg.labels,
            confidence=seg.confidence,
            stamp=(int(header.stamp.sec), int(header.stamp.nanosec)),
            frame_id=str(header.frame_id),
            timings={"decode": decode_ms, **seg.timings, **({"grid": grid_ms} if grid_ms is not None else {})},
            depth=depth.metres if depth is not None else None,
        )
        self.latest = frame  # one reference swap: readers always see a whole Frame
        self.stats.on_processed((time.monotonic() - received) * 1e3, frame.timings)

    def intrinsics(self, shape: tuple[int, int]) -> CameraIntrinsics | None:
        """Intrinsics of an (H, W) image from the newest camera_info (None without one)."""
        return self.camera.intrinsics(shape, self.config.image_rectified)

    def _publish_grid(self, labels: Any, header: Any, depth: np.ndarray | None = None) -> float | None:
        """Occupancy grid and obstacle scan of one frame; returns milliseconds, None when skipped.

        With a depth frame (float32 metres at the labels' size) the grid is the depth-aware one
        (``depth.grid``); without, the flat-ground projection.

        Grid problems (no or invalid camera info, a pose that sees no ground, TF missing) are
        warned about (throttled) and counted; the labels keep flowing regardless.
        """
        if self.grid_pub.get_subscription_count() == 0 and self.scan_pub.get_subscription_count() == 0:
            return None  # nobody listens: the projection costs nothing
        info = self.camera.info
        if info is None:
            if not self._warned_no_info:
                self._warned_no_info = True
                self.get_logger().warning(
                    "no camera_info received yet: ~/occupancy_grid and ~/obstacle_scan wait for it; labels flow"
                )
            return None
        t0 = time.perf_counter()
        try:
            if self._tf is not None:
                pose = self._tf.pose(header)
                if pose is None:
                    return None
                self.mapper.set_pose(pose)
            if info is not self._applied_info:
                # Parse and compare intrinsics only when a new CameraInfo arrived, not every frame.
                rectified = self.config.image_rectified
                self.mapper.set_intrinsics(self.camera.intrinsics_of(info, labels.shape[:2], rectified))
                self._applied_info = info
            if depth is not None:  # the flat lookup is needed only for the scan's beams: no label shrink
                out = self._depth_grid(labels, depth, grid_label_shape(labels.shape[:2]))
            else:
                out = self.mapper.process(labels_for_grid(labels))
        except (GeometryError, ConfigError) as err:
            self.stats.on_publish("grid_errors")
            self.warn_throttled("grid", f"occupancy grid skipped: {err}")
            return None
        stamp = (int(header.stamp.sec), int(header.stamp.nanosec))
        self.grid_pub.publish(grid_to_msg(out.grid, self.mapper.grid, stamp=stamp, msg_cls=OccupancyGrid))
        self.stats.on_publish("occupancy_grid")
        if out.scan_ranges is not None and self.mapper.scanner is not None:
            scan = ranges_to_scan_msg(out.scan_ranges, self.mapper.scanner.spec, self.mapper.grid.frame_id, stamp=stamp)
            self.scan_pub.publish(scan)
            self.stats.on_publish("obstacle_scan")
        return (time.perf_counter() - t0) * 1e3

    def _depth_grid(self, labels: np.ndarray, depth: np.ndarray, scan_shape: tuple[int, int]) -> MapperOutput:
        """Depth-aware grid of one frame (camera_info already applied to the mapper); scan from it."""
        intrinsics = self.intrinsics(labels.shape[:2])
        if intrinsics is None:
            raise GeometryError("no usable camera_info for the depth grid")
        m = self.mapper
        res = frame_depth_occupancy(
            depth,
            labels,
            intrinsics,
            m.ground_pose,
            m.grid,
            m.drivable_lut,
            m.obstacle_lut,
            self.config.depth_rules,
            stride=4,
        )
        scanner = m.scanner_for(scan_shape)
        ranges = scanner.ranges(res.grid, res.contacts) if scanner is not None else None
        return MapperOutput(grid=res.grid, contacts=res.contacts, scan_ranges=ranges)

    def _serve_built(self, backend: Any) -> None:
        """Background build finished (builder thread): swap between two frames, close the old backend."""
        old = self.segmenter.swap_backend(backend)
        old.close()
        self.get_logger().info(f"now serving with {backend.description} (built in the background)")

    def _build_failed(self, err: Exception) -> None:
        self.get_logger().error(
            f"background engine build failed; staying on {self.segmenter.backend.description}: {err}"
        )

    # ------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        extra = {
            "backend": self.segmenter.backend.description,
            **({"engine_build": self._engine_build.summary} if self._engine_build is not None else {}),
            "backend_selection": self.backend_summary,
            "model": self.spec.name,
            "query_embeddings": self.query_engine.embedding_status,
        }
        msg = build_diagnostics(
            self.stats, self.get_clock().now().to_msg(), self.get_fully_qualified_name(), extra, self._reported_rejected
        )
        self._reported_rejected = self.stats.rejected
        self.diag_pub.publish(msg)

    def destroy_node(self) -> None:
        # Also reached for a node whose constructor failed half-way (rclpy calls it on teardown).
        if hasattr(self, "_stop"):
            self._stop_worker()
        if getattr(self, "segmenter", None) is not None:
            self.cleanup_pipeline()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point: ``ros2 run seg_perception segmentation_node``; exit code 1 on a start-up error."""
    apply_default_profile()  # before the participant exists; a user's own profile wins
    rclpy.init(args=args if args is not None else sys.argv)
    try:
        node = SegmentationNode()
    except SegPerceptionError as err:
        rclpy.logging.get_logger(NODE_NAME).error(f"start-up failed: {err}")
        rclpy.try_shutdown()
        return 1
    return spin(node)


def spin(node: Node) -> int:
    """Spin ``node`` on a single-threaded executor until shutdown or Ctrl-C; then destroy it. Returns 0."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
