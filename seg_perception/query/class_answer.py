"""Answer a query grounded on a model class from one frame: instances, colour, ranges, selection, mask.

``answer_class`` runs a table of steps; each returns the message of a final "not found"
answer or None to go on, then ``selection.choose`` picks the instances and the mask is
rendered. Shapes: labels HxW class ids, rgb HxWx3 uint8, ranges HxW metres, confidence HxW.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from seg_perception.query.answer import QueryAnswer
from seg_perception.query.attributes import MIN_COLOUR_FRACTION, colour_scores, dominant_colour
from seg_perception.query.grounding import ParsedQuery
from seg_perception.query.instances import Instance, Instances, attach_ranges, find_instances
from seg_perception.query.selection import Choice, OrdinalMiss, RegionMiss, choose


@dataclass
class ClassQuery:
    """A query grounded on one model class, against one frame: the state the answering steps share."""

    parsed: ParsedQuery
    labels: np.ndarray  # HxW class ids
    rgb: np.ndarray | None  # as given (checked by _check_rgb when a colour is asked for)
    class_mask: np.ndarray  # HxW bool, pixels of the grounded class
    answer: QueryAnswer  # filled in as the steps go; found stays False until _render_answer
    head: str  # "'text' -> class (how)"
    notes: list[str]
    min_area: int
    plural: bool  # the phrase was plural or said "all"
    inst: Instances = field(default_factory=lambda: Instances(np.zeros((0, 0), np.int32), [], 0))  # set by _find
    candidates: list[Instance] = field(default_factory=list)  # narrowed by the steps
    count_txt: str = ""  # "2 instances, 1 red"


def answer_class(ask: ClassQuery, confidence: np.ndarray | None, ranges: np.ndarray | None) -> QueryAnswer:
    """The answer for ``ask``: found with a mask, or not found with a message saying why.

    Args:
        ask: the grounded query and its frame.
        confidence: optional HxW confidence (uint8 x255 or float 0..1) of the labels.
        ranges: optional HxW ranges in metres for nearest/farthest.
    """
    for step in _STEPS:
        miss = step(ask)
        if miss is not None:
            ask.answer.message = miss
            return ask.answer
    _use_ranges(ask, ranges)
    colour = ask.parsed.colours[0] if ask.parsed.colours else None
    choice = choose(ask.candidates, ask.parsed.spatial, colour, ask.plural, ask.labels.shape[1], ask.parsed.ordinal)
    if isinstance(choice, OrdinalMiss):
        name = ask.answer.matched_class
        ask.answer.message = f"no {choice.how} {name}: only {len(choice.candidates)} in the current frame ({ask.head})"
        return ask.answer
    if isinstance(choice, RegionMiss):
        ask.answer.message = _region_miss(ask, choice)
        return ask.answer
    return _render_answer(ask, choice, confidence)


def _check_rgb(ask: ClassQuery) -> str | None:
    """A colour needs the HxWx3 RGB frame; keeps it as an array in ``ask.rgb``."""
    if ask.rgb is not None:
        ask.rgb = np.asarray(ask.rgb)
    if not ask.parsed.colours:
        return None
    h, w = ask.labels.shape
    rgb = ask.rgb
    if rgb is None or rgb.shape[:2] != (h, w) or rgb.ndim != 3 or rgb.shape[2] < 3:
        got = "none" if rgb is None else "x".join(str(d) for d in rgb.shape)
        return f"{ask.head}; colour '{ask.parsed.colours[0]}' needs the {h}x{w}x3 RGB frame (got {got})"
    return None


def _find(ask: ClassQuery) -> str | None:
    """Instances of the class (components of at least ``min_area`` pixels)."""
    name = ask.answer.matched_class
    total = int(np.count_nonzero(ask.class_mask))
    if total == 0:
        return f"no {name} in the current frame ({ask.head})"
    ask.inst = find_instances(ask.class_mask, ask.min_area)
    ask.candidates = list(ask.inst.items)
    ask.answer.instances = len(ask.candidates)
    if not ask.candidates:
        return f"no {name} in the current frame (only {total} scattered pixels; {ask.head})"
    ask.count_txt = f"{len(ask.candidates)} instance{'s' if len(ask.candidates) != 1 else ''}"
    return None


def _filter_colour(ask: ClassQuery) -> str | None:
    """Keep the instances of the asked colour, best match first."""
    if not ask.parsed.colours:
        return None
    colour = ask.parsed.colours[0]
    rgb3 = np.ascontiguousarray(np.asarray(ask.rgb)[..., :3], dtype=np.uint8)
    for c in ask.candidates:
        x, y, bw, bh = c.bbox
        sel = ask.inst.components[y : y + bh, x : x + bw] == c.label
        c.colours = colour_scores(rgb3[y : y + bh, x : x + bw][sel])
    matching = sorted(
        (c for c in ask.candidates if (c.colours or {}).get(colour, 0.0) >= MIN_COLOUR_FRACTION),
        key=lambda c: -(c.colours or {}).get(colour, 0.0),
    )
    if not matching:
        seen = ", ".join(dominant_colour(c.colours or {}) for c in ask.candidates)
        return f"no {colour} {ask.answer.matched_class} in the current frame ({ask.count_txt}: {seen}; {ask.head})"
    ask.count_txt += f", {len(matching)} {colour}"
    ask.candidates = matching
    return None


_STEPS: tuple[Callable[[ClassQuery], str | None], ...] = (_check_rgb, _find, _filter_colour)


def _use_ranges(ask: ClassQuery, ranges: np.ndarray | None) -> None:
    """Attach per-instance ranges for nearest/farthest when a matching HxW range image is given."""
    if ranges is None or not any(s in ("nearest", "farthest") for s in ask.parsed.spatial):
        return
    r = np.asarray(ranges)
    h, w = ask.labels.shape
    if r.shape[:2] == (h, w):
        attach_ranges(ask.inst, r)
    else:
        ask.notes.append(f"ranges ignored (shape {r.shape} is not {h}x{w})")


def _region_miss(ask: ClassQuery, miss: RegionMiss) -> str:
    where = {"left": "on the left", "right": "on the right", "middle": "in the middle"}[miss.region]
    colour = f"{ask.parsed.colours[0]} " if ask.parsed.colours else ""
    w = ask.labels.shape[1]
    others = ", ".join(f"x={c.centroid[0]:.0f}" for c in miss.candidates)
    return (
        f"no {colour}{ask.answer.matched_class} {where} in the current frame "
        f"({len(miss.candidates)} elsewhere at {others} of {w} px; {ask.head})"
    )


def _render_answer(ask: ClassQuery, choice: Choice, confidence: np.ndarray | None) -> QueryAnswer:
    """The found answer: mask, roi, pixel count, mean confidence and message."""
    mask, roi, count = _render(ask.inst, choice.chosen, ask.class_mask if choice.whole_class else None)
    ans = ask.answer
    ans.found = True
    ans.mask, ans.roi, ans.pixel_count = mask, roi, count
    ans.selected = len(choice.chosen)
    h, w = ask.labels.shape
    if confidence is not None:
        conf = np.asarray(confidence)
        if conf.shape[:2] == (h, w) and count:
            scale = 1.0 if conf.dtype.kind == "f" else 1.0 / 255.0
            ans.mask_confidence = float(np.mean(conf.reshape(h, w)[mask > 0], dtype=np.float64) * scale)
    notes = ask.notes + choice.notes
    tail = f"; {'; '.join(notes)}" if notes else ""
    ans.message = f"{ask.head}; {ask.count_txt}; {choice.how}; {count} px{tail}"
    return ans


def _render(
    inst: Instances, chosen: list[Instance], whole: np.ndarray | None
) -> tuple[np.ndarray, tuple[int, int, int, int], int]:
    """(HxW uint8 mask 255 = selected, roi (x, y, w, h), pixel count) of the chosen instances or ``whole``."""
    if whole is not None:
        mask = whole.astype(np.uint8) * 255
    else:
        lut = np.zeros(int(inst.components.max()) + 1, np.uint8)
        for c in chosen:
            lut[c.label] = 255
        mask = lut[inst.components]
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return mask, (0, 0, 0, 0), 0
    roi = (int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))
    return mask, roi, int(np.count_nonzero(mask))
