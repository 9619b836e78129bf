"""Ordinal words ("the second bottle from the left") and ranking instances by a spatial selector.

An ordinal is 1-based from the start of a ranking (1 = first) or negative from its end
(-1 = last). Rankings order instances best first for a selector ("leftmost": left to
right); "from the left/right" make the selector "leftmost"/"rightmost".
"""

from __future__ import annotations

from collections.abc import Sequence

from seg_perception.query.instances import Instance, pick_one

ORDINAL_WORDS = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "fifth": 5,
    "5th": 5,
    "sixth": 6,
    "6th": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "last": -1,
    "penultimate": -2,
}
# Default ranking of an ordinal without a selector: reading order, left to right.
DEFAULT_RANKING = "leftmost"
_AS_RANKING = {"left": "leftmost", "right": "rightmost", "middle": "middle"}


def read_ordinal(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """(ordinal, words used) for an ordinal at ``words[i]`` ("second", "second to last", "second last"), else None."""
    k = ORDINAL_WORDS.get(words[i])
    if k is None:
        return None
    if k > 0 and words[i + 1 : i + 3] == ["to", "last"]:
        return -k, 3
    if k > 1 and words[i + 1 : i + 2] == ["last"]:
        return -k, 2
    return k, 1


def ordinal_text(k: int) -> str:
    """'second', 'last', 'second to last' ... for messages."""
    if k == -1:
        return "last"
    names = {v: w for w, v in ORDINAL_WORDS.items() if w.isalpha() and v > 0}
    if k < -1:
        return f"{names.get(-k, str(-k))} to last"
    return names.get(k, f"{k}th")


def ranking_selector(spatial: Sequence[str]) -> str:
    """The selector an ordinal counts along: the first spatial word (region words as their extreme)."""
    for s in spatial:
        return _AS_RANKING.get(s, s)
    return DEFAULT_RANKING


def ranking_text(selector: str) -> str:
    """'from the left', 'from the right', 'by largest' ... for messages."""
    return {"leftmost": "from the left", "rightmost": "from the right"}.get(selector, f"by {selector}")


def rank(items: Sequence[Instance], selector: str, width: int) -> list[Instance]:
    """``items`` best first for ``selector`` (the order ``pick_one`` would pick them in, one after another)."""
    left = list(items)
    out: list[Instance] = []
    while left:
        best = pick_one(left, selector, width)
        out.append(best)
        left.remove(best)
    return out


def pick_ordinal(items: Sequence[Instance], k: int, selector: str, width: int) -> Instance | None:
    """The ``k``-th instance (1-based, negative from the end) ranked by ``selector``; None when there are too few."""
    ranked = rank(items, selector, width)
    idx = k - 1 if k > 0 else len(ranked) + k
    return ranked[idx] if 0 <= idx < len(ranked) else None
