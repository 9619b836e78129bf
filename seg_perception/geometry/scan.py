"""Obstacle scan: a planar "laser scan" of obstacle ground contacts, for costmap obstacle layers.

Beam ``i`` leaves the grid frame's origin at bearing ``angle_min + i * angle_increment``
(radians, counter-clockwise from +x) and covers half an increment either side. Range per
beam (float32, metres): finite = nearest obstacle contact in the sector; +inf = the camera
saw only free ground along the beam; NaN = nothing reliable. Meaning of each case and the
Nav2 settings: docs/occupancy.md, "Obstacle scan".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seg_perception.errors import ConfigError
from seg_perception.geometry.grid_spec import FREE, GridSpec

DEFAULT_ANGLE_INCREMENT = math.radians(0.5)


@dataclass(frozen=True)
class ScanSpec:
    """Beam layout of the obstacle scan (sensor_msgs/LaserScan fields).

    Attributes:
        angle_min: bearing of beam 0, radians (grid frame, counter-clockwise from +x).
        angle_increment: radians between beams (> 0).
        n_beams: number of beams; ``angle_max = angle_min + (n_beams - 1) * angle_increment``.
        range_min, range_max: metres; ``range_max`` is the farthest the scan can report
            (the farthest visible cell from the origin).
        clear_range: metres; every +inf beam was seen free at least this far from the
            origin (set Nav2's ``raytrace_max_range`` to at most this).
    """

    angle_min: float
    angle_increment: float
    n_beams: int
    range_min: float
    range_max: float
    clear_range: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.angle_increment) and self.angle_increment > 0):
            raise ConfigError(f"scan angle_increment must be > 0 radians, got {self.angle_increment}")
        if self.n_beams < 1:
            raise ConfigError(f"scan needs at least one beam, got {self.n_beams}")
        if not (0 <= self.range_min < self.range_max):
            raise ConfigError(f"scan range_min {self.range_min} / range_max {self.range_max} invalid")

    @property
    def angle_max(self) -> float:
        return self.angle_min + (self.n_beams - 1) * self.angle_increment

    def angles(self) -> np.ndarray:
        """Beam bearings (n_beams,) float64, radians."""
        return self.angle_min + np.arange(self.n_beams) * self.angle_increment

    def beam_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Beam index of points (x, y) (grid frame, metres) by bearing from the origin; -1 outside every sector."""
        bearing = np.arctan2(y, x)
        rel = np.mod(bearing - self.angle_min + 0.5 * self.angle_increment, 2 * np.pi)
        beam = np.floor(rel / self.angle_increment).astype(np.int64)
        return np.where(beam < self.n_beams, beam, -1)


def _angular_window(bearings: np.ndarray) -> tuple[float, float]:
    """Smallest circular interval [start, start + span] holding all bearings (radians)."""
    b = np.sort(np.mod(bearings, 2 * np.pi))
    gaps = np.diff(np.concatenate([b, b[:1] + 2 * np.pi]))
    i = int(np.argmax(gaps))
    start = b[(i + 1) % b.size]
    span = 2 * np.pi - gaps[i]
    start = (start + np.pi) % (2 * np.pi) - np.pi
    return float(start), float(span)


class ObstacleScanner:
    """Per-frame obstacle scan from a GroundProjector's output.

    Args:
        grid: the grid geometry (``max_range`` applies around ``camera_xy``).
        spec: beam layout.
        observable: (rows, cols) bool, cells the camera can see (``GroundProjector.observable``).
        camera_xy: camera position (x, y) in the grid frame, metres.
    """

    def __init__(self, grid: GridSpec, spec: ScanSpec, observable: np.ndarray, camera_xy: tuple[float, float]) -> None:
        self.grid = grid
        self.spec = spec
        observable = np.asarray(observable, dtype=bool).ravel()
        if observable.size != grid.n_cells:
            raise ConfigError(f"observable mask has {observable.size} cells, grid has {grid.n_cells}")
        step = grid.resolution / 2
        n_samples = max(1, int(np.ceil(spec.range_max / step)))
        r = (np.arange(n_samples) + 0.5) * step
        ang = spec.angles()
        x = np.cos(ang)[:, None] * r
        y = np.sin(ang)[:, None] * r
        cell = grid.cell_index(x, y)
        valid = (cell >= 0) & (np.hypot(x - camera_xy[0], y - camera_xy[1]) <= grid.max_range)
        seen = valid & observable[np.where(cell >= 0, cell, 0)]
        has_seen = seen.any(axis=1)
        first = np.argmax(seen, axis=1)
        last_valid = n_samples - 1 - np.argmax(valid[:, ::-1], axis=1)
        k = np.arange(n_samples)
        span = (k >= first[:, None]) & (k <= last_valid[:, None])
        # A beam can report "free to max range" only if the camera sees all of it past the blind zone.
        eligible = has_seen & ~(span & ~seen).any(axis=1)
        self._eligible = np.flatnonzero(eligible)
        pad = grid.n_cells
        idx = np.where(span & seen, cell, pad)[self._eligible]
        self._clear_idx = idx.astype(np.intp)
        reach = (last_valid + 1) * step
        self.eligible = eligible
        self.reach = np.where(eligible, reach, 0.0)

    @classmethod
    def for_projector(
        cls,
        projector: object,
        angle_increment: float = DEFAULT_ANGLE_INCREMENT,
        angle_min: float | None = None,
        angle_max: float | None = None,
    ) -> ObstacleScanner:
        """Scanner whose beams span the bearings of the cells ``projector`` can see (unless given)."""
        grid: GridSpec = projector.grid  # type: ignore[attr-defined]
        observable: np.ndarray = projector.observable  # type: ignore[attr-defined]
        cam = projector.pose.position  # type: ignore[attr-defined]
        if not (math.isfinite(angle_increment) and angle_increment > 0):
            raise ConfigError(f"scan angle_increment must be > 0 radians, got {angle_increment}")
        xs, ys = grid.cell_centers()
        rows, cols = np.nonzero(observable)
        cx, cy = xs[cols], ys[rows]
        half = grid.resolution * math.sqrt(0.5)
        dist = np.hypot(cx, cy)
        if angle_min is None or angle_max is None:
            start, span = _angular_window(np.arctan2(cy, cx))
            angle_min = start if angle_min is None else angle_min
            angle_max = start + span if angle_max is None else angle_max
        n_beams = max(1, int(math.floor((angle_max - angle_min) / angle_increment + 1e-9)) + 1)
        range_max = float(dist.max() + half) if dist.size else grid.max_range
        # The blind zone in front of the camera is known: nothing nearer than the nearest visible cell.
        range_min = min(max(0.0, float(dist.min() - half)), 0.5 * range_max) if dist.size else 0.0
        probe = ScanSpec(float(angle_min), float(angle_increment), n_beams, range_min, range_max, 0.0)
        scanner = cls(grid, probe, observable, (float(cam[0]), float(cam[1])))
        clear = float(scanner.reach[scanner.eligible].min()) if scanner.eligible.any() else 0.0
        spec = ScanSpec(float(angle_min), float(angle_increment), n_beams, range_min, range_max, clear)
        scanner.spec = spec
        return scanner

    def scan(self, result: object) -> np.ndarray:
        """Ranges (n_beams,) float32 of one frame from a ``GroundProjector.project`` result (grid, contacts)."""
        grid: np.ndarray = result.grid  # type: ignore[attr-defined]
        contacts: np.ndarray = result.contacts  # type: ignore[attr-defined]
        return self.ranges(grid, contacts)

    def ranges(self, grid: np.ndarray, contacts: np.ndarray) -> np.ndarray:
        """Ranges (n_beams,) float32 from a (rows, cols) int8 grid and (N, 2) contact points."""
        spec = self.spec
        out = np.full(spec.n_beams, np.nan, dtype=np.float32)
        if self._eligible.size:
            ext = np.empty(self.grid.n_cells + 1, dtype=np.int8)
            ext[:-1] = grid.ravel()
            ext[-1] = FREE
            clear = (ext[self._clear_idx] == FREE).all(axis=1)
            out[self._eligible[clear]] = np.inf
        if len(contacts):
            x, y = contacts[:, 0], contacts[:, 1]
            rng = np.hypot(x, y)
            beam = spec.beam_of(x, y)
            ok = (beam >= 0) & (rng >= spec.range_min) & (rng <= spec.range_max)
            beam, rng = beam[ok], rng[ok]
            order = np.argsort(rng, kind="stable")
            beams, first = np.unique(beam[order], return_index=True)
            out[beams] = rng[order][first]
        return out
