"""Query parsing and grounding of a phrase onto the loaded model's classes.

A query such as "the red cars on the left" is parsed into a *head* (the words that
name the object: "cars"), attributes (colours), spatial selectors ("left") and a
plural/"all" flag. The head is grounded onto one class in this order, first hit wins:

1. ``exact``    a class name (or one of its comma-separated aliases) as written;
2. ``plural``   a class name after singularising the last word ("pedestrians");
3. ``synonym``  a lexicon word whose entry has a target the model has ("automobile" -> car);
4. ``spelling`` any of the above forms within one edit (insert, delete, substitute, swap),
                only for forms of at least 4 letters so "cap" never becomes "car";
5. ``similarity`` cosine similarity of sentence embeddings of the head phrase and of
                each class's names and synonyms, when an embedder is loaded and the
                best class reaches the threshold.

Sub-phrases are tried longest first, rightmost first ("sports car" -> "car").
Words after a preposition are context ("cup on the table" names a cup, not a table);
relations to that context are not interpreted.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from seg_perception.query.embeddings import SentenceEmbedder
from seg_perception.query.lexicon import LEXICON
from seg_perception.query.minilm import english_words
from seg_perception.query.ordinals import read_ordinal
from seg_perception.query.text import (
    _IRREGULAR_PLURALS,
    PREPOSITIONS,
    QUANTIFIERS_ALL,
    STOPWORDS,
    has_latin_letter,
    looks_plural,
    ngrams,
    normalize,
    phrase_singulars,
    singular_candidates,
    tokens,
    within_one_edit_same_start,
)
from seg_perception.query.vocabulary import ANCHOR_WORDS

# Colour words -> canonical colour name (attributes.COLOUR_NAMES).
COLOUR_WORDS = {
    "red": "red",
    "orange": "orange",
    "yellow": "yellow",
    "green": "green",
    "blue": "blue",
    "purple": "purple",
    "violet": "purple",
    "pink": "pink",
    "brown": "brown",
    "black": "black",
    "white": "white",
    "grey": "grey",
    "gray": "grey",
    "silver": "grey",
}

# Single-word spatial selectors -> canonical selector.
SPATIAL_WORDS = {
    "left": "left",
    "lefthand": "left",
    "leftmost": "leftmost",
    "right": "right",
    "righthand": "right",
    "rightmost": "rightmost",
    "middle": "middle",
    "center": "middle",
    "centre": "middle",
    "central": "middle",
    "centered": "middle",
    "centred": "middle",
    "nearest": "nearest",
    "closest": "nearest",
    "foreground": "nearest",
    "front": "nearest",
    "farthest": "farthest",
    "furthest": "farthest",
    "far": "farthest",
    "distant": "farthest",
    "background": "farthest",
    "largest": "largest",
    "biggest": "largest",
    "big": "largest",
    "large": "largest",
    "huge": "largest",
    "smallest": "smallest",
    "small": "smallest",
    "tiny": "smallest",
    "little": "smallest",
    "top": "top",
    "topmost": "top",
    "upper": "top",
    "highest": "top",
    "bottom": "bottom",
    "bottommost": "bottom",
    "lower": "bottom",
    "lowest": "bottom",
}
# Two-word forms that mean something else than their parts.
SPATIAL_BIGRAMS = {
    ("far", "left"): "leftmost",
    ("most", "left"): "leftmost",
    ("left", "most"): "leftmost",
    ("farthest", "left"): "leftmost",
    ("furthest", "left"): "leftmost",
    ("far", "right"): "rightmost",
    ("most", "right"): "rightmost",
    ("right", "most"): "rightmost",
    ("farthest", "right"): "rightmost",
    ("furthest", "right"): "rightmost",
    ("in", "front"): "nearest",
    ("the", "back"): "farthest",
}

# Embedding decision rule, from ``python -m seg_perception.tools.query_thresholds`` (see docs/query.md).
EMBED_TEMPLATE = "{}"
SYNONYM_FORMS = "single"
SIMILARITY_THRESHOLD = 0.52
ANCHOR_MARGIN = 0.02

SCORE_EXACT = 1.0
SCORE_PLURAL = 1.0
SCORE_SYNONYM = 0.9
SCORE_SPELLING = 0.8
MIN_SPELLING_LEN = 4


@dataclass
class ParsedQuery:
    """A query broken into parts (all words normalised).

    Attributes:
        text: the query as given.
        head: words naming the object (before the first preposition, modifiers removed).
        context: other content words (after a preposition); reported as ignored.
        colours: canonical colour names, in query order.
        spatial: canonical spatial selectors, in query order.
        want_all: "all"/"every"/"each"/"both" was said.
        ordinal: 1-based position ("second" = 2), negative from the end ("last" = -1), or None.
    """

    text: str
    head: list[str] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    colours: list[str] = field(default_factory=list)
    spatial: list[str] = field(default_factory=list)
    want_all: bool = False
    ordinal: int | None = None


@dataclass(frozen=True)
class Grounding:
    """Result of grounding a phrase.

    Attributes:
        class_index: model class id, or -1 when nothing matched.
        class_name: the model's class name ("" when nothing matched).
        score: 0..1; 1 exact/plural, 0.9 synonym, 0.8 spelling, cosine similarity for embeddings.
        kind: "exact", "plural", "synonym", "spelling", "similarity" or "none".
        phrase: the query words that matched (normalised).
        plural: the matched phrase was plural.
        closest: (class_name, score) of the nearest class when nothing matched (similarity or spelling ratio).
        closest_kind: "similarity" or "spelling" (how ``closest`` was measured).
    """

    class_index: int
    class_name: str
    score: float
    kind: str
    phrase: str
    plural: bool = False
    closest: tuple[str, float] | None = None
    closest_kind: str = ""

    @property
    def found(self) -> bool:
        return self.class_index >= 0


def _split_aliases(name: str) -> list[str]:
    """Normalised aliases of a class name: ADE20K-style names list several ("sidewalk, pavement")."""
    parts = [normalize(p) for p in name.replace(";", ",").split(",")]
    return [p for p in parts if p]


class ClassGrounder:
    """Maps phrases to the classes of one model.

    Args:
        class_names: the model's class names, index = class id.
        embedder: a SentenceEmbedder (loaded or not) or None for lexicon-only grounding.
        threshold: minimum cosine similarity for an embedding match.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        embedder: SentenceEmbedder | None = None,
        threshold: float = SIMILARITY_THRESHOLD,
        margin: float = ANCHOR_MARGIN,
        template: str = EMBED_TEMPLATE,
        synonym_forms: str = SYNONYM_FORMS,
    ) -> None:
        self.class_names = [str(n) for n in class_names]
        self.threshold = float(threshold)
        self.margin = float(margin)
        self.template = template
        self.synonym_forms = synonym_forms
        self._class_forms: dict[str, int] = {}
        for idx, name in enumerate(self.class_names):
            for alias in _split_aliases(name):
                self._class_forms.setdefault(alias, idx)
        self._synonyms: dict[str, int] = {}
        for entry in LEXICON:
            present = [self._class_forms[normalize(t)] for t in entry.targets if normalize(t) in self._class_forms]
            target = present[0] if present else None
            if target is None:
                continue
            # Only the entry's words: a target the model lacks ("cup" for a glass-only model) is no synonym.
            for term in (*entry.terms, self.class_names[target]):
                self._synonyms.setdefault(normalize(term), target)
        # Multi-word names containing a word the parser would strip ("chest of drawers",
        # "traffic light" is fine) are glued into one token before parsing.
        special = STOPWORDS | PREPOSITIONS | QUANTIFIERS_ALL | set(COLOUR_WORDS) | set(SPATIAL_WORDS) | {"most"}
        self._protected: list[list[str]] = sorted(
            (f.split() for f in (*self._class_forms, *self._synonyms) if " " in f and set(f.split()) & special),
            key=len,
            reverse=True,
        )
        self._embedder = embedder
        self._class_matrix: np.ndarray | None = None  # (n_forms, dim) embeddings
        self._class_of_row: np.ndarray | None = None  # (n_forms,) class id per row
        self._anchor_matrix: np.ndarray | None = None  # (n_anchors, dim) embeddings of known non-classes

    # ----------------------------------------------------------------- embeddings
    def embedding_forms(self) -> list[tuple[int, str]]:
        """(class id, text) pairs embedded for the classes: aliases, plus lexicon synonyms per ``synonym_forms``."""
        forms = [(idx, alias) for alias, idx in self._class_forms.items()]
        if self.synonym_forms != "none":
            forms += [
                (idx, term)
                for term, idx in self._synonyms.items()
                if term not in self._class_forms and (self.synonym_forms == "all" or " " not in term)
            ]
        return forms

    def anchor_words(self) -> list[str]:
        """Anchor vocabulary words that are not classes of this model (exact, lexicon or spelling)."""
        out = []
        for word in ANCHOR_WORDS:
            form = normalize(word)
            if form and self._lookup(form) is None and self._spelling(form) is None:
                out.append(form)
        return out

    def prepare_embeddings(self) -> None:
        """Embed class forms and anchors once (loads the embedder if needed). Raises ModelError when it cannot."""
        if self._embedder is None:
            return
        forms = self.embedding_forms()
        anchors = self.anchor_words()
        texts = [self.template.format(text) for _, text in forms] + [self.template.format(a) for a in anchors]
        matrix = self._embedder.encode(texts)
        # _class_matrix last: queries running meanwhile test it to decide whether embeddings are ready.
        self._anchor_matrix = matrix[len(forms) :]
        self._class_of_row = np.array([idx for idx, _ in forms], dtype=np.int64)
        self._class_matrix = matrix[: len(forms)]

    @property
    def embeddings_ready(self) -> bool:
        """True when class embeddings exist and queries can be embedded."""
        return self._class_matrix is not None and self._embedder is not None and self._embedder.loaded

    def similarities(self, phrase: str) -> np.ndarray:
        """Per-class cosine similarity (n_classes,) float32 of ``phrase``: max over each class's forms."""
        out = np.full(len(self.class_names), -1.0, dtype=np.float32)
        if not self.embeddings_ready:
            return out
        vec = self._embedder.encode_one(self.template.format(phrase))  # type: ignore[union-attr]
        np.maximum.at(out, self._class_of_row, self._class_matrix @ vec)  # type: ignore[arg-type, operator]
        return out

    def anchor_similarity(self, phrase: str) -> float:
        """Highest cosine similarity of ``phrase`` to a known non-class word (-1 without anchors)."""
        if not self.embeddings_ready or self._anchor_matrix is None or len(self._anchor_matrix) == 0:
            return -1.0
        vec = self._embedder.encode_one(self.template.format(phrase))  # type: ignore[union-attr]
        return float(np.max(self._anchor_matrix @ vec))

    # ----------------------------------------------------------------- parsing
    def _glue(self, words: list[str]) -> list[str]:
        if not self._protected:
            return words
        out: list[str] = []
        i = 0
        while i < len(words):
            for form in self._protected:
                if words[i : i + len(form)] == form:
                    out.append(" ".join(form))
                    i += len(form)
                    break
            else:
                out.append(words[i])
                i += 1
        return out

    def parse(self, text: str) -> ParsedQuery:
        """Split ``text`` into head words, context words, colours, spatial selectors and the "all" flag."""
        parsed = ParsedQuery(text=text)
        words = self._glue(tokens(text))
        segments: list[list[str]] = [[]]
        i = 0
        while i < len(words):
            word = words[i]
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if (word, nxt) in SPATIAL_BIGRAMS:
                parsed.spatial.append(SPATIAL_BIGRAMS[(word, nxt)])
                i += 2
                continue
            if word in self._class_forms or word in self._synonyms:
                segments[-1].append(word)  # a glued multi-word name or a class literally named like a modifier
            elif word in COLOUR_WORDS:
                parsed.colours.append(COLOUR_WORDS[word])
            elif word in SPATIAL_WORDS:
                parsed.spatial.append(SPATIAL_WORDS[word])
            elif word in QUANTIFIERS_ALL:
                parsed.want_all = True
            elif parsed.ordinal is None and (ordinal := read_ordinal(words, i)) is not None:
                parsed.ordinal, used = ordinal
                i += used
                continue
            elif word in PREPOSITIONS:
                if segments[-1]:
                    segments.append([])
            elif word in STOPWORDS or word == "most":
                pass
            else:
                segments[-1].append(word)
            i += 1
        content = [s for s in segments if s]
        if content:
            parsed.head = content[0]
            parsed.context = [w for s in content[1:] for w in s]
        return parsed

    # ----------------------------------------------------------------- grounding
    def _lookup(self, form: str) -> tuple[int, str] | None:
        if form in self._class_forms:
            return self._class_forms[form], "exact"
        if form in self._synonyms:
            return self._synonyms[form], "synonym"
        return None

    def _spelling(self, form: str) -> int | None:
        if len(form) < MIN_SPELLING_LEN:
            return None
        dictionary = english_words()
        if dictionary and all(w in dictionary for w in form.split()):
            return None  # a real word ("fridge", "beach") is not a typo of its neighbour ("bridge", "bench")
        for table in (self._class_forms, self._synonyms):
            for known, idx in table.items():
                if len(known) >= MIN_SPELLING_LEN and within_one_edit_same_start(form, known):
                    return idx
        return None

    @staticmethod
    def _is_plural(phrase: str, via_singular: bool, kind: str) -> bool:
        last = phrase.split()[-1]
        if via_singular or last in _IRREGULAR_PLURALS:
            return True
        return kind != "exact" and bool(singular_candidates(last))

    def ground(self, head: Sequence[str]) -> Grounding:
        """Ground the head words of a parsed query onto one class (see module docstring for the order)."""
        words = list(head)
        if not words:
            return Grounding(-1, "", 0.0, "none", "")
        # Head-final: a sub-phrase must end at the last word, so a compound noun never grounds on its
        # modifier ("car park", "bus stop", "bike helmet" are not car, bus, bicycle).
        grams = [g for g in ngrams(words) if g[1] == len(words)]
        for _, _, phrase in grams:
            forms = [(phrase, False), *((s, True) for s in phrase_singulars(phrase))]
            # Class names (as written, then singularised) before synonyms: "cars" is the plural of car.
            for table, kind in ((self._class_forms, "exact"), (self._synonyms, "synonym")):
                for form, via_singular in forms:
                    idx = table.get(form)
                    if idx is None:
                        continue
                    got = "plural" if via_singular and kind == "exact" else kind
                    score = {"exact": SCORE_EXACT, "plural": SCORE_PLURAL, "synonym": SCORE_SYNONYM}[got]
                    plural = self._is_plural(phrase, via_singular, got)
                    return Grounding(idx, self.class_names[idx], score, got, phrase, plural)
        for _, _, phrase in grams:
            for form, via_singular in [(phrase, False), *((s, True) for s in phrase_singulars(phrase))]:
                idx = self._spelling(form)
                if idx is not None:
                    plural = via_singular or self._is_plural(phrase, False, "spelling")
                    return Grounding(idx, self.class_names[idx], SCORE_SPELLING, "spelling", phrase, plural)
        phrase = " ".join(words)
        if self.embeddings_ready and has_latin_letter(phrase):
            sims = self.similarities(phrase)
            best = int(np.argmax(sims))
            score = float(np.clip(sims[best], 0.0, 1.0))
            anchor = self.anchor_similarity(phrase)
            if score >= self.threshold and score >= anchor + self.margin:
                return Grounding(best, self.class_names[best], score, "similarity", phrase, looks_plural(words[-1]))
            closest = (self.class_names[best], score)
            return Grounding(-1, "", 0.0, "none", phrase, closest=closest, closest_kind="similarity")
        return Grounding(-1, "", 0.0, "none", phrase, closest=self._closest_spelling(phrase), closest_kind="spelling")

    def _closest_spelling(self, phrase: str) -> tuple[str, float] | None:
        if not self.class_names or not phrase:
            return None
        best_name, best = "", -1.0
        for form, idx in self._class_forms.items():
            ratio = difflib.SequenceMatcher(None, phrase, form).ratio()
            if ratio > best:
                best_name, best = self.class_names[idx], ratio
        return best_name, float(best)
