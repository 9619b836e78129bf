"""Tuning of the query engine's embedding rule: phrase tables and a grid search over threshold and margin.

``python -m seg_perception.tools.query_thresholds`` (needs the bundled all-MiniLM-L6-v2;
about 20 s on a laptop CPU) prints the best rules and the failures of the best one; the
constants in ``query.grounding`` hold the result. Tables, objective and the last run:
docs/query.md ("Calibration").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.query.embeddings import SentenceEmbedder
from seg_perception.query.grounding import ClassGrounder
from seg_perception.query.vocabulary import ADE20K_CLASSES

CAMVID_POSITIVES: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (p, tuple(c.split("|")))
    for p, c in (
        ("ambulance", "car"),
        ("roadster", "car"),
        ("cabriolet", "car"),
        ("fire engine", "car"),
        ("police cruiser", "car"),
        ("shopper", "pedestrian"),
        ("tourist", "pedestrian"),
        ("police officer", "pedestrian"),
        ("schoolchild", "pedestrian"),
        ("commuter", "pedestrian"),
        ("toddler", "pedestrian"),
        ("teenager", "pedestrian"),
        ("businessman", "pedestrian"),
        ("policeman", "pedestrian"),
        ("student", "pedestrian"),
        ("boulevard", "road"),
        ("thoroughfare", "road"),
        ("cobblestones", "road|pavement"),
        ("boardwalk", "pavement"),
        ("paving stones", "pavement"),
        ("flagstones", "pavement"),
        ("cathedral", "building"),
        ("church", "building"),
        ("warehouse", "building"),
        ("hotel", "building"),
        ("office block", "building"),
        ("cottage", "building"),
        ("supermarket", "building"),
        ("school", "building"),
        ("birch", "tree"),
        ("maple", "tree"),
        ("willow", "tree"),
        ("conifer", "tree"),
        ("evergreen", "tree"),
        ("sapling", "tree"),
        ("forest", "tree"),
        ("woods", "tree"),
        ("sunset", "sky"),
        ("overcast", "sky"),
        ("notice", "sign_symbol"),
        ("banner", "sign_symbol"),
        ("plaque", "sign_symbol"),
        ("logo", "sign_symbol"),
        ("balustrade", "fence"),
        ("trellis", "fence"),
        ("chain link", "fence"),
        ("paling", "fence"),
        ("flagpole", "pole"),
        ("mast", "pole"),
        ("pylon", "pole"),
        ("stanchion", "pole"),
        ("unicyclist", "bicyclist"),
        ("tricycle", "bicyclist"),
        ("cycling", "bicyclist"),
        ("velocipede", "bicyclist"),
    )
)

ADE20K_POSITIVES: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (p, tuple(c.split("|")))
    for p, c in (
        ("cupboard", "cabinet|wardrobe"),
        ("drapes", "curtain|blind"),
        ("carpet", "rug"),
        ("fridge", "refrigerator"),
        ("cooker", "stove|oven"),
        ("bookshelf", "bookcase|shelf"),
        ("staircase", "stairs|stairway|step"),
        ("duvet", "blanket"),
        ("comforter", "blanket"),
        ("toy", "plaything"),
        ("photograph", "painting|poster"),
        ("footstool", "ottoman|stool"),
        ("dresser", "chest of drawers|wardrobe|cabinet"),
        ("closet", "wardrobe|cabinet"),
        ("tub", "bathtub"),
        ("flowerpot", "pot|vase|flower|plant"),
        ("hillside", "hill|mountain"),
        ("beach", "sand|sea"),
        ("washing machine", "washer"),
        ("meal", "food"),
        ("bread", "food"),
        ("jacket", "apparel"),
        ("clothes", "apparel"),
        ("tiger", "animal"),
        ("cattle", "animal"),
    )
)

# Words in the anchor vocabulary but not classes of the model.
CAMVID_VOCAB_NEGATIVES = (
    "cup",
    "airplane",
    "dog",
    "cat",
    "laptop",
    "banana",
    "keyboard",
    "elephant",
    "chair",
    "boat",
    "television",
    "pizza",
    "book",
    "bottle",
    "toothbrush",
    "umbrella",
    "horse",
    "bed",
    "sofa",
    "clock",
    "spoon",
    "apple",
    "scissors",
    "microwave",
    "refrigerator",
    "sandwich",
    "giraffe",
    "kite",
    "bird",
    "mug",
    "table",
    "lamp",
    "door",
    "window",
    "phone",
    "teddy bear",
    "computer mouse",
    "wine glass",
)
ADE20K_VOCAB_NEGATIVES = ("toothbrush", "scissors", "frisbee", "skis", "tennis racket", "baseball bat", "fork", "knife")

# Words not in the anchor vocabulary and not classes of CamVid (nor, mostly, of ADE20K).
OOV_NEGATIVES = tuple(
    """guitar violin hamburger dolphin piano candle necklace penguin rocket submarine sock hammer screwdriver strawberry
    cheese printer stapler pencil lobster volcano igloo trumpet saxophone wallet key ring sunglasses crown dragon spider
    butterfly snail banjo harp drum teapot ladle whisk shovel""".split()
)
ADE20K_OOV_NEGATIVES = tuple(
    """violin necklace rocket screwdriver stapler pencil trumpet saxophone wallet key ring sunglasses harp ladle whisk
    banjo""".split()
)
JUNK = ("hello", "thank you", "xyzzy", "qwerty asdf", "what time is it", "lorem ipsum dolor", "the", "yes")


@dataclass(frozen=True)
class Rule:
    """An embedding decision rule: accept class c for query q when sim(q, c) >= threshold and
    sim(q, c) >= max over anchors of sim(q, anchor) + margin (anchors are the model's known non-classes)."""

    template: str
    synonym_forms: str  # "none", "single" (one-word lexicon synonyms), "all"
    threshold: float
    margin: float


@dataclass(frozen=True)
class RuleScore:
    """Accuracy of a rule on the tables (rates 0..1)."""

    rule: Rule
    positive_rate: float  # (right - wrong accepted) / positives
    oov_rejection: float
    vocab_rejection: float
    balanced: float


def reaches_embeddings(class_names: Sequence[str], phrase: str) -> bool:
    """False when names, plurals, the lexicon or a spelling fix already ground ``phrase`` (no embedding needed)."""
    grounder = ClassGrounder(class_names, None)
    return not grounder.ground(grounder.parse(phrase).head).found


def evaluate_rules(
    embedder: SentenceEmbedder,
    thresholds: Sequence[float] = tuple(np.round(np.arange(0.30, 0.72, 0.02), 2)),
    margins: Sequence[float] = (0.0, 0.02, 0.05, 0.08, 0.1),
    templates: Sequence[str] = ("{}", "a photo of a {}"),
    synonym_forms: Sequence[str] = ("none", "single", "all"),
) -> list[RuleScore]:
    """Score every rule of the grid on the CamVid and ADE20K tables, best first."""

    def factory(names: Sequence[str], template: str, forms: str) -> ClassGrounder:
        g = ClassGrounder(names, embedder, threshold=0.0, margin=-1.0, template=template, synonym_forms=forms)
        g.prepare_embeddings()
        return g

    tables = (
        (CAMVID_CLASSES, CAMVID_POSITIVES, CAMVID_VOCAB_NEGATIVES, OOV_NEGATIVES),
        (ADE20K_CLASSES, ADE20K_POSITIVES, ADE20K_VOCAB_NEGATIVES, ADE20K_OOV_NEGATIVES),
    )
    scores: list[RuleScore] = []
    for template in templates:
        for forms in synonym_forms:
            pos_ok, oov_best, voc_best, junk_best = [], [], [], []
            for names, positives, vocab_neg, oov_neg in tables:
                g = factory(names, template, forms)
                # One batched call fills the cache; per-phrase calls below then cost no inference.
                phrases = [p for p, _ in positives] + list(oov_neg) + list(vocab_neg) + list(JUNK)
                embedder.encode([template.format(p) for p in phrases])
                for phrase, ok in positives:
                    if reaches_embeddings(names, phrase) is False:
                        continue
                    sims = g.similarities(phrase)
                    best = int(np.argmax(sims))
                    pos_ok.append((names[best] in ok, float(sims[best]), g.anchor_similarity(phrase)))
                oov_best += [(float(g.similarities(q).max()), g.anchor_similarity(q)) for q in oov_neg]
                junk_best += [(float(g.similarities(q).max()), g.anchor_similarity(q)) for q in JUNK]
                voc_best += [(float(g.similarities(q).max()), g.anchor_similarity(q)) for q in vocab_neg]
            for t in thresholds:
                for m in margins:
                    # A wrong class accepted counts -1: a wrong mask is worse than "not found".
                    tp = np.mean([(1.0 if ok else -1.0) * (s >= t and s >= a + m) for ok, s, a in pos_ok])
                    tn = np.mean([not (s >= t and s >= a + m) for s, a in oov_best])
                    tv = np.mean([not (s >= t and s >= a + m) for s, a in voc_best])
                    if any(s >= t and s >= a + m for s, a in junk_best):
                        continue  # hard constraint: never ground junk ("hello") onto a class
                    rule = Rule(template, forms, float(t), float(m))
                    scores.append(RuleScore(rule, float(tp), float(tn), float(tv), float((tp + tn) / 2)))
    scores.sort(key=lambda r: (-round(r.balanced, 6), -r.oov_rejection, -r.rule.margin, -r.rule.threshold))
    return scores


def failures(embedder: SentenceEmbedder, rule: Rule) -> list[str]:
    """Human-readable list of the table phrases ``rule`` gets wrong (for the calibration report)."""
    out = []
    tables = (
        (CAMVID_CLASSES, CAMVID_POSITIVES, OOV_NEGATIVES + JUNK),
        (ADE20K_CLASSES, ADE20K_POSITIVES, ADE20K_OOV_NEGATIVES + JUNK),
    )
    for names, positives, negatives in tables:
        g = ClassGrounder(names, embedder, rule.threshold, rule.margin, rule.template, rule.synonym_forms)
        g.prepare_embeddings()
        table = "camvid" if names is CAMVID_CLASSES else "ade20k"
        for phrase, ok in positives:
            if not reaches_embeddings(names, phrase):
                out.append(f"{table}: {phrase!r} is resolved before the embedding stage (not scored)")
                continue
            got = g.ground(phrase.split())
            if got.class_name not in ok:
                out.append(f"{table}: {phrase!r} -> {got.class_name or got.closest} (want {'|'.join(ok)})")
        for phrase in negatives:
            got = g.ground(phrase.split())
            if got.found:
                out.append(f"{table}: {phrase!r} -> {got.class_name} {got.score:.2f} (want none)")
    return out


def main() -> int:
    """Print the best rules of the grid (CLI entry point of this module)."""
    embedder = SentenceEmbedder()
    embedder.load()
    scores = evaluate_rules(embedder)
    n_pos = len(CAMVID_POSITIVES) + len(ADE20K_POSITIVES)
    n_oov = len(OOV_NEGATIVES) + len(ADE20K_OOV_NEGATIVES)
    print(f"{n_pos} positives, {n_oov} out-of-vocabulary negatives, {len(JUNK)} junk (CamVid + ADE20K tables)")
    for r in scores[:10]:
        print(
            f"template={r.rule.template!r} forms={r.rule.synonym_forms} threshold={r.rule.threshold:.2f} "
            f"margin={r.rule.margin:.2f}: positives {r.positive_rate:.2f}, oov rejected {r.oov_rejection:.2f}, "
            f"vocab rejected {r.vocab_rejection:.2f}, balanced {r.balanced:.3f}"
        )
    print("failures of the best rule:")
    for line in failures(embedder, scores[0].rule):
        print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
