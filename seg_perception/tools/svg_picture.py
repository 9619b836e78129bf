"""Pictures as plain-text SVG, for the README: a posterised photo plus crisp vector answers.

The repository commits no binaries but its models, so the README's pictures are SVG text:
the photo is reduced to ``cell``-pixel squares in a k-means palette (one ``<path>`` per
palette colour, runs of equal cells merged along rows), and each answer is drawn on top as
vectors: the mask's outline (filled, translucent), its roi and a caption. Images are HxWx3
uint8 RGB; masks HxW bool; coordinates in pixels of the original image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

import numpy as np

__all__ = ["Panel", "panel_svg", "sheet_svg"]


@dataclass
class Panel:
    """One picture: the photo, an optional answer mask and roi (x, y, w, h), caption lines."""

    rgb: np.ndarray
    mask: np.ndarray | None = None
    roi: tuple[int, int, int, int] | None = None
    captions: list[str] = field(default_factory=list)


def _posterise(rgb: np.ndarray, cell: int, colours: int) -> tuple[np.ndarray, np.ndarray]:
    """(palette K x 3 uint8, index map h x w) of ``rgb`` averaged over cell x cell squares."""
    import cv2

    h, w = rgb.shape[0] // cell, rgb.shape[1] // cell
    small = cv2.resize(rgb[: h * cell, : w * cell], (w, h), interpolation=cv2.INTER_AREA)
    data = small.reshape(-1, 3).astype(np.float32)
    k = int(min(colours, len(np.unique(data, axis=0))))
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, idx, centres = cv2.kmeans(data, k, None, crit, 2, cv2.KMEANS_PP_CENTERS)
    return np.clip(centres, 0, 255).astype(np.uint8), idx.reshape(h, w)


def _photo_paths(palette: np.ndarray, index: np.ndarray, cell: int) -> list[str]:
    paths = []
    for k, colour in enumerate(palette):
        runs = []
        for y in range(index.shape[0]):
            row = index[y] == k
            if not row.any():
                continue
            edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
            for x0, x1 in zip(edges[0::2], edges[1::2], strict=True):
                runs.append(f"M{x0 * cell} {y * cell}h{(x1 - x0) * cell}v{cell}h-{(x1 - x0) * cell}z")
        if runs:
            paths.append(f'<path fill="#{colour[0]:02x}{colour[1]:02x}{colour[2]:02x}" d="{"".join(runs)}"/>')
    return paths


def _mask_path(mask: np.ndarray) -> str:
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    d = []
    for c in contours:
        pts = cv2.approxPolyDP(c, 1.0, True).reshape(-1, 2)
        if len(pts) >= 3:
            d.append("M" + "L".join(f"{x} {y}" for x, y in pts) + "z")
    if not d:
        return ""
    return f'<path fill="#00ff00" fill-opacity="0.4" stroke="#00ff00" stroke-width="3" d="{"".join(d)}"/>'


def panel_svg(panel: Panel, cell: int = 6, colours: int = 20) -> tuple[str, int, int]:
    """The panel's SVG group (origin top-left) and its width and height in pixels."""
    h, w = panel.rgb.shape[:2]
    palette, index = _posterise(panel.rgb[..., :3], cell, colours)
    parts = ['<g shape-rendering="crispEdges">', *_photo_paths(palette, index, cell), "</g>"]
    if panel.mask is not None and panel.mask.any():
        parts.append(_mask_path(panel.mask))
    if panel.roi is not None:
        x, y, rw, rh = panel.roi
        box = f'x="{x}" y="{y}" width="{rw}" height="{rh}"'
        parts.append(f'<rect {box} fill="none" stroke="#00ff00" stroke-width="3"/>')
    size = max(14, int(round(min(w, h) / 16)))
    for i, text in enumerate(panel.captions):
        y = int(size * 1.4 * (i + 1))
        parts.append(
            f'<text x="{size // 2}" y="{y}" font-family="sans-serif" font-size="{size}" fill="#ffff00" '
            f'stroke="#000000" stroke-width="{max(2, size // 6)}" paint-order="stroke">{escape(text)}</text>'
        )
    return "\n".join(parts), w, h


def sheet_svg(panels: list[Panel], height: int = 260, per_row: int = 3, cell: int = 6) -> str:
    """An SVG document of ``panels`` scaled to ``height`` px, ``per_row`` to a row, 8 px apart."""
    groups, x, y, row_w, width = [], 0, 0, 0, 0
    for i, panel in enumerate(panels):
        body, w, h = panel_svg(panel, cell)
        scale = height / h
        if i and i % per_row == 0:
            x, y = 0, y + height + 8
        groups.append(f'<g transform="translate({x} {y}) scale({scale:.4f})">\n{body}\n</g>')
        x += int(round(w * scale)) + 8
        row_w = max(row_w, x - 8)
        width = max(width, row_w)
    total_h = y + height
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" '
        f'viewBox="0 0 {width} {total_h}">\n' + "\n".join(groups) + "\n</svg>\n"
    )
