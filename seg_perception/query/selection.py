"""Which instances a query's selectors pick: a superlative, a region, a colour, or the whole class.

One rule applies, the first that fits: an ordinal ("second from the left") counts along the
first selector (left to right without one); superlative words ("nearest", "leftmost") pick one
instance, region words filter them first; region words alone pick the extreme instance
(singular) or filter (plural, or a single candidate); without selectors and colour the
whole class is the answer; with a colour, the best-matching instance or all (plural).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seg_perception.query.instances import REGIONS, SUPERLATIVES, Instance, pick_one, region_filter
from seg_perception.query.ordinals import ordinal_text, pick_ordinal, ranking_selector, ranking_text


@dataclass
class Choice:
    """Instances selected, and the message fragment that says how ("chose leftmost", "whole class")."""

    chosen: list[Instance]
    how: str
    whole_class: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class RegionMiss:
    """No candidate lies in ``region`` ("left", "right", "middle"); ``candidates`` are those elsewhere."""

    region: str
    candidates: list[Instance]


@dataclass
class OrdinalMiss:
    """Fewer candidates than the ordinal asks for; ``how`` is "second from the left" and so on."""

    how: str
    candidates: list[Instance]


def choose(
    candidates: list[Instance],
    spatial: list[str],
    colour: str | None,
    plural: bool,
    width: int,
    ordinal: int | None = None,
) -> Choice | RegionMiss | OrdinalMiss:
    """Apply the first rule that fits (see module docstring) to non-empty ``candidates``.

    Args:
        candidates: instances of the class (already filtered by ``colour`` when one was asked for).
        spatial: canonical selectors in query order.
        colour: the colour asked for, or None.
        plural: the phrase was plural or said "all".
        width: frame width in pixels (regions are halves and the middle third).
        ordinal: 1-based position, negative from the end ("last" = -1), or None.
    """
    if ordinal is not None:
        selector = ranking_selector(spatial)
        how = f"{ordinal_text(ordinal)} {ranking_text(selector)}"
        pick = pick_ordinal(candidates, ordinal, selector, width)
        return OrdinalMiss(how, candidates) if pick is None else Choice([pick], f"chose {how}")
    sups = [s for s in spatial if s in SUPERLATIVES]
    regions = [s for s in spatial if s in REGIONS]
    if sups:
        return _superlative(candidates, sups, regions, width)
    if regions:
        return _region(candidates, regions, plural, width)
    if colour is None:
        how = f"all {len(candidates)} (whole class)" if plural else "whole class"
        return Choice(candidates, how, whole_class=True)
    return _by_colour(candidates, colour, plural)


def _in_regions(candidates: list[Instance], regions: list[str], width: int) -> list[Instance] | RegionMiss:
    for region in regions:
        kept = region_filter(candidates, region, width)
        if not kept:
            return RegionMiss(region, candidates)
        candidates = kept
    return candidates


def _superlative(candidates: list[Instance], sups: list[str], regions: list[str], width: int) -> Choice | RegionMiss:
    kept = _in_regions(candidates, regions, width)
    if isinstance(kept, RegionMiss):
        return kept
    pick = pick_one(kept, sups[0], width)
    how = f"chose {sups[0]}" + (f" on the {regions[0]}" if regions else "")
    if sups[0] in ("nearest", "farthest") and pick.range_m is not None:
        how += f" ({pick.range_m:.1f} m)"
    notes = [f"ignored selector {', '.join(sups[1:])}"] if len(sups) > 1 else []
    return Choice([pick], how, notes=notes)


def _region(candidates: list[Instance], regions: list[str], plural: bool, width: int) -> Choice | RegionMiss:
    if not plural and len(candidates) > 1:
        extreme = "centre" if regions[0] == "middle" else regions[0] + "most"
        return Choice([pick_one(candidates, regions[0], width)], f"chose {extreme}")
    kept = _in_regions(candidates, regions, width)
    if isinstance(kept, RegionMiss):
        return kept
    return Choice(kept, f"{'all ' if plural else ''}{len(kept)} on the {regions[0]}")


def _by_colour(candidates: list[Instance], colour: str, plural: bool) -> Choice:
    """``candidates`` are sorted best colour match first."""
    if plural:
        return Choice(candidates, f"all {len(candidates)}")
    if len(candidates) == 1:
        return Choice(candidates, f"the {colour} one")
    return Choice([candidates[0]], f"chose the most {colour}")
