"""Queries answered by the object detector for phrases the segmentation model has no class for.

"cup", "the red mug", "the second bottle from the left" ground onto the detector's classes
(lexicon, then sentence embeddings when loaded). Each detection's box is refined to a pixel
mask (``detection.refine``); ``score`` is the detector score times the mask quality. The
detector loads from the model cache on first use; when it is not installed the answer says
so and how to fetch it. See docs/query.md.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from seg_perception.detection.base import Detection
from seg_perception.detection.boxes import nms
from seg_perception.detection.refine import RefinedMask, refine_box
from seg_perception.errors import SegPerceptionError
from seg_perception.query.answer import QueryAnswer
from seg_perception.query.attributes import colour_scores, dominant_colour
from seg_perception.query.embeddings import SentenceEmbedder
from seg_perception.query.grounding import SIMILARITY_THRESHOLD, ClassGrounder, Grounding, ParsedQuery
from seg_perception.query.instances import REGIONS, Instance, pick_one
from seg_perception.query.ordinals import ordinal_text, pick_ordinal, ranking_selector, ranking_text

DETECTOR_CLASSES = (
    "Bicycle, Boot, Laptop, Person, Chair, Cattle, Desk, Cat, Computer mouse, Computer monitor, Box, Mug, "
    "Coffee cup, Stationary bicycle, Table, Bottle, High heels, Vehicle, Footwear, Dog, Book, Camera, Car"
).split(", ")
# Classes a person does not tell apart: a query for one accepts both.
_SAME = {"Coffee cup": {"Coffee cup", "Mug"}, "Mug": {"Coffee cup", "Mug"}}
MIN_SCORE = 0.3
SAME_OBJECT_IOU = 0.5  # boxes of two accepted classes overlapping more than this are one object
# A detected object's mask holds its contents too (coffee in a cup): half the segmentation's colour fraction.
MIN_COLOUR_FRACTION = 0.15
_EXTREME = {"left": "leftmost", "right": "rightmost", "middle": "middle"}


class DetectorQueries:
    """Grounds phrases on the detector's classes and answers them from refined detections.

    Args:
        detector: a Detector, None (disabled), or "auto" (load ``objectron`` from the cache on first use).
        embedder: the engine's SentenceEmbedder (shared), or None for lexicon-only grounding.
        threshold, margin: embedding decision rule (the engine's).
    """

    def __init__(
        self,
        detector: Any = "auto",
        embedder: SentenceEmbedder | None = None,
        threshold: float = SIMILARITY_THRESHOLD,
        margin: float | None = None,
    ) -> None:
        extra = {} if margin is None else {"margin": margin}
        self._grounder = ClassGrounder(DETECTOR_CLASSES, embedder, threshold=threshold, **extra)
        self._detector = None if detector in (None, "auto") else detector
        self._auto = detector == "auto"
        self._error = "" if detector is not None else "the object detector is disabled"
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when the detector was disabled (None): phrases the model lacks then answer as before."""
        return self._detector is not None or self._auto

    def prepare_embeddings(self) -> None:
        """Embed the detector's class names (ModelError when the embedder cannot load)."""
        self._grounder.prepare_embeddings()

    def ground(self, head: Sequence[str]) -> Grounding:
        """Ground head words on the detector's classes (kind "none" when disabled)."""
        if not self.enabled:
            return Grounding(-1, "", 0.0, "none", " ".join(head))
        return self._grounder.ground(head)

    def _get(self) -> Any:
        with self._lock:
            if self._detector is None and self._auto and not self._error:
                from seg_perception.detection import load_detector

                try:
                    self._detector = load_detector("objectron")
                except SegPerceptionError as err:
                    self._error = str(err)
            return self._detector

    def answer(
        self, parsed: ParsedQuery, quoted: str, rgb: np.ndarray | None, h: int, w: int, g: Grounding, how: str = ""
    ) -> QueryAnswer:
        """The answer (HxW uint8 mask) for a phrase grounded on detector class ``g``; ``how`` says how it grounded."""
        names = " or ".join(sorted(_SAME.get(g.class_name, {g.class_name})))
        head = f"{quoted} -> {names} (detector class, {how or g.kind})"
        base = QueryAnswer(False, "", g.class_name, g.score, np.zeros((h, w), np.uint8), match_kind=g.kind)
        det = self._get()
        if det is None:
            base.message = f"{head}; detector not available: {self._error}"
            return base
        if rgb is None or np.asarray(rgb).shape[:2] != (h, w) or np.asarray(rgb).ndim != 3:
            base.message = f"{head}; the detector needs the {h}x{w}x3 RGB frame"
            return base
        rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3], dtype=np.uint8)
        try:
            dets = det.detect(rgb, MIN_SCORE)
        except SegPerceptionError as err:
            base.message = f"{head}; {err}"
            return base
        wanted = _SAME.get(g.class_name, {g.class_name})
        dets = _one_per_object([d for d in dets if d.class_name in wanted])
        notes = [f"'{' '.join(parsed.context)}' not used (relations are not interpreted)"] if parsed.context else []
        if not dets:
            base.message = f"no {g.class_name} detected (score >= {MIN_SCORE}; {head})"
            return base
        base.instances = len(dets)
        masks = [refine_box(rgb, d.box) for d in dets]
        items = [_instance(i, m) for i, m in enumerate(masks)]
        scores = [d.score * m.quality for d, m in zip(dets, masks, strict=True)]
        if parsed.colours:
            colour = parsed.colours[0]
            for it, m in zip(items, masks, strict=True):
                it.colours = colour_scores(rgb[m.mask])
            keep = [it for it in items if (it.colours or {}).get(colour, 0.0) >= MIN_COLOUR_FRACTION]
            if not keep:
                seen = ", ".join(_colours_seen(it.colours or {}) for it in items)
                base.message = f"no {colour} {g.class_name} in the current frame ({len(items)} seen: {seen}; {head})"
                return base
            items = sorted(keep, key=lambda it: -(it.colours or {}).get(colour, 0.0))
        chosen, how_chosen = _select(parsed, items, scores, w, g.plural)
        if not chosen:
            base.message = f"{how_chosen} ({len(items)} {g.class_name} detected; {head})"
            return base
        mask = np.zeros((h, w), bool)
        for it in chosen:
            mask |= masks[it.label].mask
        _fill(base, mask, chosen, dets, masks)
        tail = f"; {'; '.join(notes)}" if notes else ""
        best = chosen[0].label
        quality = f"score {base.score:.2f} = detector {dets[best].score:.2f} x mask quality {masks[best].quality:.2f}"
        base.message = f"{head}; {len(dets)} detected; {how_chosen} ({quality}); {base.pixel_count} px{tail}"
        return base


def _colours_seen(scores: dict[str, float]) -> str:
    """Every colour an instance matches, most first ("orange/white/red": a red cup in warm light)."""
    named = sorted((c for c, v in scores.items() if v >= MIN_COLOUR_FRACTION), key=lambda c: -scores[c])
    return "/".join(named) or dominant_colour(scores)


def _one_per_object(dets: list[Detection]) -> list[Detection]:
    """Best-score-first detections with cross-class duplicates dropped.

    The detector suppresses overlaps within a class only; one cup often comes back as both
    "Coffee cup" and "Mug", which a query for either must count once (IoU > ``SAME_OBJECT_IOU``).
    """
    if len(dets) < 2:
        return dets
    corners = np.array([(y, x, y + bh, x + bw) for x, y, bw, bh in (d.box for d in dets)], np.float64)
    keep = nms(corners, np.array([d.score for d in dets]), SAME_OBJECT_IOU)
    return [dets[int(i)] for i in keep]


def _instance(label: int, refined: RefinedMask) -> Instance:
    """An Instance (label = index of the detection) from a refined HxW mask."""
    ys, xs = np.nonzero(refined.mask)
    if xs.size == 0:
        return Instance(label, 0, (0, 0, 0, 0), (0.0, 0.0))
    bbox = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    return Instance(label, int(xs.size), bbox, (float(xs.mean()), float(ys.mean())))


def _select(
    parsed: ParsedQuery, items: list[Instance], scores: list[float], width: int, plural: bool
) -> tuple[list[Instance], str]:
    """(chosen instances, how) or ([], why none) for the query's ordinal, selector, plural or best score."""
    spatial = parsed.spatial[0] if parsed.spatial else ""
    if parsed.ordinal is not None:
        selector = ranking_selector(parsed.spatial)
        pick = pick_ordinal(items, parsed.ordinal, selector, width)
        along = ranking_text(selector)
        if pick is None:
            return [], f"no {ordinal_text(parsed.ordinal)} one {along}: only {len(items)}"
        return [pick], f"chose {ordinal_text(parsed.ordinal)} {along}"
    if spatial:
        selector = _EXTREME.get(spatial, spatial) if spatial in REGIONS else spatial
        return [pick_one(items, selector, width)], f"chose {selector}"
    if (plural or parsed.want_all) and len(items) > 1:
        return list(items), f"all {len(items)}"
    if parsed.colours:
        return [items[0]], f"chose the most {parsed.colours[0]}"
    return [max(items, key=lambda it: scores[it.label])], "chose highest score"


def _fill(
    base: QueryAnswer, mask: np.ndarray, chosen: list[Instance], dets: list[Any], masks: list[RefinedMask]
) -> None:
    """Set found, mask (uint8 255), roi (the mask's bounding box), pixel count, score and matched class."""
    ys, xs = np.nonzero(mask)
    base.found, base.selected = True, len(chosen)
    base.mask = mask.astype(np.uint8) * 255
    base.pixel_count = int(xs.size)
    if xs.size:
        base.roi = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    best = chosen[0].label
    base.score = dets[best].score * masks[best].quality
    base.mask_confidence = masks[best].quality
    base.matched_class = dets[best].class_name
