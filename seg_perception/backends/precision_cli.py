"""``seg-perception quantize``: make a verified INT8 Q/DQ ONNX of a model (see backends.precision)."""

from __future__ import annotations

import argparse
from pathlib import Path

from seg_perception.backends.precision import DEFAULT_CALIB_IMAGES, DEFAULT_VERIFY_IMAGES, card_path, quantize_int8


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quantize",
        help="INT8 Q/DQ ONNX for ONNX Runtime CPU and TensorRT 10/11 (verified against fp32, cached)",
        description="Static INT8 quantization (QDQ, per-channel int8 weights, uint8 activations). "
        "Calibrate on train frames or robot frames, never on the test split.",
    )
    p.add_argument("--model", required=True, type=Path, help="fp32 ONNX model (metadata YAML beside it)")
    p.add_argument("--calib", required=True, type=Path, help="folder of calibration images (e.g. camvid/train)")
    p.add_argument("--out", required=True, type=Path, help="output ONNX (its .yaml and .card.yaml go beside it)")
    p.add_argument("--calib-images", type=int, default=DEFAULT_CALIB_IMAGES, help="calibration frames")
    p.add_argument("--verify-images", type=int, default=DEFAULT_VERIFY_IMAGES, help="frames compared with fp32")
    p.add_argument("--no-cache", action="store_true", help="quantize again even if a cached result exists")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    card = quantize_int8(
        args.model, args.calib, args.out, args.calib_images, args.verify_images, use_cache=not args.no_cache
    )
    ver = card.get("verification") or {}
    print(f"wrote {args.out} ({'cached' if card.get('cached') else 'quantized'}), card {card_path(args.out)}")
    if ver:
        print(
            f"vs fp32 on {ver['images']} images: label agreement {100 * ver['label_agreement']:.2f} %, "
            f"max |logit diff| {ver['max_logit_diff']:.3f}"
        )
    return 0
