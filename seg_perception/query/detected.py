"""Queries answered by the object detector for phrases the segmentation model has no class for.

"cup", "the red mug", "the bottle on the left" ground onto the detector's classes (the
lexicon maps cup/teacup/coffee cup onto Coffee cup and Mug, shoe/sneaker onto Footwear,
...). The detector is loaded from the model cache on first use; when it is not installed
the answer says so and how to fetch it. Masks are the detection box (no refinement yet).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from seg_perception.errors import SegPerceptionError
from seg_perception.query.answer import QueryAnswer
from seg_perception.query.attributes import MIN_COLOUR_FRACTION, colour_scores, dominant_colour
from seg_perception.query.grounding import ClassGrounder, ParsedQuery

DETECTOR_CLASSES = (
    "Bicycle, Boot, Laptop, Person, Chair, Cattle, Desk, Cat, Computer mouse, Computer monitor, Box, Mug, "
    "Coffee cup, Stationary bicycle, Table, Bottle, High heels, Vehicle, Footwear, Dog, Book, Camera, Car"
).split(", ")
# Classes a person does not tell apart: a query for one accepts both.
_SAME = {"Coffee cup": {"Coffee cup", "Mug"}, "Mug": {"Coffee cup", "Mug"}}
MIN_SCORE = 0.3


class DetectorQueries:
    """Grounds phrases on the detector's classes and answers them from detections.

    Args:
        detector: a Detector, None (disabled), or "auto" (load ``objectron`` from the cache on first use).
    """

    def __init__(self, detector: Any = "auto") -> None:
        self._grounder = ClassGrounder(DETECTOR_CLASSES)
        self._detector = None if detector in (None, "auto") else detector
        self._auto = detector == "auto"
        self._error = "" if detector is not None else "the object detector is disabled"
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._detector is None and self._auto and not self._error:
                from seg_perception.detection import load_detector

                try:
                    self._detector = load_detector("objectron")
                except SegPerceptionError as err:
                    self._error = str(err)
            return self._detector

    def answer(self, parsed: ParsedQuery, quoted: str, rgb: np.ndarray | None, h: int, w: int) -> QueryAnswer | None:
        """A QueryAnswer (HxW mask) when the head grounds on a detector class, else None (also when disabled)."""
        if self._detector is None and not self._auto:
            return None  # disabled: phrases the segmentation model lacks answer as before
        g = self._grounder.ground(parsed.head)
        if not g.found:
            return None
        empty = np.zeros((h, w), np.uint8)
        head = f"{quoted} -> {' or '.join(sorted(_SAME.get(g.class_name, {g.class_name})))} (detector class, {g.kind})"
        base = QueryAnswer(False, "", g.class_name, g.score, empty, match_kind=g.kind)
        det = self._get()
        if det is None:
            base.message = f"{head}; detector not available: {self._error}"
            return base
        if rgb is None or np.asarray(rgb).shape[:2] != (h, w):
            base.message = f"{head}; the detector needs the {h}x{w}x3 RGB frame"
            return base
        rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3], dtype=np.uint8)
        try:
            dets = det.detect(rgb, MIN_SCORE)
        except SegPerceptionError as err:
            base.message = f"{head}; {err}"
            return base
        wanted = _SAME.get(g.class_name, {g.class_name})
        cands = [d for d in dets if d.class_name in wanted]
        notes = [f"'{' '.join(parsed.context)}' not used (relations are not interpreted)"] if parsed.context else []
        if not cands:
            base.message = f"no {g.class_name} detected (score >= {MIN_SCORE}; {head})"
            return base
        base.instances = len(cands)
        boxes = [_int_box(d.box, w, h) for d in cands]
        if parsed.colours:
            colour = parsed.colours[0]
            scores = [colour_scores(rgb[y : y + bh, x : x + bw].reshape(-1, 3)) for x, y, bw, bh in boxes]
            keep = [i for i, s in enumerate(scores) if s.get(colour, 0.0) >= MIN_COLOUR_FRACTION]
            if not keep:
                seen = ", ".join(dominant_colour(s) for s in scores)
                base.message = f"no {colour} {g.class_name} in the current frame ({len(cands)} seen: {seen}; {head})"
                return base
            cands, boxes = [cands[i] for i in keep], [boxes[i] for i in keep]
        order = list(range(len(cands)))
        spatial = parsed.spatial[0] if parsed.spatial else ""
        cx = [x + bw / 2 for x, _, bw, _ in boxes]
        if spatial in ("left", "leftmost"):
            order.sort(key=lambda i: cx[i])
        elif spatial in ("right", "rightmost"):
            order.sort(key=lambda i: -cx[i])
        elif spatial in ("largest", "biggest"):
            order.sort(key=lambda i: -boxes[i][2] * boxes[i][3])
        pick = order[0]
        x, y, bw, bh = boxes[pick]
        base.mask[y : y + bh, x : x + bw] = 255
        base.found, base.selected, base.roi = True, 1, (x, y, bw, bh)
        base.pixel_count = bw * bh
        base.score = cands[pick].score
        base.matched_class = cands[pick].class_name
        how = f"chose {spatial}" if spatial else "chose highest score"
        tail = f"; {'; '.join(notes)}" if notes else ""
        base.message = f"{head}; {len(cands)} detected; {how} (score {cands[pick].score:.2f}); mask = box{tail}"
        return base


def _int_box(box: tuple[float, float, float, float], w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    x1, y1 = min(w, int(round(box[0] + box[2]))), min(h, int(round(box[1] + box[3])))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)
