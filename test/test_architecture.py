"""The house rules of docs/architecture.md, checked on the source (scripts/import_graph.py).

No import cycle, no module importing a layer above its own, nothing outside ``ros/``
importing rclpy or a ROS message package, no module over 450 lines, every module in a layer.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


GRAPH = _import_graph()
FOUND = GRAPH.violations()


@pytest.mark.parametrize("rule", sorted(FOUND))
def test_no_violation(rule: str) -> None:
    assert FOUND[rule] == [], f"{rule}:\n" + "\n".join(FOUND[rule])


def test_checker_sees_cycles_and_upward_imports(tmp_path: Path) -> None:
    """The checker itself can fail: a two-module cycle and an upward edge are found."""
    assert GRAPH.cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert GRAPH.cycles({"a": {"b"}, "b": set()}) == []
    assert GRAPH.layer_of("seg_perception.ros.node") > GRAPH.layer_of("seg_perception.pipeline")
    assert GRAPH.layer_of("seg_perception.evaluation.cli") == GRAPH.layer_of("seg_perception.cli")
    src = tmp_path / "m.py"
    src.write_text("import rclpy\nfrom . import sib\nfrom ..pkg import thing\n")
    assert GRAPH.imports_of(src, "seg_perception.sub.m") >= {"rclpy", "seg_perception.sub", "seg_perception.pkg"}
