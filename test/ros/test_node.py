"""The real node over Fast DDS: labels with the input header, overlay on demand, bad input, newest frame wins."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from seg_perception.backends import create_backend
from seg_perception.conversions.image import numpy_to_image_msg, rgb_to_compressed_msg
from seg_perception.model_spec import ModelSpec
from seg_perception.pipeline import Segmenter
from seg_perception.synthetic.street import render_street

pytestmark = pytest.mark.ros


def _frame(camvid_dir: Path | None, index: int = 0) -> np.ndarray:
    if camvid_dir is not None:
        name = (camvid_dir / "test.txt").read_text().split()[2 * index]
        bgr = cv2.imread(str(camvid_dir / name.lstrip("/")), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return render_street(index, 120, 160).rgb


def _image_msg(rgb: np.ndarray, sec: int, nsec: int = 0, frame_id: str = "camera_optical") -> Image:
    msg = numpy_to_image_msg(rgb, "rgb8", msg_cls=Image)
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = sec, nsec, frame_id
    return msg


def _diag_value(diags: list, key: str) -> str | None:
    for arr in reversed(diags):
        for st in arr.status:
            if st.name.startswith("seg_perception"):
                for kv in st.values:
                    if kv.key == key:
                        return kv.value
    return None


def _wait_connected(harness, pub, timeout: float = 45.0) -> None:
    assert harness.wait_for(lambda: pub.get_subscription_count() > 0, timeout), "node never subscribed"


def test_labels_carry_input_header_and_match_the_pipeline(harness, start_node, tiny_model, camvid_or_none):
    node = start_node({"model_path": str(tiny_model), "diagnostics_period": 0.3})
    labels = harness.collect(Image, "/seg_perception/labels")
    pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    _wait_connected(harness, pub)
    rgb = _frame(camvid_or_none, 0)
    msg = _image_msg(rgb, 123, 456, "cam_a")
    assert harness.publish_until(pub, msg, lambda: len(labels) > 0), node.output
    out = labels[0]
    assert (out.height, out.width, out.encoding) == (rgb.shape[0], rgb.shape[1], "mono8")
    assert (out.header.stamp.sec, out.header.stamp.nanosec, out.header.frame_id) == (123, 456, "cam_a")
    got = np.frombuffer(bytes(out.data), np.uint8).reshape(out.height, out.width)
    with create_backend("onnxruntime", tiny_model) as backend:
        expected = Segmenter(backend, ModelSpec.for_model(tiny_model)).segment(rgb).labels
    assert got.max() < 11
    np.testing.assert_array_equal(got, expected)


def test_overlay_and_confidence_only_while_subscribed(harness, start_node, tiny_model):
    start_node({"model_path": str(tiny_model), "diagnostics_period": 0.2})
    diags = harness.collect(DiagnosticArray, "/diagnostics")
    labels = harness.collect(Image, "/seg_perception/labels")
    pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    _wait_connected(harness, pub)
    rgb = render_street(1, 90, 120).rgb
    for i in range(3):
        n = len(labels)
        assert harness.publish_until(pub, _image_msg(rgb, 10 + i), lambda n=n: len(labels) > n)
    assert harness.wait_for(lambda: _diag_value(diags, "published_labels") not in (None, "0"), 10)
    assert _diag_value(diags, "published_overlay") is None
    assert _diag_value(diags, "published_confidence") is None

    overlays = harness.collect(Image, "/seg_perception/overlay")
    confs = harness.collect(Image, "/seg_perception/confidence")
    assert harness.publish_until(pub, _image_msg(rgb, 50), lambda: len(overlays) > 0 and len(confs) > 0)
    ov, cf = overlays[-1], confs[-1]
    assert (ov.encoding, ov.height, ov.width, ov.header.stamp.sec) == ("rgb8", 90, 120, 50)
    assert (cf.encoding, cf.height, cf.width) == ("mono8", 90, 120)
    conf = np.frombuffer(bytes(cf.data), np.uint8)
    assert conf.min() >= 255 // 11  # softmax max is at least 1/K


def test_malformed_frames_are_rejected_and_the_next_good_one_is_served(harness, start_node, tiny_model):
    node = start_node({"model_path": str(tiny_model), "diagnostics_period": 0.2, "warn_throttle": 0.01})
    diags = harness.collect(DiagnosticArray, "/diagnostics")
    labels = harness.collect(Image, "/seg_perception/labels")
    pub = harness.node.create_publisher(Image, "image", qos_profile_sensor_data)
    _wait_connected(harness, pub)
    rgb = render_street(2, 60, 80).rgb
    bad_step = _image_msg(rgb, 1)
    bad_step.step = 10  # smaller than width x 3
    truncated = _image_msg(rgb, 2)
    truncated.data = bytes(truncated.data)[:1000]
    unknown = _image_msg(rgb, 3)
    unknown.encoding = "yuv422_weird"
    def rejected() -> int:
        return int(_diag_value(diags, "frames_rejected") or 0)

    for bad in (bad_step, truncated, unknown):  # each kind is rejected (counted), whatever the timing
        before = rejected()
        assert harness.publish_until(pub, bad, lambda before=before: rejected() > before), node.output
    assert not labels, "a malformed frame produced labels"
    warn = [d for d in diags if d.status and d.status[0].level == b"\x01"]
    assert warn and "rejected" in warn[-1].status[0].message
    good = _image_msg(rgb, 99)
    assert harness.publish_until(pub, good, lambda: len(labels) > 0)
    assert labels[-1].header.stamp.sec == 99
    assert "rejected frame" in node.output and node.proc.poll() is None


def test_newest_frame_wins_over_a_backlog(harness, start_node, tiny_model, slow_segmenter_env):
    # Reliable links: the test must know every frame arrived, so a missing label means "dropped as
    # stale". Each segmentation is made 0.3 s slower, so a backlog builds on any machine or backend.
    node = start_node(
        {"model_path": str(tiny_model), "diagnostics_period": 0.2, "qos.depth": 10, "qos.reliability": "reliable"},
        env=slow_segmenter_env(0.3),
    )
    diags = harness.collect(DiagnosticArray, "/diagnostics")
    labels = harness.collect(Image, "/seg_perception/labels")
    pub = harness.node.create_publisher(Image, "image", 10)
    _wait_connected(harness, pub)
    rgb = np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8)
    assert harness.publish_until(pub, _image_msg(rgb, 1), lambda: len(labels) > 0, timeout=30), node.output
    start = len(labels)
    for k in range(2, 32):
        pub.publish(_image_msg(rgb, k))
    assert harness.wait_for(lambda: labels and labels[-1].header.stamp.sec == 31, 30), "the newest frame was lost"
    processed = len(labels) - start
    assert processed < 30, "every frame was processed: no stale frame was dropped"
    stamps = [m.header.stamp.sec for m in labels[start:]]
    assert stamps == sorted(stamps), "frames were served out of order"
    assert harness.wait_for(lambda: int(_diag_value(diags, "frames_dropped") or 0) > 0, 5)


def test_compressed_transport(harness, start_node, tiny_model):
    start_node({"model_path": str(tiny_model), "image_transport": "compressed"})
    labels = harness.collect(Image, "/seg_perception/labels")
    pub = harness.node.create_publisher(CompressedImage, "image/compressed", qos_profile_sensor_data)
    _wait_connected(harness, pub)
    rgb = render_street(3, 72, 96).rgb
    msg = rgb_to_compressed_msg(rgb, "png", msg_cls=CompressedImage)
    msg.header.stamp.sec, msg.header.frame_id = 7, "cam_c"
    assert harness.publish_until(pub, msg, lambda: len(labels) > 0)
    assert (labels[0].width, labels[0].height, labels[0].header.frame_id) == (96, 72, "cam_c")


def test_class_names_parameter_is_read_only_and_discoverable(harness, start_node, tiny_model):
    from rcl_interfaces.srv import GetParameters, SetParameters
    from rclpy.parameter import Parameter

    start_node({"model_path": str(tiny_model)})
    client = harness.node.create_client(GetParameters, "/seg_perception/get_parameters")
    assert client.wait_for_service(timeout_sec=20)
    res = client.call(GetParameters.Request(names=["class_names", "backend"]), timeout_sec=10)
    assert list(res.values[0].string_array_value)[:3] == ["sky", "building", "pole"]
    assert res.values[1].string_value == "auto"
    setter = harness.node.create_client(SetParameters, "/seg_perception/set_parameters")
    assert setter.wait_for_service(timeout_sec=10)
    req = SetParameters.Request(parameters=[Parameter("class_names", value=["x"]).to_parameter_msg()])
    assert not setter.call(req, timeout_sec=10).results[0].successful


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        (
            {"model_path": "/nonexistent/model.onnx"},
            "parameter model_path: model file /nonexistent/model.onnx does not exist",
        ),
        ({"backend": "cuda_magic"}, "backend"),
        ({"grid.resolution": -1.0}, "parameter grid.resolution"),
    ],
)
def test_startup_errors_are_one_clear_line_and_non_zero_exit(params, needle, tiny_model, node_exe):
    args = [str(node_exe), "--ros-args"]
    params = {"model_path": str(tiny_model), **params}
    for k, v in params.items():
        args += ["-p", f"{k}:={v}"]
    res = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    errors = [ln for ln in (res.stdout + res.stderr).splitlines() if "start-up failed" in ln]
    assert len(errors) == 1 and needle in errors[0], res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr


def test_wrongly_typed_parameter_is_a_clear_error(node_exe, tiny_model):
    res = subprocess.run(
        [str(node_exe), "--ros-args", "-p", f"model_path:={tiny_model}", "-p", "backend:=3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 1 and "parameter backend: expected string" in out and "Traceback" not in out, out
