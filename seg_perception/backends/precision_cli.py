"""``seg-perception quantize``: a verified INT8 Q/DQ or fp16 ONNX of a model (see backends.precision)."""

from __future__ import annotations

import argparse
from pathlib import Path

from seg_perception.backends.precision import (
    DEFAULT_CALIB_IMAGES,
    DEFAULT_VERIFY_IMAGES,
    INT8_TARGETS,
    card_path,
    quantize_int8,
)
from seg_perception.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quantize",
        help="INT8 Q/DQ or fp16 ONNX for ONNX Runtime CPU and TensorRT 10/11 (verified against fp32, cached)",
        description="int8: static quantization (QDQ, per-channel int8 weights, uint8 activations) calibrated "
        "on train or robot frames, never on the test split. fp16: fp16 weights and compute, fp32 inputs/outputs.",
    )
    p.add_argument("--model", required=True, type=Path, help="fp32 ONNX model (metadata YAML beside it)")
    p.add_argument("--precision", choices=("int8", "fp16"), default="int8", help="target precision (default int8)")
    p.add_argument("--calib", type=Path, help="folder of calibration images, e.g. camvid/train (required for int8)")
    p.add_argument("--verify-dir", type=Path, help="folder of frames compared with fp32, e.g. camvid/val (never test)")
    p.add_argument("--out", required=True, type=Path, help="output ONNX (its .yaml and .card.yaml go beside it)")
    p.add_argument("--calib-images", type=int, default=DEFAULT_CALIB_IMAGES, help="calibration frames")
    p.add_argument("--verify-images", type=int, default=DEFAULT_VERIFY_IMAGES, help="frames compared with fp32")
    p.add_argument("--no-cache", action="store_true", help="convert again even if a cached result exists")
    p.add_argument(
        "--quantize-image-conv",
        action="store_true",
        help="int8: quantize the image-fed convolution too (by default it stays float unless it feeds a MaxPool)",
    )
    p.add_argument(
        "--target",
        choices=INT8_TARGETS,
        default="onnxruntime",
        help="int8: who runs the model: onnxruntime (uint8 activations, CPU kernel rewrites; NAME_int8.onnx) or "
        "tensorrt (symmetric int8 activations, float biases, as TensorRT's parser requires; NAME_int8_trt.onnx)",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.precision == "fp16":
        from seg_perception.backends.precision_fp16 import convert_fp16

        card = convert_fp16(
            args.model, args.out, args.verify_dir or args.calib, args.verify_images, use_cache=not args.no_cache
        )
    else:
        if args.calib is None:
            raise ConfigError("quantize --precision int8 needs --calib DIR (train or robot frames, never test)")
        card = quantize_int8(
            args.model,
            args.calib,
            args.out,
            args.calib_images,
            args.verify_images,
            use_cache=not args.no_cache,
            verify_dir=args.verify_dir,
            keep_image_conv_float=False if args.quantize_image_conv else None,
            target=args.target,
        )
    ver = card.get("verification") or {}
    print(f"wrote {args.out} ({'cached' if card.get('cached') else 'converted'}), card {card_path(args.out)}")
    if ver:
        print(
            f"vs fp32 on {ver['images']} images: label agreement {100 * ver['label_agreement']:.2f} %, "
            f"max |logit diff| {ver['max_logit_diff']:.3f}"
        )
    return 0
