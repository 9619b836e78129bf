"""A lexicon of common synonyms that maps query words onto the classes a model actually has.

Each entry is a set of words people use for one kind of thing and an ordered list of
class names a model may call it by. A query word of an entry resolves to the first
target the loaded model has, so the same lexicon serves CamVid ("pavement",
"sign_symbol", "bicyclist"), ADE20K ("sidewalk", "signboard", "bicycle") or a
COCO-like model; an entry none of whose targets exists resolves to nothing (no
made-up classes). Lists are normalised with ``text.normalize`` (lower case,
underscores/hyphens as spaces) before use.

CamVid's 11-class grouping folds related things into one class (trucks and buses
are ``car``, motorbikes and traffic lights are ``bicyclist`` and ``sign_symbol``),
which is why several entries end with a CamVid catch-all target.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LexiconEntry:
    """Words for one kind of thing (``terms``) and the class names it may map to, preferred first."""

    terms: tuple[str, ...]
    targets: tuple[str, ...]


def _entry(terms: str, targets: str) -> LexiconEntry:
    def split(text: str) -> tuple[str, ...]:
        return tuple(t.strip() for t in text.split(",") if t.strip())

    return LexiconEntry(split(terms), split(targets))


# Order matters only where a word appears in two entries: the first entry with a target
# the model has wins.
LEXICON: tuple[LexiconEntry, ...] = (
    _entry(
        "person, people, pedestrian, human, humans, man, woman, child, kid, boy, girl, baby, passerby, passer by, "
        "walker, individual, someone, somebody, guy, lady, gentleman, adult, crowd, jogger, runner, hiker",
        "person, pedestrian, people, human, persons",
    ),
    _entry(
        "car, vehicle, automobile, auto, motorcar, motor car, sedan, saloon, taxi, cab, suv, jeep, hatchback, "
        "coupe, convertible, limousine, limo, station wagon, estate car, police car, race car, sports car",
        "car, automobile, vehicle, cars",
    ),
    _entry("truck, lorry, pickup, pickup truck, semi, tractor trailer, trailer", "truck, lorry, car, vehicle"),
    _entry("bus, coach, minibus, school bus, trolleybus, tram, streetcar", "bus, car, vehicle"),
    _entry("van, minivan, camper, campervan, delivery van", "van, car, vehicle"),
    _entry(
        "motorcycle, motorbike, motor bike, scooter, moped, minibike, dirt bike",
        "motorcycle, motorbike, minibike, bicyclist, bicycle",
    ),
    _entry(
        "cyclist, bicyclist, biker, bicycle rider, bike rider, rider, motorcyclist",
        "bicyclist, cyclist, rider, person, pedestrian",
    ),
    _entry("bicycle, bike, cycle, push bike, pushbike, mountain bike", "bicycle, bike, bicyclist, cyclist"),
    _entry(
        "road, street, roadway, lane, asphalt, tarmac, carriageway, highway, motorway, freeway, avenue, route, "
        "drive, driveway, crosswalk, zebra crossing, intersection, junction",
        "road, street, roadway, route",
    ),
    _entry(
        "sidewalk, pavement, footpath, footway, walkway, curb, kerb, side walk, pedestrian path, promenade",
        "sidewalk, pavement, footpath, path",
    ),
    _entry("path, trail, track, dirt track, dirt road", "path, dirt track, sidewalk, pavement, road"),
    _entry(
        "traffic sign, sign, road sign, street sign, stop sign, signpost, signage, symbol, sign symbol, signboard, "
        "billboard, placard, speed limit sign",
        "traffic sign, sign symbol, sign, signboard, sign board",
    ),
    _entry(
        "traffic light, traffic lights, traffic signal, stoplight, stop light, signal",
        "traffic light, traffic signal, sign symbol, traffic sign",
    ),
    _entry(
        "tree, vegetation, foliage, greenery, bush, shrub, shrubbery, hedge, plant, palm, palm tree, oak, pine, "
        "leaf, leaves, canopy",
        "tree, vegetation, plant, trees",
    ),
    _entry("grass, lawn, turf, meadow", "grass, lawn, vegetation, terrain"),
    _entry("sky, clouds, cloud, heavens", "sky"),
    _entry(
        "building, house, home, facade, edifice, skyscraper, tower, apartment, apartment block, office building, "
        "storefront, shop, store, architecture, wall, bridge, tunnel",
        "building, house, edifice, buildings",
    ),
    _entry(
        "pole, post, lamppost, lamp post, street light, streetlight, street lamp, streetlamp, utility pole, "
        "telephone pole, light pole, column, pillar, bollard",
        "pole, column, streetlight, street light",
    ),
    _entry(
        "fence, fencing, railing, barrier, guardrail, guard rail, palisade, picket fence, wall fence, barricade",
        "fence, railing, guard rail, barrier",
    ),
    _entry("ground, earth, soil, dirt, land, terrain, mud", "earth, ground, terrain, land"),
    _entry("water, sea, ocean, lake, river, pond", "water, sea, lake, river"),
    _entry("floor, flooring", "floor"),
    _entry("window, windowpane, window pane, pane", "windowpane, window"),
    _entry("cup, mug, teacup, tea cup, espresso cup, coffee cup, coffee mug", "cup, coffee cup, mug"),
    _entry("glass, drinking glass, wine glass, tumbler", "glass, wine glass, cup"),
    _entry("laptop, notebook computer, notebook", "laptop"),
    _entry("computer monitor, monitor, screen, display", "computer monitor"),
    _entry("mouse, computer mouse", "computer mouse"),
    _entry("box, carton, package, cardboard box, parcel", "box"),
    _entry("shoe, sneaker, trainer, footwear", "footwear"),
    _entry("book, novel", "book"),
    _entry("bottle, flask", "bottle"),
    _entry("table, desk, coffee table, dining table", "table, dining table, desk"),
    _entry("chair, seat, stool, armchair", "chair, seat, armchair"),
    _entry("sofa, couch, settee", "sofa, couch"),
    _entry("bed, cot", "bed"),
    _entry(
        "television, tv, telly, television set, tv set, television receiver, monitor, screen, display",
        "television receiver, tv, television, tvmonitor, monitor, screen",
    ),
    _entry("laptop, notebook computer, computer", "laptop, computer"),
    _entry("phone, cell phone, cellphone, mobile phone, smartphone", "cell phone, phone"),
    _entry("bag, backpack, handbag, purse, rucksack, suitcase", "bag, backpack, handbag, suitcase"),
    _entry(
        "trash can, bin, garbage can, ashcan, dustbin, wastebasket, litter bin, rubbish bin",
        "ashcan, trash can, garbage can, bin",
    ),
    _entry("boat, ship, vessel, yacht, ferry", "boat, ship"),
    _entry("airplane, aeroplane, plane, aircraft, jet, airliner", "airplane, aeroplane"),
    _entry("dog, puppy, hound", "dog, animal"),
    _entry("cat, kitten", "cat, animal"),
    _entry("bird, pigeon, seagull", "bird, animal"),
    _entry("horse, pony", "horse, animal"),
    _entry("animal, pet", "animal"),
    _entry("door, doorway, gate", "door"),
    _entry("lamp, light, chandelier", "lamp, light"),
    _entry("rock, stone, boulder", "rock, stone"),
    _entry("bench", "bench"),
)
