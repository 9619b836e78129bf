"""Pixel mask of a detected object inside its box: GrabCut on a small crop, joined with a shape prior.

Method and measurements: docs/query.md ("Masks of detected objects"). Images are HxWx3
uint8 RGB; boxes (x, y, width, height) in pixels (float); masks HxW bool.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROP_SIDE = 64  # pixels: long side of the downscaled crop GrabCut runs on
ITERATIONS = 2
PAD = 0.1  # crop margin around the box, fraction of its width/height: GrabCut's sure background
SEED_RADIUS = 0.5  # normalised radius of the inscribed ellipse seeded as sure foreground
CORE_RADIUS = 0.8  # normalised radius of the inscribed ellipse always kept (shape prior)
MIN_SIDE = 4  # pixels: smaller boxes keep the prior only
SEED = 0  # OpenCV RNG seed (GrabCut's k-means): the same frame gives the same mask


@dataclass(frozen=True)
class RefinedMask:
    """A detection's mask (HxW bool) and its quality 0..1: the share of the mask GrabCut itself kept."""

    mask: np.ndarray
    quality: float


def _ellipse_radius(h: int, w: int, box: tuple[float, float, float, float], origin: tuple[float, float], scale: float):
    """Normalised elliptical radius (h x w float32) of pixel centres of a grid, for the box's inscribed ellipse.

    ``origin`` is the full-image position of the grid's top-left corner; ``scale`` full-image pixels per grid pixel.
    """
    x, y, bw, bh = box
    cols = origin[0] + (np.arange(w, dtype=np.float32) + 0.5) * scale
    rows = origin[1] + (np.arange(h, dtype=np.float32) + 0.5) * scale
    u = (cols - (x + bw / 2.0)) / max(bw / 2.0, 1e-6)
    v = (rows - (y + bh / 2.0)) / max(bh / 2.0, 1e-6)
    return np.sqrt(u[None, :] ** 2 + v[:, None] ** 2), np.abs(u)[None, :] <= 1.0, np.abs(v)[:, None] <= 1.0


def refine_box(rgb: np.ndarray, box: tuple[float, float, float, float]) -> RefinedMask:
    """The object's pixels in ``box`` of ``rgb`` (HxWx3 uint8): GrabCut foreground united with the core ellipse.

    GrabCut runs on the box plus a ``PAD`` margin, resized to ``CROP_SIDE`` pixels on its long side
    (about 5 ms): the margin is sure background, the inscribed ellipse probable foreground and its
    inner half sure foreground, the box corners probable background. The ellipse of radius
    ``CORE_RADIUS`` is always kept; only the part inside the box and connected to it is returned.
    """
    h, w = rgb.shape[:2]
    x, y, bw, bh = (float(v) for v in box)
    core_full = np.zeros((h, w), bool)
    x0, y0 = max(0, int(np.floor(x - PAD * bw))), max(0, int(np.floor(y - PAD * bh)))
    x1, y1 = min(w, int(np.ceil(x + bw + PAD * bw))), min(h, int(np.ceil(y + bh + PAD * bh)))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return RefinedMask(core_full, 0.0)
    r_full, _, _ = _ellipse_radius(y1 - y0, x1 - x0, (x, y, bw, bh), (x0, y0), 1.0)
    core = r_full <= CORE_RADIUS
    if min(bw, bh) < MIN_SIDE:
        core_full[y0:y1, x0:x1] = core
        return RefinedMask(core_full, 0.0)
    scale = max(1.0, max(x1 - x0, y1 - y0) / CROP_SIDE)  # never upsample a small crop
    sw, sh = max(1, round((x1 - x0) / scale)), max(1, round((y1 - y0) / scale))
    small = cv2.resize(np.ascontiguousarray(rgb[y0:y1, x0:x1, :3]), (sw, sh), interpolation=cv2.INTER_AREA)
    r, in_u, in_v = _ellipse_radius(sh, sw, (x, y, bw, bh), (x0, y0), (x1 - x0) / sw)
    seeds = np.full((sh, sw), cv2.GC_BGD, np.uint8)
    seeds[in_u & in_v] = cv2.GC_PR_BGD
    seeds[r <= 1.0] = cv2.GC_PR_FGD
    seeds[r <= SEED_RADIUS] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(SEED)
    try:
        cv2.grabCut(np.ascontiguousarray(small[..., ::-1]), seeds, None, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        core_full[y0:y1, x0:x1] = core
        return RefinedMask(core_full, 0.0)  # e.g. a flat crop: no colour model to fit
    fg_small = ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.float32)
    fg = cv2.resize(fg_small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR) >= 0.5
    in_box = np.zeros_like(fg)
    bx0, by0 = max(0, int(round(x)) - x0), max(0, int(round(y)) - y0)
    in_box[by0 : int(round(y + bh)) - y0, bx0 : int(round(x + bw)) - x0] = True
    joined = ((fg | core) & in_box).astype(np.uint8)
    n, comp = cv2.connectedComponents(joined, connectivity=8)
    if n > 2:
        keep = np.unique(comp[core & (comp > 0)])
        joined = np.isin(comp, keep).astype(np.uint8)
    mask = joined.astype(bool)
    area = int(np.count_nonzero(mask))
    quality = float(np.count_nonzero(mask & fg)) / area if area else 0.0
    core_full[y0:y1, x0:x1] = mask
    return RefinedMask(core_full, quality)
