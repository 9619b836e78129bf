"""Colour attributes of instances: which of the basic colour words an instance's pixels match.

Rule (documented in docs/query.md). Pixels are converted to HSV (hue in degrees 0..360,
saturation S and value V in 0..1). A shadow scales R, G and B by about the same
factor, which leaves hue and saturation unchanged and only lowers V, so chromatic
colours are decided by hue and saturation alone, and V only gates out pixels too dark
for a reliable hue:

* a pixel is *chromatic* when S >= 0.25 and V >= 0.15;
* chromatic hue bands: red [345, 15), orange [15, 40), yellow [40, 70), green
  [70, 165), blue [165, 255), purple [255, 290), pink [290, 345); light reds
  (red hue with S < 0.45 and V >= 0.6) count as pink, not red;
* brown is a dark, not fully saturated orange/red: hue in [345, 45) with V < 0.6 and
  S < 0.9; such pixels are not orange (a fully saturated orange in shade stays orange).
  A red object in shade also scores some brown; its red fraction stays higher.
* achromatic colours (black, grey, white) are decided per instance, not per pixel,
  because a shadow turns a white surface grey: over the instance's achromatic pixels
  (S < 0.25 or V < 0.15), "lit" is the 80th percentile of V (its best-lit part).
  Each achromatic name scores the achromatic fraction times a brightness ramp:
  white ramps from 0 at lit 0.35 to 1 at lit >= 0.75, black from 0 at lit 0.4 to 1
  at lit <= 0.15, grey is a triangle peaking at lit 0.5 (zero at 0.1 and 0.9). So a
  white car in shade still scores "white" (more weakly), and among several candidates
  the brightest wins "white" and the darkest wins "black" (people compare).

An instance matches a colour when the fraction of its pixels that match is at least
``MIN_COLOUR_FRACTION`` (0.3): cars have black tyres and glass, people have skin and hair.
"""

from __future__ import annotations

import cv2
import numpy as np

COLOUR_NAMES = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey")
CHROMATIC = COLOUR_NAMES[:8]
ACHROMATIC = COLOUR_NAMES[8:]

MIN_COLOUR_FRACTION = 0.3
_S_CHROMA = 0.25
_V_MIN = 0.15
# Achromatic brightness ramps on the lit (80th percentile) V of the achromatic pixels.
_WHITE_MIN, _WHITE_FULL = 0.35, 0.75
_BLACK_MAX, _BLACK_FULL = 0.4, 0.15
_GREY_CENTRE, _GREY_HALF_WIDTH = 0.5, 0.4
# Large instances are subsampled to this many pixels: the fraction's standard error stays < 1 %.
_MAX_PIXELS = 4096


def _hsv_of_pixels(rgb_pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue (degrees 0..360), S (0..1), V (0..1) float32 arrays of Nx3 uint8 RGB pixels."""
    hsv = cv2.cvtColor(rgb_pixels.reshape(-1, 1, 3), cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3).astype(np.float32)
    return hsv[:, 0] * (360.0 / 256.0), hsv[:, 1] / 255.0, hsv[:, 2] / 255.0


def colour_scores(rgb_pixels: np.ndarray) -> dict[str, float]:
    """Fraction (0..1) of pixels matching each colour name, for one instance's Nx3 uint8 RGB pixels."""
    n = len(rgb_pixels)
    if n == 0:
        return dict.fromkeys(COLOUR_NAMES, 0.0)
    if n > _MAX_PIXELS:
        idx = np.linspace(0, n - 1, _MAX_PIXELS).astype(np.int64)
        rgb_pixels = rgb_pixels[idx]
        n = _MAX_PIXELS
    h, s, v = _hsv_of_pixels(np.ascontiguousarray(rgb_pixels, dtype=np.uint8))
    chroma = (s >= _S_CHROMA) & (v >= _V_MIN)
    red_hue = (h >= 345.0) | (h < 15.0)
    light = (s < 0.45) & (v >= 0.6)
    brown = chroma & ((h >= 345.0) | (h < 45.0)) & (v < 0.6) & (s < 0.9)
    masks = {
        "red": chroma & red_hue & ~light,
        "orange": chroma & (h >= 15.0) & (h < 40.0) & ~brown,
        "yellow": chroma & (h >= 40.0) & (h < 70.0),
        "green": chroma & (h >= 70.0) & (h < 165.0),
        "blue": chroma & (h >= 165.0) & (h < 255.0),
        "purple": chroma & (h >= 255.0) & (h < 290.0),
        "pink": chroma & (((h >= 290.0) & (h < 345.0)) | (red_hue & light)),
        "brown": brown,
    }
    out = {name: float(np.count_nonzero(m)) / n for name, m in masks.items()}
    achro = ~chroma
    frac = float(np.count_nonzero(achro)) / n
    lit = float(np.percentile(v[achro], 80)) if frac > 0 else 0.0
    out["white"] = frac * float(np.clip((lit - _WHITE_MIN) / (_WHITE_FULL - _WHITE_MIN), 0.0, 1.0))
    out["black"] = frac * float(np.clip((_BLACK_MAX - lit) / (_BLACK_MAX - _BLACK_FULL), 0.0, 1.0))
    out["grey"] = frac * float(np.clip(1.0 - abs(lit - _GREY_CENTRE) / _GREY_HALF_WIDTH, 0.0, 1.0))
    return out


def dominant_colour(scores: dict[str, float]) -> str:
    """The colour name with the highest score (for messages such as "2 cars: blue, grey")."""
    return max(COLOUR_NAMES, key=lambda c: scores.get(c, 0.0))
