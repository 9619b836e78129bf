"""``QueryAnswer``, the result every query path returns, and how a query is quoted in messages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_MAX_QUOTED = 60


@dataclass
class QueryAnswer:
    """The service response as Python values.

    Attributes:
        found: something was selected.
        message: what was matched and how it was chosen, or why nothing was.
        matched_class: the class the phrase was grounded on ("" when none).
        score: grounding confidence 0..1 (1 exact/plural, 0.9 synonym, 0.8 spelling, cosine similarity,
            or the detector score for a detector answer).
        mask: HxW uint8, 255 = selected (frame size; 0x0 when there was no frame).
        roi: (x_offset, y_offset, width, height) pixels of the mask's bounding box; zeros when empty.
        pixel_count: number of selected pixels.
        instances: instances of the class in the frame (components of at least ``min_area`` pixels).
        selected: instances returned.
        match_kind: "exact", "plural", "synonym", "spelling", "similarity" or "none".
        mask_confidence: mean confidence (0..1) of the selected pixels when a confidence image was given.
        elapsed_ms: time spent answering, milliseconds.
    """

    found: bool
    message: str
    matched_class: str = ""
    score: float = 0.0
    mask: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint8))
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)
    pixel_count: int = 0
    instances: int = 0
    selected: int = 0
    match_kind: str = "none"
    mask_confidence: float | None = None
    elapsed_ms: float = 0.0


def quote(text: str) -> str:
    """The query as it appears in messages: one line, at most ~60 characters, in single quotes."""
    flat = " ".join(str(text).split())
    if len(flat) > _MAX_QUOTED:
        flat = flat[: _MAX_QUOTED - 3] + "..."
    return f"'{flat}'"
