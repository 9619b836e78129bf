"""QueryEngine: a phrase plus a segmented frame -> the mask of what the phrase names.

This is the ROS-free core of the ``~/segment_query`` service. ``QueryEngine.answer``
never raises for any query text or frame content: every failure becomes
``found=False`` with a message a person can act on.

Conventions: images are HxWx3 uint8 RGB; labels are HxW integer class ids (index
into the model's class names; ids outside the class list, e.g. 255, are unknown);
confidence is HxW uint8 (softmax probability x 255); ranges are HxW float metres
(NaN/inf/<= 0 unknown). The answer's mask is HxW uint8 with 255 = selected, the roi
is (x, y, width, height) in pixels.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seg_perception.errors import ConfigError, ModelError
from seg_perception.query.attributes import MIN_COLOUR_FRACTION, colour_scores, dominant_colour
from seg_perception.query.detected import DetectorQueries
from seg_perception.query.embeddings import SentenceEmbedder
from seg_perception.query.grounding import (
    ANCHOR_MARGIN,
    SIMILARITY_THRESHOLD,
    ClassGrounder,
    Grounding,
    ParsedQuery,
)
from seg_perception.query.instances import (
    REGIONS,
    SUPERLATIVES,
    Instance,
    Instances,
    attach_ranges,
    find_instances,
    pick_one,
    region_filter,
)
from seg_perception.query.text import MAX_QUERY_CHARS, has_latin_letter

_LOG = logging.getLogger(__name__)

_KIND_TEXT = {"exact": "class name", "plural": "plural", "synonym": "synonym", "spelling": "spelling"}
_MAX_CLASSES_LISTED = 40
_MAX_QUOTED = 60


@dataclass
class QueryAnswer:
    """The service response as Python values.

    Attributes:
        found: something was selected.
        message: what was matched and how it was chosen, or why nothing was.
        matched_class: the model class the phrase was grounded on ("" when none).
        score: grounding confidence 0..1 (1 exact/plural, 0.9 synonym, 0.8 spelling, cosine similarity).
        mask: HxW uint8, 255 = selected (frame size; 0x0 when there was no frame).
        roi: (x_offset, y_offset, width, height) pixels of the mask's bounding box; zeros when empty.
        pixel_count: number of selected pixels.
        instances: instances of the class in the frame (components of at least ``min_area`` pixels).
        selected: instances returned (0 for a whole-class answer of a surface class such as road).
        match_kind: "exact", "plural", "synonym", "spelling", "similarity" or "none".
        mask_confidence: mean confidence (0..1) of the selected pixels when a confidence image was given.
        elapsed_ms: time spent in ``answer``.
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


def _lower_thread_priority() -> None:
    """Run a background model load at the lowest CPU priority so it never starves the image pipeline.

    On Linux the nice value is per thread and inherited by threads this one starts
    (tokenizer, torch); elsewhere this is a no-op.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


def _quote(text: str) -> str:
    """The query as it appears in messages: single line, at most ~60 characters."""
    flat = " ".join(str(text).split())
    if len(flat) > _MAX_QUOTED:
        flat = flat[: _MAX_QUOTED - 3] + "..."
    return f"'{flat}'"


class QueryEngine:
    """Grounds phrases on a model's classes and selects instances in segmented frames.

    Args:
        class_names: the model's class names; index = class id in the label image.
        use_embeddings: "auto" (use the bundled all-MiniLM-L6-v2 if it loads, else the lexicon),
            True / "required" / "on" (require it; ModelError if it cannot load), False / "disabled" /
            "off" (lexicon only), or a path to a sentence-transformers model folder (required).
        detector: object detector for phrases the model has no class for ("cup"): "auto" (load from the
            model cache on first use), None (off) or a ``seg_perception.detection.Detector``.
        background: load the embedding model in a background thread; queries use the lexicon until
            it is ready (``embedding_status`` says "loading"). Load failures are then reported in
            ``embedding_status`` instead of raised.
        threshold, margin: embedding decision rule (defaults: calibrated constants, see docs/query.md).
        min_area: instances smaller than this (pixels) are noise; None = max(8, 1e-4 x frame pixels).
        device: torch device for the embedding model.
        torch_threads: process-wide torch thread count set when the embedding model loads (None: leave
            it); 1 is best for the node unless the segmentation backend is torch on CPU (see embeddings).
        on_ready: called once with the final ``embedding_status`` when a background load ends (either
            way), e.g. the node's logger; exceptions it raises are logged and ignored.

    Raises:
        ConfigError: ``class_names`` is empty or ``use_embeddings`` is not understood.
        ModelError: embeddings were required (True or a path, no background) and cannot load.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        use_embeddings: bool | str = "auto",
        *,
        background: bool = False,
        threshold: float | None = None,
        margin: float | None = None,
        min_area: int | None = None,
        device: str = "cpu",
        torch_threads: int | None = None,
        on_ready: Callable[[str], None] | None = None,
        detector: object = "auto",
    ) -> None:
        names = [str(n) for n in class_names] if class_names is not None else []
        if not names:
            raise ConfigError("QueryEngine needs the model's class names (got none)")
        self.class_names = names
        self.min_area = None if min_area is None else max(1, int(min_area))
        mode, model_path = self._embedding_mode(use_embeddings)
        embedder = SentenceEmbedder(model_path, device=device, torch_threads=torch_threads) if mode != "off" else None
        self._grounder = ClassGrounder(
            names,
            embedder,
            threshold=SIMILARITY_THRESHOLD if threshold is None else float(threshold),
            margin=ANCHOR_MARGIN if margin is None else float(margin),
        )
        self.detector_queries = DetectorQueries(detector)
        self._status_lock = threading.Lock()
        self._ready = threading.Event()
        self._loader: threading.Thread | None = None
        self._on_ready = on_ready if background else None
        if mode == "off":
            self._status = "disabled by configuration (use_embeddings=False); grounding uses names and the lexicon"
            self._ready.set()
        elif background:
            self._status = "loading sentence embeddings in the background; lexicon only until ready"
            self._loader = threading.Thread(target=self._load, args=(False,), name="query-embeddings", daemon=True)
            self._loader.start()
        else:
            self._load(raise_errors=(mode == "required"))

    @staticmethod
    def _embedding_mode(use_embeddings: bool | str) -> tuple[str, str | None]:
        if isinstance(use_embeddings, bool):
            return ("required" if use_embeddings else "off"), None
        if isinstance(use_embeddings, (str, Path)):
            value = str(use_embeddings).strip()
            low = value.lower()
            if low == "auto":
                return "auto", None
            if low in ("false", "off", "none", "no", "0", "", "disabled"):
                return "off", None
            if low in ("true", "on", "yes", "1", "required"):
                return "required", None
            return "required", value
        raise ConfigError(f"use_embeddings must be a bool, 'auto' or a model path, got {use_embeddings!r}")

    def _load(self, raise_errors: bool) -> None:
        t0 = time.perf_counter()
        if not raise_errors:
            _lower_thread_priority()
        try:
            self._grounder.prepare_embeddings()
        except ModelError as err:
            with self._status_lock:
                self._status = f"unavailable ({err}); grounding uses names and the lexicon only"
            self._done()
            if raise_errors:
                raise
            return
        except Exception as err:
            _LOG.exception("loading sentence embeddings failed")
            with self._status_lock:
                self._status = f"unavailable ({type(err).__name__}: {err}); grounding uses names and the lexicon only"
            self._done()
            if raise_errors:
                raise ModelError(f"loading sentence embeddings failed: {err}") from err
            return
        g = self._grounder
        path = g._embedder.model_path if g._embedder is not None else None
        with self._status_lock:
            self._status = (
                f"active: all-MiniLM-L6-v2 sentence embeddings from {path}, {len(g.class_names)} classes embedded "
                f"in {time.perf_counter() - t0:.1f} s; accept similarity >= {g.threshold:.2f} and >= "
                f"best non-class word + {g.margin:.2f}"
            )
        self._done()

    def _done(self) -> None:
        self._ready.set()
        if self._on_ready is not None:
            try:
                self._on_ready(self.embedding_status)
            except Exception:  # noqa: BLE001 - a logging callback must not kill the loader thread
                _LOG.exception("on_ready callback failed")

    # ----------------------------------------------------------------- status
    @property
    def embedding_status(self) -> str:
        """One line for the node's start-up log: whether embeddings are active, loading, disabled or why not."""
        with self._status_lock:
            return self._status

    @property
    def embeddings_active(self) -> bool:
        """True when phrases unknown to the lexicon are matched by sentence embeddings."""
        return self._grounder.embeddings_ready

    @property
    def threshold(self) -> float:
        """Minimum cosine similarity of an embedding match."""
        return self._grounder.threshold

    def wait_for_embeddings(self, timeout: float | None = None) -> bool:
        """Block until a background load finished (either way); True when embeddings are active."""
        self._ready.wait(timeout)
        return self.embeddings_active

    def ground(self, text: str) -> tuple[ParsedQuery, Grounding]:
        """Parse and ground ``text`` without a frame (for logs, tests and tools)."""
        parsed = self._grounder.parse(text)
        return parsed, self._grounder.ground(parsed.head)

    # ----------------------------------------------------------------- answers
    def answer_no_frame(self, text: object) -> QueryAnswer:
        """Answer when no frame has been segmented yet (still says whether the phrase is understood)."""
        t0 = time.perf_counter()
        try:
            early = self._check_text(text)
            if early is not None:
                return self._finish(early, t0)
            parsed, g = self.ground(str(text))
            if not g.found:
                return self._finish(self._not_grounded(str(text), parsed, g), t0)
            msg = f"no frame received yet ({_quote(str(text))} -> {g.class_name}; ask again once images arrive)"
            return self._finish(QueryAnswer(False, msg, g.class_name, g.score, match_kind=g.kind), t0)
        except Exception as err:  # noqa: BLE001 - the service must answer, whatever happened
            _LOG.exception("query %r failed", text)
            return self._finish(QueryAnswer(False, f"no frame received yet (internal error: {err})"), t0)

    def answer_frame(self, text: object, frame: object | None, ranges: np.ndarray | None = None) -> QueryAnswer:
        """Answer from a pipeline ``Frame`` (attributes rgb, labels, confidence) or ``answer_no_frame`` for None."""
        if frame is None:
            return self.answer_no_frame(text)
        return self.answer(
            text,
            getattr(frame, "rgb", None),
            getattr(frame, "labels", None),
            getattr(frame, "confidence", None),
            ranges,
        )

    def answer(
        self,
        text: object,
        rgb: np.ndarray | None,
        labels: np.ndarray | None,
        confidence: np.ndarray | None = None,
        ranges: np.ndarray | None = None,
    ) -> QueryAnswer:
        """Select what ``text`` names in one segmented frame.

        Args:
            text: the query phrase.
            rgb: HxWx3 uint8 RGB image (needed for colour words; may be None otherwise).
            labels: HxW integer class ids; None means no frame yet.
            confidence: optional HxW uint8 confidence (x255) of the labels.
            ranges: optional HxW float ranges in metres for nearest/farthest.

        Returns:
            A QueryAnswer; never raises.
        """
        t0 = time.perf_counter()
        try:
            if labels is None:
                return self.answer_no_frame(text)
            return self._finish(self._answer(text, rgb, labels, confidence, ranges), t0)
        except Exception as err:  # noqa: BLE001 - the service must answer, whatever happened
            _LOG.exception("query %r failed", text)
            shape = getattr(labels, "shape", (0, 0))
            mask = np.zeros(shape[:2], np.uint8) if len(shape) >= 2 else np.zeros((0, 0), np.uint8)
            msg = f"internal error while answering {_quote(str(text))}: {err}"
            return self._finish(QueryAnswer(False, msg, mask=mask), t0)

    # ----------------------------------------------------------------- internals
    @staticmethod
    def _finish(ans: QueryAnswer, t0: float) -> QueryAnswer:
        ans.elapsed_ms = (time.perf_counter() - t0) * 1000.0
        return ans

    def _class_list(self) -> str:
        names = self.class_names
        shown = ", ".join(names[:_MAX_CLASSES_LISTED])
        more = f", ... ({len(names)} classes)" if len(names) > _MAX_CLASSES_LISTED else ""
        return f"classes: {shown}{more}"

    def _check_text(self, text: object) -> QueryAnswer | None:
        if not isinstance(text, str):
            return QueryAnswer(False, f"query must be text, got {type(text).__name__}; {self._class_list()}")
        if not text.strip():
            example = self.class_names[0]
            return QueryAnswer(False, f"empty query; name an object, e.g. '{example}'; {self._class_list()}")
        if len(text) > MAX_QUERY_CHARS:
            return QueryAnswer(
                False, f"query too long ({len(text)} characters, at most {MAX_QUERY_CHARS}); {self._class_list()}"
            )
        return None

    def _not_grounded(self, text: str, parsed: ParsedQuery, g: Grounding) -> QueryAnswer:
        if not parsed.head:
            if not has_latin_letter(text):
                msg = f"{_quote(text)} has no words this model's class names can match; {self._class_list()}"
            else:
                msg = f"{_quote(text)} names no object; {self._class_list()}"
            return QueryAnswer(False, msg)
        phrase = " ".join(parsed.head)
        if not has_latin_letter(phrase):
            return QueryAnswer(False, f"{_quote(phrase)} is not a class of this model; {self._class_list()}")
        closest = ""
        if g.closest is not None:
            label = "similarity" if g.closest_kind == "similarity" else "spelling"
            closest = f" (closest: {g.closest[0]}, {label} {g.closest[1]:.2f})"
        return QueryAnswer(False, f"{_quote(phrase)} is not a class of this model{closest}; {self._class_list()}")

    def _answer(
        self,
        text: object,
        rgb: np.ndarray | None,
        labels: np.ndarray,
        confidence: np.ndarray | None,
        ranges: np.ndarray | None,
    ) -> QueryAnswer:
        labels = np.asarray(labels)
        if labels.ndim == 3 and labels.shape[2] == 1:
            labels = labels[..., 0]
        if labels.ndim != 2 or labels.size == 0:
            return QueryAnswer(False, f"frame is unusable: labels have shape {labels.shape}, expected HxW")
        h, w = labels.shape
        empty = np.zeros((h, w), np.uint8)
        early = self._check_text(text)
        if early is not None:
            early.mask = empty
            return early
        text = str(text)
        parsed, g = self.ground(text)
        if not g.found or g.kind == "similarity":
            via_detector = self.detector_queries.answer(parsed, _quote(text), rgb, h, w)
            if via_detector is not None:
                return via_detector
        if not g.found:
            ans = self._not_grounded(text, parsed, g)
            ans.mask = empty
            return ans
        base = QueryAnswer(False, "", g.class_name, g.score, empty, match_kind=g.kind)
        how = f"similarity {g.score:.2f}" if g.kind == "similarity" else _KIND_TEXT[g.kind]
        head = f"{_quote(text)} -> {g.class_name} ({how})"
        notes: list[str] = []
        if parsed.context:
            notes.append(f"ignored: {' '.join(parsed.context)}")
        if len(parsed.colours) > 1:
            notes.append(f"used colour {parsed.colours[0]} only")

        rgb_arr = None if rgb is None else np.asarray(rgb)
        if parsed.colours:
            if rgb_arr is None or rgb_arr.shape[:2] != (h, w) or rgb_arr.ndim != 3 or rgb_arr.shape[2] < 3:
                got = "none" if rgb_arr is None else "x".join(str(d) for d in rgb_arr.shape)
                base.message = f"{head}; colour '{parsed.colours[0]}' needs the {h}x{w}x3 RGB frame (got {got})"
                return base

        min_area = self.min_area if self.min_area is not None else max(8, int(round(h * w * 1e-4)))
        cls_mask = labels == g.class_index
        total = int(np.count_nonzero(cls_mask))
        name = g.class_name
        if total == 0:
            base.message = f"no {name} in the current frame ({head})"
            return base
        inst = find_instances(cls_mask, min_area)
        base.instances = len(inst.items)
        if not inst.items:
            base.message = f"no {name} in the current frame (only {total} scattered pixels; {head})"
            return base

        plural = g.plural or parsed.want_all
        sups = [s for s in parsed.spatial if s in SUPERLATIVES]
        regions = [s for s in parsed.spatial if s in REGIONS]
        cands = list(inst.items)
        count_txt = f"{len(cands)} instance{'s' if len(cands) != 1 else ''}"
        if parsed.colours:
            colour = parsed.colours[0]
            rgb3 = np.ascontiguousarray(rgb_arr[..., :3], dtype=np.uint8)  # type: ignore[index]
            for c in cands:
                x, y, bw, bh = c.bbox
                sel = inst.components[y : y + bh, x : x + bw] == c.label
                c.colours = colour_scores(rgb3[y : y + bh, x : x + bw][sel])
            matching = sorted(
                (c for c in cands if (c.colours or {}).get(colour, 0.0) >= MIN_COLOUR_FRACTION),
                key=lambda c: -(c.colours or {}).get(colour, 0.0),
            )
            if not matching:
                seen = ", ".join(dominant_colour(c.colours or {}) for c in cands)
                base.message = f"no {colour} {name} in the current frame ({count_txt}: {seen}; {head})"
                return base
            count_txt += f", {len(matching)} {colour}"
            cands = matching
        if ranges is not None and any(s in ("nearest", "farthest") for s in sups):
            r = np.asarray(ranges)
            if r.shape[:2] == (h, w):
                attach_ranges(inst, r)
            else:
                notes.append(f"ranges ignored (shape {r.shape} is not {h}x{w})")

        chosen: list[Instance]
        whole_class = False
        if sups:
            for region in regions:
                kept = region_filter(cands, region, w)
                if not kept:
                    base.message = self._region_miss(name, parsed, region, cands, w, head)
                    return base
                cands = kept
            pick = pick_one(cands, sups[0], w)
            chosen = [pick]
            how_chosen = f"chose {sups[0]}" + (f" on the {regions[0]}" if regions else "")
            if sups[0] in ("nearest", "farthest") and pick.range_m is not None:
                how_chosen += f" ({pick.range_m:.1f} m)"
            if len(sups) > 1:
                notes.append(f"ignored selector {', '.join(sups[1:])}")
        elif regions:
            if plural or len(cands) == 1:
                for region in regions:
                    kept = region_filter(cands, region, w)
                    if not kept:
                        base.message = self._region_miss(name, parsed, region, cands, w, head)
                        return base
                    cands = kept
                chosen = cands
                how_chosen = f"{'all ' if plural else ''}{len(chosen)} on the {regions[0]}"
            else:
                chosen = [pick_one(cands, regions[0], w)]
                how_chosen = f"chose {'centre' if regions[0] == 'middle' else regions[0] + 'most'}"
        elif not parsed.colours:
            # No selector and no colour: the class itself ("car", "all pedestrians", "road") is the answer,
            # every pixel of it, so the mask equals the model's class pixels.
            chosen, whole_class = cands, True
            how_chosen = f"all {len(cands)} (whole class)" if plural else "whole class"
        elif plural:
            chosen = cands
            how_chosen = f"all {len(chosen)}"
        elif len(cands) == 1:
            chosen = cands
            how_chosen = "the only one" if not parsed.colours else f"the {parsed.colours[0]} one"
        elif parsed.colours:
            chosen = [cands[0]]
            how_chosen = f"chose the most {parsed.colours[0]}"
        else:
            chosen = [pick_one(cands, "largest", w)]
            how_chosen = "chose largest"

        mask, roi, count = self._render(inst, chosen, cls_mask if whole_class else None)
        ans = base
        ans.found = True
        ans.mask, ans.roi, ans.pixel_count = mask, roi, count
        ans.selected = len(chosen)
        if confidence is not None:
            conf = np.asarray(confidence)
            if conf.shape[:2] == (h, w) and count:
                scale = 1.0 if conf.dtype.kind == "f" else 1.0 / 255.0
                ans.mask_confidence = float(np.mean(conf.reshape(h, w)[mask > 0], dtype=np.float64) * scale)
        tail = f"; {'; '.join(notes)}" if notes else ""
        ans.message = f"{head}; {count_txt}; {how_chosen}; {count} px{tail}"
        return ans

    @staticmethod
    def _region_miss(name: str, parsed: ParsedQuery, region: str, cands: list[Instance], w: int, head: str) -> str:
        where = {"left": "on the left", "right": "on the right", "middle": "in the middle"}[region]
        colour = f"{parsed.colours[0]} " if parsed.colours else ""
        others = ", ".join(f"x={c.centroid[0]:.0f}" for c in cands)
        return f"no {colour}{name} {where} in the current frame ({len(cands)} elsewhere at {others} of {w} px; {head})"

    @staticmethod
    def _render(
        inst: Instances, chosen: list[Instance], whole: np.ndarray | None
    ) -> tuple[np.ndarray, tuple[int, int, int, int], int]:
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
