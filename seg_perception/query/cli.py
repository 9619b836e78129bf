"""Subcommand ``seg-perception query``: answer a language query on one image, without ROS.

    seg-perception query --image IMG --text "the red car on the left" [--model PATH] --out mask.png

The image is segmented with the same model loading as the node (``ModelSpec.for_model``,
backend selection, ``Segmenter``), then ``QueryEngine`` answers. With ``--labels`` a
label image (mono8 class ids) replaces the model run, e.g. to query ground truth.
The mask PNG (mono8, 255 = selected, image size) is written whether or not something
was found. Exit code: 0 found, 1 nothing found, 2 error.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.backends.cli import add_model_args
from seg_perception.errors import ConfigError, ImageError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``query`` subcommand."""
    p = subparsers.add_parser(
        "query",
        help="mask of what a phrase names in an image (e.g. 'the red car on the left')",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--image", required=True, help="input image (PNG/JPEG)")
    p.add_argument("phrase", nargs="?", default=None, help='the query (same as --text), e.g. "the red cup"')
    p.add_argument("--text", default=None, help='the query, e.g. "cup", "all pedestrians"')
    p.add_argument(
        "--out", default="query_mask.png", help="output mask PNG (mono8, 255 = selected; default query_mask.png)"
    )
    p.add_argument(
        "--annotated", default=None, help="annotated picture PNG (default: the mask path with _annotated before .png)"
    )
    add_model_args(p)
    p.add_argument("--labels", default=None, help="use this label image (mono8 class ids) instead of running a model")
    p.add_argument("--classes", default=None, help="comma-separated class names for --labels (default: the model's)")
    p.add_argument(
        "--embeddings", default="auto", help="sentence embeddings: auto (default), on (required), off (lexicon only)"
    )
    p.add_argument(
        "--detector", default="auto", help="object detector for cup, bottle, ...: auto (if fetched, default) or off"
    )
    p.add_argument("--json", default=None, help="also write the answer fields to this JSON file")
    p.set_defaults(func=_cmd_query)


def _read_rgb(path: str) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_labels(path: str) -> np.ndarray:
    import cv2

    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise ImageError(f"cannot read label image {path}")
    if labels.ndim == 3:
        if labels.shape[2] == 1 or (np.array_equal(labels[..., 0], labels[..., 1])):
            labels = labels[..., 0]
        else:
            raise ImageError(f"label image {path} has colour channels; expected mono8 class ids")
    return labels


def _write_mask(path: str, mask: np.ndarray) -> None:
    import cv2

    out = Path(path)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), mask):
        raise ImageError(f"cannot write mask {out}")


def _write_annotated(path: str, rgb: np.ndarray, answer: Any) -> None:
    """The image with the mask tinted green, the roi drawn and the matched class written (PNG)."""
    import cv2

    from seg_perception.query.tabletop import annotate

    _write_mask(path, cv2.cvtColor(annotate(rgb, answer), cv2.COLOR_RGB2BGR))


def _model_classes(model: str | None) -> tuple[str, ...]:
    from seg_perception.model_spec import ModelSpec, default_model_path

    path = Path(model).expanduser() if model else default_model_path()
    return tuple(ModelSpec.for_model(path).class_names)


def _segment(
    rgb: np.ndarray, model: str | None, backend: str
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...], dict]:
    """(labels, confidence, class names, info) of ``rgb`` with the node's model loading."""
    from seg_perception.backends.select import select_backend
    from seg_perception.errors import ModelError
    from seg_perception.model_spec import ModelSpec, default_model_path
    from seg_perception.pipeline import Segmenter

    if model:
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
    else:
        path = default_model_path()
        if not path.is_file():
            raise ModelError(f"the bundled default model {path} is not there yet; pass --model PATH")
    spec = ModelSpec.for_model(path)
    selection = select_backend(backend, path)
    with selection.backend as be:
        seg = Segmenter(be, spec).segment(rgb, want_confidence=True)
        info = {"model": str(path), "backend": be.description, "segment_ms": seg.timings}
    return seg.labels, seg.confidence, tuple(spec.class_names), info


def _cmd_query(args: argparse.Namespace) -> int:
    from seg_perception.query.engine import QueryEngine

    text = args.text if args.text is not None else args.phrase
    if not text:
        raise ConfigError("give the query as an argument or with --text")
    args.text = text
    rgb = _read_rgb(args.image)
    info: dict[str, Any] = {}
    confidence = None
    if args.labels:
        labels = _read_labels(args.labels)
        if labels.shape[:2] != rgb.shape[:2]:
            raise ImageError(
                f"label image is {labels.shape[1]}x{labels.shape[0]} but the image is {rgb.shape[1]}x{rgb.shape[0]}"
            )
        if args.classes:
            classes = tuple(c.strip() for c in args.classes.split(",") if c.strip())
        else:
            classes = _model_classes(args.model)
    else:
        if args.classes:
            raise ConfigError("--classes only applies with --labels (a model brings its own class names)")
        labels, confidence, classes, info = _segment(rgb, args.model, args.backend)

    detector = None if str(args.detector).lower() in ("off", "none", "false") else "auto"
    engine = QueryEngine(classes, use_embeddings=args.embeddings, detector=detector)
    log.info("query embeddings: %s", engine.embedding_status)
    answer = engine.answer(args.text, rgb, labels, confidence)
    _write_mask(args.out, answer.mask)
    annotated = args.annotated or str(Path(args.out).with_name(Path(args.out).stem + "_annotated.png"))
    _write_annotated(annotated, rgb, answer)
    print(answer.message)
    x, y, w, h = answer.roi
    print(f"mask: {args.out} ({answer.pixel_count} px, roi x={x} y={y} w={w} h={h}); picture: {annotated}")
    if args.json:
        record = {
            "query": args.text,
            "found": answer.found,
            "message": answer.message,
            "matched_class": answer.matched_class,
            "score": answer.score,
            "roi": list(answer.roi),
            "pixel_count": answer.pixel_count,
            "instances": answer.instances,
            "selected": answer.selected,
            "match_kind": answer.match_kind,
            "mask_confidence": answer.mask_confidence,
            "query_ms": answer.elapsed_ms,
            "embeddings": engine.embedding_status,
            **info,
        }
        Path(args.json).write_text(json.dumps(record, indent=2, default=str) + "\n")
    return 0 if answer.found else 1
