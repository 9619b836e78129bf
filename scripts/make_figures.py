"""Write the README's manipulation pictures as SVG text: ``docs/figures/manipulation.svg``.

    python scripts/make_figures.py [--out docs/figures/manipulation.svg]

Real answers of the query engine the service runs (segmentation classes of the default
model, detector classes from the fetched Objectron detector) on scikit-image's photos, and
on three copies of the coffee cup pasted on a table cut from the same photo. The labels come
from the default model through the Segmenter (one data path). See seg_perception/tools/svg_picture.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from seg_perception.backends import create_backend
from seg_perception.model_spec import ModelSpec, default_model_path
from seg_perception.pipeline import Segmenter
from seg_perception.query import QueryEngine
from seg_perception.query.tabletop import bundled_photo, tabletop_answers
from seg_perception.tools.svg_picture import Panel, sheet_svg

SHOTS = (
    ("coffee", "the red cup"),
    ("coffee", "the blue cup"),
    ("chelsea", "cat"),
    ("motorcycle_left", "the red box"),
    ("cups", "the biggest cup"),
    ("cups", "the cup on the right"),
)


def _table() -> np.ndarray:
    """360x480 of table: the bottom strip of the coffee photo, stretched."""
    return cv2.resize(bundled_photo("coffee")[310:400, 0:600], (480, 360), interpolation=cv2.INTER_CUBIC)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/figures/manipulation.svg")
    args = ap.parse_args()
    model = default_model_path()
    spec = ModelSpec.for_model(model)
    engine = QueryEngine(spec.class_names, use_embeddings=False)
    panels = []
    with create_backend("onnxruntime", model, num_threads=2) as backend:
        seg = Segmenter(backend, spec)
        for photo, phrase, rgb, ans in tabletop_answers(engine, SHOTS, _table(), lambda im: seg.segment(im).labels):
            if rgb is None:
                raise SystemExit(f"{photo}: {ans}")
            verdict = f"{ans.matched_class} {ans.score:.2f}" if ans.found else "not found"
            captions = [f'"{phrase}"', verdict]
            if not ans.found and "seen:" in ans.message:
                captions.append("seen: " + ans.message.split("seen: ")[1].split(";")[0].rstrip(")"))
            print(f"{photo:10s} {phrase!r}: {ans.message}")
            panels.append(Panel(rgb, ans.mask > 0 if ans.found else None, ans.roi if ans.found else None, captions))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(sheet_svg(panels))
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
