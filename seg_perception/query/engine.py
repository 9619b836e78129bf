"""QueryEngine: a phrase plus a segmented frame -> the mask of what the phrase names.

The ROS-free core of the ``~/segment_query`` service; ``answer`` never raises (every
failure is ``found=False`` with a message). Images are HxWx3 uint8 RGB, labels HxW integer
class ids (ids outside the class list are unknown), confidence HxW uint8 (x255), ranges HxW
float metres (NaN/inf/<= 0 unknown). See docs/query.md.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from seg_perception.errors import ConfigError, ModelError
from seg_perception.query.answer import QueryAnswer, quote
from seg_perception.query.class_answer import ClassQuery, answer_class
from seg_perception.query.detected import DetectorQueries
from seg_perception.query.embeddings import SentenceEmbedder
from seg_perception.query.grounding import (
    ANCHOR_MARGIN,
    SIMILARITY_THRESHOLD,
    ClassGrounder,
    Grounding,
    ParsedQuery,
)
from seg_perception.query.text import MAX_QUERY_CHARS, has_latin_letter

_LOG = logging.getLogger(__name__)

_KIND_TEXT = {"exact": "class name", "plural": "plural", "synonym": "synonym", "spelling": "spelling"}
_MAX_CLASSES_LISTED = 40
# Documented values of ``use_embeddings`` (besides True/False and a model folder path).
EMBEDDING_MODES = {"auto": "auto", "on": "required", "off": "off"}


def _lower_thread_priority() -> None:
    """Lowest CPU priority for this thread (a background model load must not starve the image pipeline)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


def _embedding_mode(use_embeddings: bool | str | Path) -> tuple[str, str | None]:
    """("auto" | "required" | "off", model folder or None) for a ``use_embeddings`` value.

    Raises:
        ConfigError: not a bool, "auto", "on", "off" or the path of a model folder.
    """
    if isinstance(use_embeddings, bool):
        return ("required" if use_embeddings else "off"), None
    if isinstance(use_embeddings, Path):
        return "required", str(use_embeddings)
    if isinstance(use_embeddings, str):
        value = use_embeddings.strip()
        if value.lower() in EMBEDDING_MODES:
            return EMBEDDING_MODES[value.lower()], None
        if value and (os.sep in value or "/" in value or value.startswith(("~", ".")) or Path(value).is_dir()):
            return "required", value
    raise ConfigError(
        "use_embeddings must be 'auto', 'on' (or True), 'off' (or False) or the path of a sentence-transformers "
        f"model folder, got {use_embeddings!r}"
    )


def _how(g: Grounding) -> str:
    """How a phrase grounded, for messages ("synonym", "similarity 0.61")."""
    return f"similarity {g.score:.2f}" if g.kind == "similarity" else _KIND_TEXT[g.kind]


class QueryEngine:
    """Grounds phrases on a model's classes and selects instances in segmented frames.

    Args:
        class_names: the model's class names; index = class id in the label image.
        use_embeddings: "auto" (the bundled all-MiniLM-L6-v2 if it loads, else the lexicon), True or "on"
            (required; ModelError if it cannot load), False or "off" (lexicon only), or the path of a
            sentence-transformers model folder (required).
        detector: object detector for phrases the model has no class for ("cup"): "auto" (load from the
            model cache on first use), None (off) or a ``seg_perception.detection.Detector``.
        background: load the embedding model in a background thread; queries use the lexicon until
            it is ready (``embedding_status`` says "loading"). Load failures are then reported in
            ``embedding_status`` instead of raised.
        threshold, margin: embedding decision rule (defaults: calibrated constants, see docs/query.md).
        min_area: instances smaller than this (pixels) are noise; None = max(8, 1e-4 x frame pixels).
        device: torch device for the embedding model.
        torch_threads: process-wide thread count set when the embedding model loads (None: leave it).
        on_ready: called once with the final ``embedding_status`` when a background load ends (either
            way), e.g. the node's logger; exceptions it raises are logged and ignored.

    Raises:
        ConfigError: ``class_names`` is empty or ``use_embeddings`` is not understood.
        ModelError: embeddings were required (True or a path, no background) and cannot load.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        use_embeddings: bool | str | Path = "auto",
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
        mode, model_path = _embedding_mode(use_embeddings)
        embedder = SentenceEmbedder(model_path, device=device, torch_threads=torch_threads) if mode != "off" else None
        self._grounder = ClassGrounder(
            names,
            embedder,
            threshold=SIMILARITY_THRESHOLD if threshold is None else float(threshold),
            margin=ANCHOR_MARGIN if margin is None else float(margin),
        )
        self.detector_queries = DetectorQueries(detector, embedder, self._grounder.threshold, self._grounder.margin)
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

    def _load(self, raise_errors: bool) -> None:
        t0 = time.perf_counter()
        if not raise_errors:
            _lower_thread_priority()
        try:
            self._grounder.prepare_embeddings()
            self.detector_queries.prepare_embeddings()
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
            source = "segmentation class"
            if not g.found or g.kind == "similarity":
                dg = self.detector_queries.ground(parsed.head)
                if dg.found and (not g.found or dg.kind != "similarity" or dg.score > g.score):
                    g, source = dg, "detector class"
            if not g.found:
                return self._finish(self._not_grounded(str(text), parsed, g), t0)
            msg = (
                f"no frame received yet ({quote(str(text))} -> {g.class_name}, {source}; ask again once images arrive)"
            )
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
            msg = f"internal error while answering {quote(str(text))}: {err}"
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
                msg = f"{quote(text)} has no words this model's class names can match; {self._class_list()}"
            else:
                msg = f"{quote(text)} names no object; {self._class_list()}"
            return QueryAnswer(False, msg)
        phrase = " ".join(parsed.head)
        if not has_latin_letter(phrase):
            return QueryAnswer(False, f"{quote(phrase)} is not a class of this model; {self._class_list()}")
        closest = ""
        if g.closest is not None:
            label = "similarity" if g.closest_kind == "similarity" else "spelling"
            closest = f" (closest: {g.closest[0]}, {label} {g.closest[1]:.2f})"
        return QueryAnswer(False, f"{quote(phrase)} is not a class of this model{closest}; {self._class_list()}")

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
        ask = self._ground_on_frame(text, rgb, labels)
        if isinstance(ask, QueryAnswer):
            return ask
        ans = answer_class(ask, confidence, ranges)
        if ans.found or np.count_nonzero(ask.class_mask) >= ask.min_area:
            return ans
        return self._detector_fallback(str(text), ask, ans)

    def _detector_fallback(self, text: str, ask: ClassQuery, ans: QueryAnswer) -> QueryAnswer:
        """The detector's answer when the segmentation has no pixels of a class the detector also knows.

        "person" on a tabletop photo: the street model segments no pedestrian, the detector
        sees a Person. Only exact names and synonyms fall back (never an embedding match),
        and only when the class is absent, not when a selector found none of its instances.
        """
        dg = self.detector_queries.ground(ask.parsed.head)
        if not dg.found or dg.kind == "similarity":
            return ans
        how = f"{_how(dg)}; no {ans.matched_class} in the segmentation"
        det = self.detector_queries.answer(ask.parsed, quote(text), ask.rgb, *ask.labels.shape, dg, how)
        if det.found:
            return det
        ans.message = f"{ans.message}; detector: {det.message}"
        return ans

    def _ground_on_frame(self, text: object, rgb: np.ndarray | None, labels: np.ndarray) -> ClassQuery | QueryAnswer:
        """The query grounded on a model class, or the final answer (bad text, detector answer, not grounded)."""
        empty = np.zeros(labels.shape, np.uint8)
        early = self._check_text(text)
        if early is not None:
            early.mask = empty
            return early
        text = str(text)
        parsed, g = self.ground(text)
        rival = ""
        if not g.found or g.kind == "similarity":
            dg = self.detector_queries.ground(parsed.head)
            if dg.found and (not g.found or dg.kind != "similarity" or dg.score > g.score):
                best = (g.class_name, g.score) if g.found else g.closest
                how = _how(dg) + (
                    f"; segmentation's best: {best[0]} {best[1]:.2f}" if best and dg.kind == "similarity" else ""
                )
                return self.detector_queries.answer(parsed, quote(text), rgb, *labels.shape, dg, how)
            if g.found and dg.found:
                rival = f", segmentation class; detector's best: {dg.class_name} {dg.score:.2f}"
        if not g.found:
            ans = self._not_grounded(text, parsed, g)
            ans.mask = empty
            return ans
        how = _how(g) + rival
        notes = [f"ignored: {' '.join(parsed.context)}"] if parsed.context else []
        if len(parsed.colours) > 1:
            notes.append(f"used colour {parsed.colours[0]} only")
        h, w = labels.shape
        return ClassQuery(
            parsed=parsed,
            labels=labels,
            rgb=rgb,
            class_mask=labels == g.class_index,
            answer=QueryAnswer(False, "", g.class_name, g.score, empty, match_kind=g.kind),
            head=f"{quote(text)} -> {g.class_name} ({how})",
            notes=notes,
            min_area=self.min_area if self.min_area is not None else max(8, int(round(h * w * 1e-4))),
            plural=g.plural or parsed.want_all,
        )
