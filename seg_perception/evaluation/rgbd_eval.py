"""``eval-bag`` with depth: the depth-aware grid of each frame and, when the bag has truth, its errors.

When the bag has a depth topic (``rgbd_bag.find_depth_topic``), each image's depth (same
header stamp) gives the depth-aware grid, as in the node (``depth.grid.frame_depth_occupancy``,
stride 4, the node's ``depth.*`` rules); the flat-ground grid is computed beside it. With
``/truth/occupancy_grid`` both are scored (``rgbd_score.grid_errors``); with
``/truth/objects`` the predicted masks' positions are (``rgbd_score.position_errors``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from seg_perception.depth.cloud import NormalizedRays
from seg_perception.depth.grid import DepthGridRules, frame_depth_occupancy
from seg_perception.errors import GeometryError
from seg_perception.evaluation.bags import IMAGE, OCCUPANCY_GRID, BagReader
from seg_perception.evaluation.rgbd_bag import (
    MARKER_ARRAY,
    TRUTH_GRID_TOPIC,
    TRUTH_OBJECTS_TOPIC,
    StampIndex,
    depth_at,
    find_depth_topic,
    grid_at,
    positions_at,
)
from seg_perception.evaluation.rgbd_score import PositionError, grid_errors, position_errors
from seg_perception.geometry.camera import intrinsics_from_camera_info_checked
from seg_perception.geometry.classes import class_lut
from seg_perception.geometry.mapper import OccupancyMapper

__all__ = ["RgbdEvaluator", "rgbd_markdown"]


class RgbdEvaluator:
    """Per-frame depth grid and RGB-D scores of one bag (``attach`` it to the reader first).

    Args:
        mapper: the flat-ground mapper of the node's config (grid, pose, classes).
        class_names: the model's class names (truth objects are matched by name).
        rules: the node's ``depth.*`` grid rules.
        depth_topic: override detection ("none": no depth).
    """

    def __init__(
        self,
        mapper: OccupancyMapper,
        class_names: tuple[str, ...],
        rules: DepthGridRules | None = None,
        depth_topic: str | None = None,
    ) -> None:
        self.mapper, self.class_names, self.depth_topic = mapper, tuple(class_names), depth_topic
        self.rules = rules or DepthGridRules()
        self.topic: str | None = None
        self.frames = 0
        self.ms: list[float] = []
        self.grid_scores: dict[str, dict[str, list[float]]] = {"depth": {}, "flat": {}}
        self.positions: list[PositionError] = []
        self.warnings: list[str] = []
        self._rays = NormalizedRays()
        self._drivable = class_lut(mapper.drivable_classes, "drivable_classes")
        self._obstacle = class_lut(mapper.obstacle_classes, "obstacle_classes")

    def attach(self, reader: BagReader) -> bool:
        """Index the bag's depth and truth; False when it has no depth topic."""
        self.topic = find_depth_topic(reader, self.depth_topic)
        if self.topic is None:
            return False
        self._depth = StampIndex(reader, self.topic, IMAGE)
        self._grid = StampIndex(reader, TRUTH_GRID_TOPIC, OCCUPANCY_GRID)
        self._objects = StampIndex(reader, TRUTH_OBJECTS_TOPIC, MARKER_ARRAY)
        return True

    def frame(self, ns: int, labels: np.ndarray, info_msg: Any) -> np.ndarray | None:
        """The depth grid of the frame stamped ``ns`` (None: no depth or no camera_info), scored when truth exists."""
        if self.topic is None or info_msg is None:
            return None
        depth = depth_at(self._depth, ns)
        if depth is None:
            return None
        h, w = labels.shape
        if depth.shape != (h, w):
            self.warnings.append(f"depth {depth.shape[1]}x{depth.shape[0]} differs from labels {w}x{h}: frame skipped")
            return None
        try:
            intr = intrinsics_from_camera_info_checked(info_msg)
        except GeometryError as err:
            self.warnings.append(f"depth grid skipped: {err}")
            return None
        if (intr.width, intr.height) != (w, h):
            intr = intr.scaled(w, h)
        m = self.mapper
        t0 = time.perf_counter()
        res = frame_depth_occupancy(
            depth,
            labels,
            intr,
            m.ground_pose,
            m.grid,
            self._drivable,
            self._obstacle,
            self.rules,
            stride=4,
            rays=self._rays,
        )
        self.ms.append((time.perf_counter() - t0) * 1e3)
        self.frames += 1
        truth = grid_at(self._grid, ns)
        if truth is not None and truth.shape == m.grid.shape:
            m.set_intrinsics(intr)
            flat = m.process(labels).grid
            cam = m.ground_pose.position
            hfov = 2 * np.arctan((w / 2) / float(intr.k[0, 0]))
            for name, grid in (("depth", res.grid), ("flat", flat)):
                for key, val in grid_errors(grid, truth, m.grid, (cam[0], cam[1]), m.pose.rpy[2], hfov).items():
                    self.grid_scores[name].setdefault(key, []).append(float(val))
        elif truth is not None:
            self.warnings.append(f"truth grid {truth.shape} differs from the configured grid {m.grid.shape}")
        objects = positions_at(self._objects, ns)
        if objects:
            self.positions += position_errors(labels, depth, intr, objects, self.class_names, self._rays)
        return res.grid

    def to_dict(self) -> dict[str, Any] | None:
        """The report's ``rgbd`` section (None when the bag had no depth)."""
        if self.topic is None:
            return None
        out: dict[str, Any] = {
            "depth_topic": self.topic,
            "frames_with_depth": self.frames,
            "depth_grid_ms": _summary(self.ms),
        }
        for name, scores in self.grid_scores.items():
            if scores:
                out[f"{name}_grid"] = {k: _nanmean(v) for k, v in scores.items()}
                out[f"{name}_grid"]["frames"] = len(next(iter(scores.values())))
        if self.positions:
            found = [p for p in self.positions if p.error_m is not None]
            err = np.array([p.error_m for p in found])
            rel = np.array([p.error_m / p.range_m for p in found if p.range_m > 0])
            near = np.array([p.error_m for p in found if p.range_m <= 1.5])
            out["positions"] = {
                "objects": len(self.positions),
                "found": len(found),
                "median_error_m": float(np.median(err)) if err.size else None,
                "p95_error_m": float(np.percentile(err, 95)) if err.size else None,
                "max_error_m": float(err.max()) if err.size else None,
                "median_error_pct_of_range": float(100 * np.median(rel)) if rel.size else None,
                "max_error_pct_of_range": float(100 * rel.max()) if rel.size else None,
                "max_error_within_1_5m_m": float(near.max()) if near.size else None,
            }
        if self.warnings:
            out["warnings"] = sorted(set(self.warnings))
        return out


def _summary(ms: list[float]) -> dict[str, float] | None:
    """Median, mean and max of per-frame milliseconds (None: no frame)."""
    return {"median": float(np.median(ms)), "mean": float(np.mean(ms)), "max": float(np.max(ms))} if ms else None


def _nanmean(v: list[float]) -> float | None:
    a = np.asarray(v, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


def rgbd_markdown(section: dict[str, Any] | None) -> str:
    """The report's RGB-D section (Markdown) of ``RgbdEvaluator.to_dict``; empty when no depth."""
    if not section:
        return ""
    lines = [
        "## RGB-D",
        "",
        f"Depth topic `{section['depth_topic']}`: {section['frames_with_depth']} frames with depth.",
    ]
    ms = section.get("depth_grid_ms")
    if ms:
        lines.append(f"Depth grid: median {ms['median']:.1f} ms per frame.")
    rows = [(n, section[f"{n}_grid"]) for n in ("depth", "flat") if f"{n}_grid" in section]
    if rows:
        lines += [
            "",
            "Grid against the exact occupancy (means over frames):",
            "",
            "| grid | obstacle range error (median) | p95 | occupied precision (1 cell) | false free | "
            "missed / phantom beams |",
            "|---|---|---|---|---|---|",
        ]
        for name, g in rows:
            lines.append(
                f"| {name} | {_cm(g['obstacle_range_error_m'])} | {_cm(g['obstacle_range_error_p95_m'])} | "
                f"{_pct(g['occupied_precision'])} | {_pct(g['false_free'])} | "
                f"{g['missed_beams']:.1f} / {g['phantom_beams']:.1f} |"
            )
    pos = section.get("positions")
    if pos:
        lines += [
            "",
            f"Positions of {pos['objects']} true objects ({pos['found']} found from the predicted masks): "
            f"median error {_cm(pos['median_error_m'])}, p95 {_cm(pos['p95_error_m'])}, max "
            f"{_cm(pos['max_error_m'])}; median {_num(pos['median_error_pct_of_range'])} % of range, max "
            f"{_num(pos['max_error_pct_of_range'])} %.",
        ]
    return "\n".join(lines) + "\n"


def _cm(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} cm"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"
