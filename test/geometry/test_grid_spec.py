"""GridSpec: validation, size, cell indexing, construction from parameters."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.errors import ConfigError
from seg_perception.geometry.grid_spec import UNKNOWN, GridSpec


def test_size_and_centres():
    g = GridSpec("base_link", 0.1, 0.0, 20.0, -10.0, 10.0, 20.0)
    assert (g.width, g.height, g.shape, g.n_cells) == (200, 200, (200, 200), 40000)
    xs, ys = g.cell_centers()
    assert xs[0] == pytest.approx(0.05) and ys[-1] == pytest.approx(9.95)
    # A non-whole extent rounds up to cover it.
    g2 = GridSpec("map", 0.3, 0.0, 1.0, 0.0, 0.6, 5.0)
    assert (g2.width, g2.height) == (4, 2)
    assert g.empty().dtype == np.int8 and np.all(g.empty() == UNKNOWN)


def test_cell_index_is_row_major_and_rejects_outside():
    g = GridSpec("base_link", 0.5, -1.0, 1.0, 0.0, 1.5, 5.0)  # 4 cols x 3 rows
    assert g.cell_index(-1.0, 0.0) == 0
    assert g.cell_index(-0.49, 0.0) == 1  # next column
    assert g.cell_index(-1.0, 0.5) == 4  # next row: + width
    assert g.cell_index(0.99, 1.49) == 11
    idx = g.cell_index(np.array([1.0, -1.01, 0.0, np.nan]), np.array([0.0, 0.0, 1.5, 0.0]))
    assert idx.tolist() == [-1, -1, -1, -1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"resolution": 0.0},
        {"resolution": -0.1},
        {"resolution": float("nan")},
        {"x_min": 5.0, "x_max": 5.0},
        {"y_min": 1.0, "y_max": -1.0},
        {"max_range": 0.0},
        {"frame_id": ""},
        {"resolution": "ten"},
        {"resolution": 0.0001},  # 200 km^2 of cells: a unit mistake
    ],
)
def test_invalid_specs_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        GridSpec(**kwargs)


def test_from_parameters():
    params = {"grid.frame_id": "odom", "grid.resolution": 0.2, "grid.x_max": 10.0, "model_path": "x"}
    g = GridSpec.from_parameters(params)
    assert (g.frame_id, g.resolution, g.x_max, g.x_min) == ("odom", 0.2, 10.0, 0.0)
    with pytest.raises(ConfigError):
        GridSpec.from_parameters({"grid.resolutoin": 0.2})

