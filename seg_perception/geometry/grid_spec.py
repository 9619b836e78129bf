"""Bird's-eye occupancy grid geometry: extent, resolution, cell indexing, range limit.

The grid lives in the *grid frame* (``grid.frame_id``, e.g. ``base_link``): x forward,
y left, z up, metres, ground plane z = 0. It follows nav_msgs/OccupancyGrid:

- the origin (``x_min``, ``y_min``) is the outer corner of cell (row 0, col 0);
- ``col`` indexes x, ``row`` indexes y; cell (row, col) spans
  ``[x_min + col * res, x_min + (col + 1) * res) x [y_min + row * res, y_min + (row + 1) * res)``;
- a numpy grid has shape ``(height, width) = (rows, cols)`` and its C-order ravel is the
  message's row-major ``data[row * width + col]``.

Cell values: ``FREE`` (0), ``OCCUPIED`` (100), ``UNKNOWN`` (-1), dtype int8.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from seg_perception.errors import ConfigError

FREE = 0
OCCUPIED = 100
UNKNOWN = -1

# A grid larger than this is almost certainly a unit mistake (e.g. resolution in cm).
MAX_CELLS = 16_000_000


@dataclass(frozen=True)
class GridSpec:
    """Extent and resolution of the occupancy grid, plus the sensor range limit.

    Attributes:
        frame_id: TF frame of the grid (the frame the camera pose is given in).
        resolution: cell edge length, metres (> 0).
        x_min, x_max: forward extent, metres (x_max > x_min).
        y_min, y_max: lateral extent, metres (y_max > y_min).
        max_range: ground hits farther than this *horizontal* distance from the camera
            centre are ignored, metres (> 0).
        ground_z: height of the floor in ``frame_id``, metres (0 for a frame on the floor such
            as ``base_footprint``; -0.3 for a ``base_link`` 0.3 m above it).

    The grid has ``width = ceil((x_max - x_min) / resolution)`` columns and
    ``height = ceil((y_max - y_min) / resolution)`` rows (an extent that is a whole
    number of cells to within 1e-6 cells is not rounded up), so it may reach up to one
    cell beyond ``x_max`` / ``y_max``.
    """

    frame_id: str = "base_link"
    resolution: float = 0.10
    x_min: float = 0.0
    x_max: float = 20.0
    y_min: float = -10.0
    y_max: float = 10.0
    max_range: float = 15.0  # the node's grid.max_range default
    ground_z: float = 0.0

    def __post_init__(self) -> None:
        for name in ("resolution", "x_min", "x_max", "y_min", "y_max", "max_range", "ground_z"):
            try:
                value = float(getattr(self, name))
            except (TypeError, ValueError) as err:
                raise ConfigError(f"parameter grid.{name} must be a number, got {getattr(self, name)!r}") from err
            if not math.isfinite(value):
                raise ConfigError(f"parameter grid.{name} must be finite, got {value}")
            object.__setattr__(self, name, value)
        if not isinstance(self.frame_id, str) or not self.frame_id:
            raise ConfigError(f"parameter grid.frame_id must be a non-empty string, got {self.frame_id!r}")
        if self.resolution <= 0:
            raise ConfigError(f"parameter grid.resolution must be > 0 metres, got {self.resolution}")
        for axis in ("x", "y"):
            lo, hi = getattr(self, f"{axis}_min"), getattr(self, f"{axis}_max")
            if hi <= lo:
                raise ConfigError(f"parameter grid.{axis}_max ({hi}) must be greater than grid.{axis}_min ({lo})")
        if self.max_range <= 0:
            raise ConfigError(f"parameter grid.max_range must be > 0 metres, got {self.max_range}")
        if self.width * self.height > MAX_CELLS:
            raise ConfigError(
                f"grid of {self.width}x{self.height} cells is too large (limit {MAX_CELLS}); raise grid.resolution "
                "(metres per cell) or shrink the extent"
            )

    @staticmethod
    def _cells(extent: float, resolution: float) -> int:
        return max(1, math.ceil(extent / resolution - 1e-6))

    @property
    def width(self) -> int:
        """Number of columns (cells along x)."""
        return self._cells(self.x_max - self.x_min, self.resolution)

    @property
    def height(self) -> int:
        """Number of rows (cells along y)."""
        return self._cells(self.y_max - self.y_min, self.resolution)

    @property
    def shape(self) -> tuple[int, int]:
        """Numpy shape of a grid array: (rows, cols) = (height, width)."""
        return self.height, self.width

    @property
    def n_cells(self) -> int:
        return self.width * self.height

    def cell_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell centre coordinates: (x of each column (width,), y of each row (height,)), metres, float64."""
        xs = self.x_min + (np.arange(self.width) + 0.5) * self.resolution
        ys = self.y_min + (np.arange(self.height) + 0.5) * self.resolution
        return xs, ys

    def cell_index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat row-major cell index (row * width + col) of points (x, y) in metres; -1 outside the grid.

        Returns int64 with the broadcast shape of ``x`` and ``y``. NaN coordinates give -1.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            fc = np.floor((x - self.x_min) / self.resolution)
            fr = np.floor((y - self.y_min) / self.resolution)
            inside = (fc >= 0) & (fc < self.width) & (fr >= 0) & (fr < self.height)
        col = np.where(inside, fc, 0).astype(np.int64)
        row = np.where(inside, fr, 0).astype(np.int64)
        return np.where(inside, row * self.width + col, -1)

    def empty(self) -> np.ndarray:
        """A (height, width) int8 grid of UNKNOWN."""
        return np.full(self.shape, UNKNOWN, dtype=np.int8)

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any], prefix: str = "grid.") -> GridSpec:
        """Build from flat ROS-style parameters (``grid.frame_id``, ``grid.resolution``, ``grid.x_min``, ...).

        Missing keys take the dataclass defaults; unknown ``grid.*`` keys raise ConfigError
        (a typo would otherwise be silently ignored).
        """
        names = {"frame_id", "resolution", "x_min", "x_max", "y_min", "y_max", "max_range", "ground_z"}
        kwargs: dict[str, Any] = {}
        for key, value in params.items():
            if not key.startswith(prefix):
                continue
            name = key[len(prefix) :]
            if name not in names:
                expected = sorted(prefix + n for n in names)
                raise ConfigError(f"unknown grid parameter {key!r}; expected one of {expected}")
            kwargs[name] = value
        return cls(**kwargs)
