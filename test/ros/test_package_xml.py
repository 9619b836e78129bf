"""package.xml declares what the code imports, and nothing the code does not import."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Top-level import -> the package.xml dependency (ROS package or rosdep key) that provides it.
PROVIDERS = {
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "sensor_msgs": "sensor_msgs",
    "std_msgs": "std_msgs",
    "nav_msgs": "nav_msgs",
    "geometry_msgs": "geometry_msgs",
    "diagnostic_msgs": "diagnostic_msgs",
    "lifecycle_msgs": "lifecycle_msgs",
    "std_srvs": "std_srvs",
    "ament_index_python": "ament_index_python",
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "onnxruntime": "python3-onnxruntime-pip",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "rosbags": "python3-rosbags-pip",
}
# Not imported by our Python: srv/*.srv need std_msgs and geometry_msgs (rosidl DEPENDENCIES);
# rclpy.lifecycle needs lifecycle_msgs.
INTERFACE_DEPS = {"std_msgs", "geometry_msgs", "lifecycle_msgs"}
OPTIONAL = {"tf2_ros", "vision_msgs"}  # imported inside try/except ImportError: not a hard dependency


def _imports() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "seg_perception").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def _declared() -> set[str]:
    root = ET.parse(ROOT / "package.xml").getroot()
    return {e.text for e in root if e.tag in ("depend", "exec_depend") and e.text}


def test_every_import_is_declared():
    missing = {PROVIDERS[m] for m in _imports() if m in PROVIDERS} - _declared()
    assert not missing, f"package.xml lacks {sorted(missing)}"


def test_nothing_unused_or_optional_is_a_hard_dependency():
    imported = {PROVIDERS[m] for m in _imports() if m in PROVIDERS}
    unused = {key for key in set(PROVIDERS.values()) & _declared() if key not in imported | INTERFACE_DEPS}
    assert not unused, f"package.xml declares unused {sorted(unused)}"
    assert not OPTIONAL & _declared()
