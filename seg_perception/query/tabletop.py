"""Tabletop queries on real photos: scikit-image's bundled photos and the coffee cup pasted at known places.

Used by ``make demo`` (``demo_output/tabletop/``), the README's pictures
(``scripts/make_figures.py``) and the composite tests. Images are HxWx3 uint8 RGB; boxes
are (x, y, width, height) in pixels.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.errors import ImageError

__all__ = [
    "CUP_LAYOUT",
    "TABLETOP_QUERIES",
    "Composite",
    "annotate",
    "bundled_photo",
    "coffee_cup",
    "cup_polygon_mask",
    "paste_cups",
    "run_tabletop",
    "tabletop_answers",
]

#: the hand-annotated cup of scikit-image's ``coffee`` photo (committed test data)
CUP_POLYGON = Path(__file__).resolve().parents[2] / "test" / "query" / "coffee_cup_polygon.json"
COFFEE_SHAPE = (400, 600)  # H, W of scikit-image's coffee photo, on which the polygon is drawn
#: (photo, phrase): what ``make demo`` asks of the bundled photos
TABLETOP_QUERIES: tuple[tuple[str, str], ...] = (
    ("coffee", "cup"),
    ("coffee", "the red cup"),
    ("coffee", "the blue cup"),
    ("coffee", "dog"),
    ("chelsea", "cat"),
    ("astronaut", "person"),
    ("motorcycle_left", "the red box"),
    ("cups", "the cup on the left"),
    ("cups", "the biggest cup"),
    ("cups", "the cup on the right"),
    ("cups", "all cups"),
)
#: (x, y, height) of the three cups pasted on a 360x480 frame, left to right; the middle one is the biggest
CUP_LAYOUT: tuple[tuple[int, int, int], ...] = ((15, 190, 120), (175, 150, 150), (345, 200, 110))


def bundled_photo(name: str) -> np.ndarray:
    """A photo bundled with scikit-image: ``coffee``, ``chelsea``, ``astronaut``, ``motorcycle_left``, ...

    Raises:
        ImageError: scikit-image is missing or has no such photo.
    """
    try:
        from skimage import data
    except ImportError as err:
        raise ImageError("the bundled photos need scikit-image (pip install scikit-image)") from err
    if name == "motorcycle_left":
        return np.ascontiguousarray(data.stereo_motorcycle()[0])
    loader = getattr(data, name, None)
    if loader is None:
        raise ImageError(f"scikit-image has no photo {name!r}")
    return np.ascontiguousarray(np.asarray(loader())[..., :3])


def cup_polygon_mask(polygon: Path = CUP_POLYGON) -> np.ndarray:
    """HxW bool mask of the hand-annotated cup on ``coffee`` (400x600).

    Raises:
        ImageError: the polygon file is missing or malformed.
    """
    import cv2

    try:
        poly = np.asarray(json.loads(polygon.read_text())["polygon_xy"], np.int32)
    except (OSError, KeyError, ValueError) as err:
        raise ImageError(f"cannot read the cup polygon {polygon}: {err}") from err
    mask = np.zeros(COFFEE_SHAPE, np.uint8)
    cv2.fillPoly(mask, [poly], 1)
    return mask > 0


def coffee_cup(polygon: Path = CUP_POLYGON) -> tuple[np.ndarray, np.ndarray]:
    """(crop HxWx3 uint8, mask HxW bool) of the cup in ``coffee``, cut along the hand polygon."""
    import cv2

    mask = cup_polygon_mask(polygon)
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    return bundled_photo("coffee")[y : y + h, x : x + w].copy(), mask[y : y + h, x : x + w]


@dataclass
class Composite:
    """A frame with pasted cups: the image, each cup's box (x, y, w, h) and HxW bool mask, left to right."""

    rgb: np.ndarray
    boxes: list[tuple[int, int, int, int]]
    masks: list[np.ndarray]


def paste_cups(background: np.ndarray, layout: tuple[tuple[int, int, int], ...] = CUP_LAYOUT) -> Composite:
    """Paste the coffee cup at each (x, y, height) of ``layout`` (aspect kept, area resampling).

    Raises:
        ImageError: a cup would not fit inside ``background``.
    """
    import cv2

    crop, crop_mask = coffee_cup()
    rgb = np.array(background[..., :3], np.uint8, copy=True)
    boxes, masks = [], []
    for px, py, ph in layout:
        pw = int(round(crop.shape[1] * ph / crop.shape[0]))
        if px < 0 or py < 0 or px + pw > rgb.shape[1] or py + ph > rgb.shape[0]:
            raise ImageError(f"a {pw}x{ph} cup at ({px}, {py}) does not fit a {rgb.shape[1]}x{rgb.shape[0]} frame")
        pasted = cv2.resize(crop, (pw, ph), interpolation=cv2.INTER_AREA)
        keep = cv2.resize(crop_mask.astype(np.uint8), (pw, ph), interpolation=cv2.INTER_NEAREST) > 0
        rgb[py : py + ph, px : px + pw][keep] = pasted[keep]
        full = np.zeros(rgb.shape[:2], bool)
        full[py : py + ph, px : px + pw] = keep
        boxes.append((px, py, pw, ph))
        masks.append(full)
    return Composite(rgb, boxes, masks)


def annotate(rgb: np.ndarray, answer: Any, title: str = "") -> np.ndarray:
    """The picture of an answer: mask tinted green, roi drawn, class and score (or "not found") written."""
    import cv2

    out = np.array(rgb[..., :3], np.uint8, copy=True)
    if answer.found and answer.mask.shape == rgb.shape[:2]:
        sel = answer.mask > 0
        out[sel] = (0.5 * out[sel] + 0.5 * np.array([0, 255, 0])).astype(np.uint8)
        x, y, w, h = answer.roi
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), (0, 255, 0), 2)
    label = f"{answer.matched_class} {answer.score:.2f}" if answer.found else "not found"
    for row, text in enumerate(t for t in (title, label) if t):
        org = (8, 24 + 26 * row)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 0), 2)
    return out


def _sheet(pictures: list[np.ndarray], height: int = 240, per_row: int = 4) -> np.ndarray:
    """Pictures resized to ``height`` and tiled ``per_row`` to a row, rows padded black."""
    import cv2

    tiles = [cv2.resize(p, (int(round(p.shape[1] * height / p.shape[0])), height)) for p in pictures]
    rows = []
    for i in range(0, len(tiles), per_row):
        row = np.concatenate(tiles[i : i + per_row], axis=1)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(rows, axis=0)


def tabletop_answers(
    engine: Any,
    shots: tuple[tuple[str, str], ...] = TABLETOP_QUERIES,
    background: np.ndarray | None = None,
    segment: Any = None,
) -> Iterator[tuple[str, str, np.ndarray | None, Any]]:
    """(photo, phrase, rgb, answer) per shot; rgb and answer are None with an ImageError message instead.

    Photo "cups" is the coffee cup pasted at ``CUP_LAYOUT`` on ``background`` (shots on it are
    skipped without one). ``segment`` (RGB -> HxW labels, e.g. ``Segmenter.segment(...).labels``)
    gives the segmentation classes their pixels; without it the labels are all class 0.
    """
    photos: dict[str, np.ndarray | str] = {}
    for photo, phrase in shots:
        if photo == "cups" and background is None:
            continue
        if photo not in photos:
            try:
                photos[photo] = paste_cups(background).rgb if photo == "cups" else bundled_photo(photo)
            except ImageError as err:
                photos[photo] = str(err)
        rgb = photos[photo]
        if isinstance(rgb, str):
            yield photo, phrase, None, rgb
            continue
        labels = segment(rgb) if segment is not None else np.zeros(rgb.shape[:2], np.uint8)
        yield photo, phrase, rgb, engine.answer(phrase, rgb, labels)


def run_tabletop(
    engine: Any, out: Path, background: np.ndarray | None = None, segment: Any = None
) -> list[dict[str, Any]]:
    """Ask ``TABLETOP_QUERIES`` (see ``tabletop_answers``); annotated PNGs and ``sheet.png`` in ``out``.

    ``engine`` is a ``QueryEngine`` (the service's); ``background`` is a 360x480 RGB frame
    (e.g. CamVid) for the pasted cups. Returns one dict per query: photo, query, found,
    matched_class, score, roi, message, picture (or photo, query, error).
    """
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    results, pictures = [], []
    for i, (photo, phrase, rgb, ans) in enumerate(tabletop_answers(engine, TABLETOP_QUERIES, background, segment)):
        if rgb is None:
            results.append({"photo": photo, "query": phrase, "error": ans})
            continue
        pic = annotate(rgb, ans, f'"{phrase}"')
        path = out / f"{i:02d}_{photo}_{'_'.join(phrase.split())}.png"
        cv2.imwrite(str(path), pic[..., ::-1])
        pictures.append(pic)
        results.append(
            {
                "photo": photo,
                "query": phrase,
                "found": bool(ans.found),
                "matched_class": ans.matched_class,
                "score": round(float(ans.score), 3),
                "roi": list(ans.roi),
                "message": ans.message,
                "picture": str(path),
            }
        )
    if pictures:
        cv2.imwrite(str(out / "sheet.png"), _sheet(pictures)[..., ::-1])
    (out / "tabletop.json").write_text(json.dumps(results, indent=2))
    return results
