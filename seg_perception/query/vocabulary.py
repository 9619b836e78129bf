"""Class-name lists of well-known models (ADE20K, COCO) and the open-vocabulary "anchor" words.

``ANCHOR_WORDS`` (COCO's 80 and ADE20K's 150 names and a few more) that are not classes of
the loaded model are its known non-classes for the embedding rule (docs/query.md).
"""

from __future__ import annotations

# SegFormer / MMSeg ADE20K-150 names (id order).
ADE20K_CLASSES = tuple(
    " ".join(n.split())
    for n in """
    wall, building, sky, floor, tree, ceiling, road, bed, windowpane, grass, cabinet, sidewalk, person,
    earth, door, table, mountain, plant, curtain, chair, car, water, painting, sofa, shelf, house, sea,
    mirror, rug, field, armchair, seat, fence, desk, rock, wardrobe, lamp, bathtub, railing, cushion,
    base, box, column, signboard, chest of drawers, counter, sand, sink, skyscraper, fireplace,
    refrigerator, grandstand, path, stairs, runway, case, pool table, pillow, screen door, stairway,
    river, bridge, bookcase, blind, coffee table, toilet, flower, book, hill, bench, countertop, stove,
    palm, kitchen island, computer, swivel chair, boat, bar, arcade machine, hovel, bus, towel, light,
    truck, tower, chandelier, awning, streetlight, booth, television receiver, airplane, dirt track,
    apparel, pole, land, bannister, escalator, ottoman, bottle, buffet, poster, stage, van, ship,
    fountain, conveyer belt, canopy, washer, plaything, swimming pool, stool, barrel, basket, waterfall,
    tent, bag, minibike, cradle, oven, ball, food, step, tank, trade name, microwave, pot, animal,
    bicycle, lake, dishwasher, screen, blanket, sculpture, hood, sconce, vase, traffic light, tray,
    ashcan, fan, pier, crt screen, plate, monitor, bulletin board, shower, radiator, glass, clock, flag""".split(",")
    if n.strip()
)

COCO_CLASSES = tuple(
    " ".join(n.split())
    for n in """
    person, bicycle, car, motorcycle, airplane, bus, train, truck, boat, traffic light, fire hydrant,
    stop sign, parking meter, bench, bird, cat, dog, horse, sheep, cow, elephant, bear, zebra, giraffe,
    backpack, umbrella, handbag, tie, suitcase, frisbee, skis, snowboard, sports ball, kite,
    baseball bat, baseball glove, skateboard, surfboard, tennis racket, bottle, wine glass, cup, fork,
    knife, spoon, bowl, banana, apple, sandwich, orange, broccoli, carrot, hot dog, pizza, donut, cake,
    chair, couch, potted plant, bed, dining table, toilet, tv, laptop, mouse, remote, keyboard,
    cell phone, microwave, oven, toaster, sink, refrigerator, book, clock, vase, scissors, teddy bear,
    hair drier, toothbrush""".split(",")
    if n.strip()
)

_EXTRA = """
    drawer, shoe, hat, glove, box, ladder, bucket, broom, hose, tyre, wheel, roof, chimney, balcony,
    statue, fountain, puddle, snow, leaf, trolley, cart, pram, stroller, wheelchair, scooter, skateboard,
    helmet, camera, robot, drone, table lamp, lamp shade, paper, pen, plate, bowl, pan, kettle, towel,
    soap, bin bag, parcel, package, crate, pallet, forklift, shelf, tool, door handle""".split(",")

ANCHOR_WORDS = tuple(
    dict.fromkeys([*COCO_CLASSES, *ADE20K_CLASSES, *(" ".join(w.split()) for w in _EXTRA if w.strip())])
)
