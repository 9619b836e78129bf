#!/usr/bin/env python3
"""Draw seg_perception's import graph by layer and check the house rules.

Reads every module under ``seg_perception/`` with ``ast`` (nothing is imported), counts
every import, including the lazy ones inside functions (a lazy import is still a
dependency), and reports:

* the layer picture: which layer imports which, with edge counts;
* import cycles between modules (strongly connected components);
* upward imports (a module importing a layer above its own);
* modules outside ``ros/`` that import rclpy or a ROS message package;
* modules over the line limit.

Usage::

    python scripts/import_graph.py            # picture + violations, exit 1 if any
    python scripts/import_graph.py --dot g.dot # also write a Graphviz file of the layers

The layer table is :data:`LAYERS` below; ``docs/architecture.md`` explains it.
``test/test_architecture.py`` runs the same checks in the suite.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seg_perception"
MAX_LINES = 450

#: (layer name, module prefixes), bottom first. A module belongs to the first layer whose
#: prefix matches its dotted name (longest prefix wins). A module may import its own layer
#: and any layer below it, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "camvid", "model_spec", "runtime_stats", "__init__")),
    ("backends", ("backends", "detection", "upsampling", "nets")),
    ("core", ("pipeline", "geometry", "query", "depth")),
    ("config", ("node_params", "node_config", "assembly")),
    ("conversions", ("conversions",)),
    ("tools", ("evaluation", "training", "synthetic", "demo", "tools")),
    ("ros", ("ros",)),
    ("cli", ("cli", "backends.cli", "backends.precision_cli", "evaluation.cli", "evaluation.fleet_cli",
             "query.cli", "training.cli", "tools.cli")),
]

ROS_PACKAGES = {
    "rclpy", "sensor_msgs", "std_msgs", "nav_msgs", "geometry_msgs", "diagnostic_msgs", "vision_msgs",
    "rcl_interfaces", "lifecycle_msgs", "builtin_interfaces", "tf2_ros", "tf2_msgs", "cv_bridge",
    "launch", "launch_ros", "rosbag2_py", "std_srvs",
}
#: the generated service module of this package is a ROS message package too
ROS_LOCAL = ("seg_perception.srv",)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    """Index into :data:`LAYERS` of a ``seg_perception.*`` module (-1 when unlisted)."""
    short = module.removeprefix(PACKAGE).lstrip(".") or "__init__"
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (short == prefix or short.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def imports_of(path: Path, module: str) -> set[str]:
    """Absolute dotted names imported anywhere in ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            out.add(target)
            # ``from pkg import submodule`` names a module too
            out.update(f"{target}.{alias.name}" for alias in node.names)
    return out


def build_graph() -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, int]]:
    """(internal edges module -> modules, external top-level imports per module, line counts)."""
    files = sorted((ROOT / PACKAGE).rglob("*.py"))
    modules = {module_name(f): f for f in files}
    internal: dict[str, set[str]] = defaultdict(set)
    external: dict[str, set[str]] = defaultdict(set)
    lines: dict[str, int] = {}
    for mod, path in modules.items():
        lines[mod] = len(path.read_text().splitlines())
        for target in imports_of(path, mod):
            if target.startswith(ROS_LOCAL):
                external[mod].add(target)
            elif target == PACKAGE or target.startswith(PACKAGE + "."):
                # keep the longest existing module name (``a.b.c`` where ``a.b.c`` is a module)
                parts = target.split(".")
                while parts and ".".join(parts) not in modules:
                    parts.pop()
                found = ".".join(parts)
                if found and found != mod and found != PACKAGE:
                    internal[mod].add(found)
            else:
                external[mod].add(target.split(".")[0])
        internal.setdefault(mod, set())
    return dict(internal), dict(external), lines


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def violations() -> dict[str, list[str]]:
    """Every broken rule, by rule name (empty lists when the house is in order)."""
    internal, external, lines = build_graph()
    found: dict[str, list[str]] = {"cycles": [], "upward": [], "ros_outside_ros": [], "too_long": [],
                                   "unlayered": []}
    found["cycles"] = [" <-> ".join(c) for c in cycles(internal)]
    for mod in sorted(internal):
        mine = layer_of(mod)
        if mine < 0:
            found["unlayered"].append(mod)
            continue
        for dep in sorted(internal[mod]):
            theirs = layer_of(dep)
            if theirs > mine:
                found["upward"].append(f"{mod} ({LAYERS[mine][0]}) -> {dep} ({LAYERS[theirs][0]})")
        ros = sorted(e for e in external.get(mod, ()) if e in ROS_PACKAGES or e.startswith(ROS_LOCAL))
        if ros and not mod.startswith(f"{PACKAGE}.ros"):
            found["ros_outside_ros"].append(f"{mod}: {', '.join(ros)}")
        if lines[mod] > MAX_LINES:
            found["too_long"].append(f"{mod}: {lines[mod]} lines")
    return found


def layer_picture() -> str:
    """The layers bottom-up with their modules' line totals and the edges between layers."""
    internal, _, lines = build_graph()
    edges: dict[tuple[int, int], int] = defaultdict(int)
    members: dict[int, list[str]] = defaultdict(list)
    for mod, deps in internal.items():
        members[layer_of(mod)].append(mod)
        for dep in deps:
            a, b = layer_of(mod), layer_of(dep)
            if a != b:
                edges[(a, b)] += 1
    rows = []
    for i in reversed(range(len(LAYERS))):
        name = LAYERS[i][0]
        mods = members.get(i, [])
        down = ", ".join(f"{LAYERS[b][0]} x{n}" for (a, b), n in sorted(edges.items()) if a == i and b < i)
        up = ", ".join(f"{LAYERS[b][0]} x{n}" for (a, b), n in sorted(edges.items()) if a == i and b > i)
        rows.append(f"{i} {name:<10} {len(mods):3d} modules {sum(lines[m] for m in mods):6d} lines"
                    f"  imports: {down or '-'}" + (f"   UPWARD: {up}" if up else ""))
    return "\n".join(rows)


def write_dot(path: Path) -> None:
    internal, _, _ = build_graph()
    edges: dict[tuple[int, int], int] = defaultdict(int)
    for mod, deps in internal.items():
        for dep in deps:
            a, b = layer_of(mod), layer_of(dep)
            if a != b and a >= 0 and b >= 0:
                edges[(a, b)] += 1
    body = [f'  "{LAYERS[a][0]}" -> "{LAYERS[b][0]}" [label={n}{", color=red" if b > a else ""}];'
            for (a, b), n in sorted(edges.items())]
    path.write_text("digraph layers {\n  rankdir=BT;\n" + "\n".join(body) + "\n}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dot", type=Path, help="write the layer graph as Graphviz")
    args = parser.parse_args(argv)
    print(layer_picture())
    found = violations()
    total = 0
    for rule, items in found.items():
        print(f"\n{rule}: {len(items)}")
        for item in items:
            print(f"  {item}")
        total += len(items)
    if args.dot:
        write_dot(args.dot)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
