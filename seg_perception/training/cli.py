"""``seg-perception train`` and ``seg-perception export`` (torch; never imported by the node)."""

from __future__ import annotations

import argparse


def _train(args: argparse.Namespace) -> int:
    from seg_perception.training.train import main

    return main(args.rest)


def _export(args: argparse.Namespace) -> int:
    if args.segformer:
        from pathlib import Path

        from seg_perception.training.export import export_segformer

        out = Path(args.out or "segformer.onnx")
        res = export_segformer(args.segformer, out, out.with_suffix(".yaml"))
        print({k: v for k, v in res.items() if k != "card"})
        return 0
    from seg_perception.training.export import main

    return main(args.rest + (["--out", args.out] if args.out else []))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the CamVid model (config/train_camvid.yaml; --resume continues)",
        add_help=False,
        description="Arguments are those of `python -m seg_perception.training.train --help`.",
    )
    p.set_defaults(func=_train, passthrough=True, rest=[])
    e = subparsers.add_parser(
        "export",
        help="checkpoint -> ONNX + YAML, verified against torch (or --segformer DIR for a Hugging Face SegFormer)",
    )
    e.add_argument("--segformer", default=None, help="local Hugging Face SegFormer checkpoint folder")
    e.add_argument("--out", default=None, help="output .onnx (YAML beside it)")
    e.set_defaults(func=_export, passthrough=True, rest=[])
    e.epilog = "Other arguments (--checkpoint PATH, --config, --verify-n) go to seg_perception.training.export."
