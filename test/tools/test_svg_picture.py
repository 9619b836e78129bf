"""SVG pictures: well-formed XML, every cell of the photo painted once, the answer drawn as vectors."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np

from seg_perception.tools.svg_picture import Panel, panel_svg, sheet_svg

NS = "{http://www.w3.org/2000/svg}"


def _photo() -> np.ndarray:
    rgb = np.zeros((60, 90, 3), np.uint8)
    rgb[:, :45] = (200, 30, 30)
    rgb[:, 45:] = (20, 40, 200)
    rgb[20:40, 30:60] = (240, 240, 240)
    return rgb


def test_cells_are_painted_once_in_the_right_colour() -> None:
    body, w, h = panel_svg(Panel(_photo()), cell=5, colours=8)
    assert (w, h) == (90, 60)
    paths = ET.fromstring(f'<svg xmlns="http://www.w3.org/2000/svg">{body}</svg>').iter(f"{NS}path")
    painted = np.zeros((12, 18), int)
    colour_at = {}
    for p in paths:
        for x, y, run in re.findall(r"M(\d+) (\d+)h(\d+)v", p.get("d")):
            cx, cy, n = int(x) // 5, int(y) // 5, int(run) // 5
            painted[cy, cx : cx + n] += 1
            for i in range(n):
                colour_at[(cy, cx + i)] = p.get("fill")
    assert np.all(painted == 1)
    assert colour_at[(0, 0)] == "#c81e1e" and colour_at[(0, 17)] == "#1428c8" and colour_at[(5, 8)] == "#f0f0f0"


def test_answer_outline_roi_and_captions() -> None:
    mask = np.zeros((60, 90), bool)
    mask[10:30, 20:50] = True
    body, _, _ = panel_svg(Panel(_photo(), mask, (20, 10, 30, 20), ['"the cup"', "Cup <0.9>"]), cell=5)
    root = ET.fromstring(f'<svg xmlns="http://www.w3.org/2000/svg">{body}</svg>')
    outline = [p for p in root.iter(f"{NS}path") if p.get("fill-opacity")]
    assert len(outline) == 1 and outline[0].get("d").startswith("M20 10")
    rect = next(root.iter(f"{NS}rect"))
    assert (rect.get("x"), rect.get("y"), rect.get("width"), rect.get("height")) == ("20", "10", "30", "20")
    assert [t.text for t in root.iter(f"{NS}text")] == ['"the cup"', "Cup <0.9>"]  # escaped, parsed back


def test_sheet_lays_out_rows() -> None:
    doc = sheet_svg([Panel(_photo()) for _ in range(4)], height=120, per_row=3, cell=5)
    root = ET.fromstring(doc)
    assert root.get("height") == str(120 * 2 + 8) and root.get("width") == str(3 * 180 + 2 * 8)
    moves = [g.get("transform") for g in root if g.get("transform")]
    assert moves[0].startswith("translate(0 0)") and moves[3].startswith("translate(0 128)")
