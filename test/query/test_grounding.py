"""Grounding of phrases onto model classes on the lexicon path (no embeddings loaded)."""

from __future__ import annotations

import pytest

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.query.grounding import ClassGrounder
from seg_perception.query.lexicon import LEXICON
from seg_perception.query.text import (
    MAX_QUERY_CHARS,
    STOPWORDS,
    normalize,
    singular_candidates,
    tokens,
    within_one_edit,
)
from seg_perception.query.vocabulary import ADE20K_CLASSES, COCO_CLASSES

# (phrase, expected class, expected plural flag or None for "don't care")
CAMVID_TABLE = [
    ("car", "car", False),
    ("cars", "car", True),
    ("the car", "car", False),
    ("A Car.", "car", False),
    ("CARS!!!", "car", True),
    ("automobile", "car", False),
    ("vehicles", "car", True),
    ("the parked vehicle", "car", False),
    ("truck", "car", False),
    ("a taxi", "car", False),
    ("automobil", "car", False),  # one deletion
    ("person", "pedestrian", False),
    ("people", "pedestrian", True),
    ("pedestrians", "pedestrian", True),
    ("a man", "pedestrian", False),
    ("children", "pedestrian", True),
    ("pedestrain", "pedestrian", False),  # adjacent swap
    ("pedestian", "pedestrian", False),  # deletion
    ("street", "road", False),
    ("the road", "road", False),
    ("roads", "road", True),
    ("sidewalk", "pavement", False),
    ("pavements", "pavement", True),
    ("pavment", "pavement", False),  # deletion
    ("bike", "bicyclist", False),
    ("cyclists", "bicyclist", True),
    ("Bicyclist", "bicyclist", False),
    ("motorbike", "bicyclist", False),
    ("bicylist", "bicyclist", False),  # deletion
    ("traffic sign", "sign_symbol", False),
    ("sign", "sign_symbol", False),
    ("signs", "sign_symbol", True),
    ("traffic lights", "sign_symbol", True),
    ("sign_symbol", "sign_symbol", False),
    ("sign-symbol", "sign_symbol", False),
    ("vegetation", "tree", False),
    ("trees", "tree", True),
    ("bushes", "tree", True),
    ("sky", "sky", False),
    ("the Sky?", "sky", False),
    ("clouds", "sky", True),
    ("building", "building", False),
    ("houses", "building", True),
    ("buildng", "building", False),  # deletion
    ("pole", "pole", False),
    ("lamp post", "pole", False),
    ("poles", "pole", True),
    ("fence", "fence", False),
    ("fences", "fence", True),
    ("railing", "fence", False),
    ("fense", "fence", False),  # substitution
    ("the red car on the left", "car", False),
    ("all pedestrians", "pedestrian", True),
    ("nearest person", "pedestrian", False),
    ("Show me the cyclist, please", "bicyclist", False),
    ("sports car", "car", False),
]

NEGATIVES = ["cup", "airplane", "mug", "light", "cat", "laptop", "the one on the left", "xyzzy"]


@pytest.fixture(scope="module")
def camvid() -> ClassGrounder:
    return ClassGrounder(CAMVID_CLASSES, embedder=None)


def _ground(g: ClassGrounder, text: str):
    return g.ground(g.parse(text).head)


def test_table_is_large_enough():
    assert len(CAMVID_TABLE) >= 30
    kinds = {_ground(ClassGrounder(CAMVID_CLASSES), p).kind for p, _, _ in CAMVID_TABLE}
    assert {"exact", "plural", "synonym", "spelling"} <= kinds


@pytest.mark.parametrize(("phrase", "expected", "plural"), CAMVID_TABLE)
def test_camvid_grounding_table(camvid: ClassGrounder, phrase: str, expected: str, plural: bool | None):
    got = _ground(camvid, phrase)
    assert got.found, phrase
    assert got.class_name == expected, (phrase, got)
    if plural is not None:
        assert got.plural == plural, (phrase, got)
    assert 0.0 < got.score <= 1.0


@pytest.mark.parametrize("phrase", NEGATIVES)
def test_camvid_negatives(camvid: ClassGrounder, phrase: str):
    got = _ground(camvid, phrase)
    assert not got.found, (phrase, got)
    assert got.class_index == -1 and got.class_name == ""


def test_scores_rank_match_kinds(camvid: ClassGrounder):
    exact = _ground(camvid, "car")
    synonym = _ground(camvid, "automobile")
    spelling = _ground(camvid, "automobil")
    assert exact.score == 1.0 and exact.kind == "exact"
    assert synonym.kind == "synonym" and spelling.kind == "spelling"
    assert exact.score > synonym.score > spelling.score


def test_closest_class_is_reported_without_embeddings(camvid: ClassGrounder):
    got = _ground(camvid, "cup")
    assert got.closest is not None and got.closest[0] in CAMVID_CLASSES
    assert got.closest_kind == "spelling"


def test_lexicon_maps_only_onto_present_classes():
    camvid = ClassGrounder(CAMVID_CLASSES)
    coco = ClassGrounder(COCO_CLASSES)
    ade = ClassGrounder(ADE20K_CLASSES)
    assert not _ground(camvid, "mug").found  # no cup class in CamVid
    assert _ground(coco, "mug").class_name == "cup"
    assert not _ground(ade, "mug").found  # ADE20K has no cup either
    assert not _ground(ade, "cup").found  # ... and "cup" is no synonym of its "glass"
    assert _ground(ade, "tumbler").class_name == "glass"
    # Each model keeps its own name for the same thing.
    assert _ground(camvid, "sidewalk").class_name == "pavement"
    assert _ground(ade, "pavement").class_name == "sidewalk"
    assert _ground(camvid, "bike").class_name == "bicyclist"
    assert _ground(ade, "bike").class_name == "bicycle"
    assert _ground(camvid, "truck").class_name == "car"
    assert _ground(ade, "truck").class_name == "truck"  # exact beats the synonym
    assert _ground(coco, "people").class_name == "person"
    assert _ground(ade, "tv").class_name == "television receiver"
    # Every lexicon hit is a real class of the model.
    for g in (camvid, coco, ade):
        for entry in LEXICON:
            for term in entry.terms:
                got = g.ground(normalize(term).split())
                if got.found:
                    assert got.class_name in g.class_names


def test_ade20k_multiword_and_padded_names():
    ade = ClassGrounder(ADE20K_CLASSES)
    got = _ground(ade, "the chest of drawers on the left")
    assert got.class_name == "chest of drawers"
    assert ade.parse("the chest of drawers on the left").spatial == ["left"]
    assert _ground(ade, "bed").class_name.strip() == "bed"
    assert _ground(ade, "traffic lights").class_name == "traffic light"
    assert _ground(ade, "swimming pools").class_name == "swimming pool"


def test_real_words_are_not_spelling_corrected():
    ade = ClassGrounder(ADE20K_CLASSES)
    assert _ground(ade, "fridge").class_name != "bridge"
    assert _ground(ade, "beach").class_name != "bench"
    assert not _ground(ClassGrounder(CAMVID_CLASSES), "stones").found  # not "stores" -> building


def test_head_is_before_the_preposition(camvid: ClassGrounder):
    parsed = camvid.parse("the cup on the road")
    assert parsed.head == ["cup"]
    assert parsed.context == ["road"]
    assert not camvid.ground(parsed.head).found  # a cup is asked for, not the road


def test_parse_modifiers(camvid: ClassGrounder):
    p = camvid.parse("All the RED cars on the far left, please")
    assert p.head == ["cars"] and p.colours == ["red"] and p.spatial == ["leftmost"] and p.want_all
    p = camvid.parse("the gray car in front")
    assert p.colours == ["grey"] and p.spatial == ["nearest"]
    p = camvid.parse("biggest building in the middle")
    assert p.spatial == ["largest", "middle"] and p.head == ["building"]


def test_text_helpers():
    assert normalize("  The RED_car-park!! ") == "the red car park"
    assert tokens("the car's door") == ["the", "car", "door"]
    assert within_one_edit("pedestrain", "pedestrian")
    assert within_one_edit("fense", "fence")
    assert within_one_edit("buildng", "building")
    assert not within_one_edit("car", "cart ")
    assert not within_one_edit("pedestrian", "pedestrianss")
    assert singular_candidates("people") == ["person"]
    assert "bus" in singular_candidates("buses")
    assert singular_candidates("bus") == []
    assert singular_candidates("grass") == []
    assert "city" in singular_candidates("cities")
    assert not set(STOPWORDS) & {"car", "road", "left", "red"}
    assert MAX_QUERY_CHARS >= 100
