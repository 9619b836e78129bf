"""Text normalisation for object queries: tokens, plural forms, one-edit spelling distance.

Everything here is pure Python on short strings (a query is capped at
``MAX_QUERY_CHARS``), so it costs microseconds per call.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Longer input is not a phrase a person or a task planner would send; answering it
# "not found" with a reason is cheaper and safer than tokenising 10 000 characters.
MAX_QUERY_CHARS = 200

_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)

# Words that carry no object identity. Kept small: a word missing here only ends up
# in the "ignored words" part of the answer message.
STOPWORDS = frozenset(
    """a an the this that these those some any me my our your us i you we it its please pls kindly
    find show get give segment select highlight mask locate where wheres what which who is are was there
    here one ones thing things object objects item items can could would will should do does let lets
    see look looking want need mark point out up just only side part region area image frame picture
    view scene very s""".split()
)

# Prepositions split a phrase into its head ("cup") and context ("on the table"); only
# the head names the object, so "cup on the table" is not answered with the table.
PREPOSITIONS = frozenset(
    """on in at near next beside besides behind under below above over of from with by to for into onto
    across along around between against toward towards inside outside underneath beneath beyond
    than like""".split()
)

QUANTIFIERS_ALL = frozenset({"all", "every", "each", "both", "everything"})

# Irregular plurals that matter for things robots are asked about.
_IRREGULAR_PLURALS = {
    "people": "person",
    "persons": "person",
    "men": "man",
    "women": "woman",
    "children": "child",
    "kids": "kid",
    "feet": "foot",
    "mice": "mouse",
    "geese": "goose",
    "teeth": "tooth",
    "knives": "knife",
    "leaves": "leaf",
    "shelves": "shelf",
    "buses": "bus",
    "busses": "bus",
    "glasses": "glass",
    "grasses": "grass",
    "boxes": "box",
    "benches": "bench",
    "couches": "couch",
    "bushes": "bush",
    "dishes": "dish",
    "cacti": "cactus",
}
# Singular words ending in s that the generic rules would otherwise treat as plural.
_SINGULAR_S = frozenset(
    """bus glass grass gas class canvas lens cactus bonus status campus stylus octopus bus's news
    series species chassis mattress dress address compass tennis bias apparatus axis basis crisis
    iris atlas walrus asparagus hummus jeans pants trousers scissors stairs glasses""".split()
)


def normalize(text: str) -> str:
    """Lower-case, NFKC-folded text with punctuation, underscores and hyphens turned into single spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD_RE.findall(folded.replace("_", " ").replace("-", " ")))


def tokens(text: str) -> list[str]:
    """Normalised words of ``text`` (possessive 's dropped)."""
    out = []
    for word in normalize(text).split():
        if word.endswith("'s"):
            word = word[:-2]
        word = word.replace("'", "")
        if word:
            out.append(word)
    return out


def has_latin_letter(text: str) -> bool:
    """True when ``text`` contains at least one ASCII letter (the lexicon and the embedding model are English)."""
    return any("a" <= ch <= "z" or "A" <= ch <= "Z" for ch in text)


def singular_candidates(word: str) -> list[str]:
    """Possible singular forms of ``word`` if it looks plural (most likely first); [] if it does not.

    Rule-based on purpose: no inflection library is needed, and a wrong candidate is
    harmless because it only counts when it equals a known class or synonym.
    """
    if word in _IRREGULAR_PLURALS:
        return [_IRREGULAR_PLURALS[word]]
    if len(word) < 3 or word in _SINGULAR_S or word.endswith(("ss", "us", "is")):
        return []
    if word.endswith("ies") and len(word) > 4:
        return [word[:-3] + "y", word[:-1]]
    if word.endswith("ves") and len(word) > 4:
        return [word[:-3] + "f", word[:-3] + "fe", word[:-1]]
    if word.endswith(("ches", "shes", "xes", "zes", "oes")):
        return [word[:-2], word[:-1]]
    if word.endswith("es"):
        return [word[:-1], word[:-2]]
    if word.endswith("s"):
        return [word[:-1]]
    return []


def phrase_singulars(phrase: str) -> list[str]:
    """Singular candidates of a multi-word phrase: English inflects the last word ("traffic signs")."""
    words = phrase.split()
    if not words:
        return []
    head = words[-1]
    return [" ".join([*words[:-1], s]) for s in singular_candidates(head)]


def looks_plural(word: str) -> bool:
    """Heuristic plural test for a word that matched no known form (used for embedding matches)."""
    return bool(singular_candidates(word))


def within_one_edit(a: str, b: str) -> bool:
    """True if ``a`` and ``b`` differ by at most one insertion, deletion, substitution or adjacent swap."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    if la > lb:
        a, b = b, a
    # b is one longer: find the first mismatch and skip one character of b there.
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


def within_one_edit_same_start(a: str, b: str) -> bool:
    """``within_one_edit`` with the first letter kept: people rarely mistype it, and it avoids false friends."""
    return bool(a) and bool(b) and a[0] == b[0] and within_one_edit(a, b)


def ngrams(words: list[str]) -> Iterable[tuple[int, int, str]]:
    """(start, end, phrase) of every contiguous n-gram, longest first, rightmost first within a length.

    Rightmost first because the head noun of an English noun phrase comes last
    ("sports car", "pedestrian crossing sign").
    """
    n = len(words)
    for size in range(n, 0, -1):
        for start in range(n - size, -1, -1):
            yield start, start + size, " ".join(words[start : start + size])
