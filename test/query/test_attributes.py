"""Colour attributes: HSV rule per pixel and per instance, including shading, and on the synthetic street."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.query.attributes import MIN_COLOUR_FRACTION, colour_scores, dominant_colour
from seg_perception.query.instances import find_instances

PROTOTYPES = {
    "red": (200, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (240, 220, 30),
    "green": (40, 160, 60),
    "blue": (30, 60, 170),
    "purple": (120, 40, 170),
    "pink": (240, 100, 180),
    "brown": (120, 70, 30),
}


def _pixels(rgb: tuple[int, int, int], n: int = 200, shade: float = 1.0, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 3, (n, 3))
    return np.clip(np.asarray(rgb, float) * shade + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(PROTOTYPES))
@pytest.mark.parametrize("shade", [1.0, 0.7, 0.45])
def test_chromatic_colours_survive_shading(name: str, shade: float):
    scores = colour_scores(_pixels(PROTOTYPES[name], shade=shade))
    assert scores[name] >= 0.9, (name, shade, scores)
    assert dominant_colour(scores) == name


def test_achromatic_colours_when_lit():
    assert dominant_colour(colour_scores(_pixels((235, 235, 235)))) == "white"
    assert dominant_colour(colour_scores(_pixels((128, 128, 128)))) == "grey"
    assert dominant_colour(colour_scores(_pixels((25, 25, 28)))) == "black"


def test_white_in_shade_is_still_whiter_than_grey_in_shade():
    # Same shadow on both: the comparison picks the white one for "white", the grey one for "grey".
    white = colour_scores(_pixels((235, 235, 235), shade=0.6))
    grey = colour_scores(_pixels((128, 128, 128), shade=0.6))
    assert white["white"] > grey["white"]
    assert white["white"] >= MIN_COLOUR_FRACTION
    black = colour_scores(_pixels((25, 25, 28), shade=0.6))
    assert black["black"] > grey["black"] and black["black"] > white["black"]


def test_mixed_instance_fraction():
    # A car: 60 % red paint, 40 % black tyres and glass.
    px = np.concatenate([_pixels((190, 30, 30), 120), _pixels((20, 20, 22), 80)])
    scores = colour_scores(px)
    assert scores["red"] == pytest.approx(0.6, abs=0.02)
    assert scores["black"] >= 0.3
    assert scores["blue"] == 0.0


def test_empty_and_large_inputs():
    assert all(v == 0.0 for v in colour_scores(np.zeros((0, 3), np.uint8)).values())
    big = _pixels((30, 60, 170), n=100_000)
    assert colour_scores(big)["blue"] > 0.95  # subsampled, same answer


def test_street_cars_by_colour(street):
    car = street.labels == 8
    inst = find_instances(car, min_area=8)
    assert len(inst.items) == 2
    named = {}
    for it in inst.items:
        sel = inst.components == it.label
        named[dominant_colour(colour_scores(street.rgb[sel]))] = sel
    assert set(named) == {"red", "blue"}
    assert np.array_equal(named["red"], street.masks["red_car"])
    assert np.array_equal(named["blue"], street.masks["blue_car"])
