"""``seg-perception``: the command line (no ROS runtime needed).

Subcommands live in the modules listed in SUBCOMMAND_MODULES; each exposes
``register(subparsers)`` and sets ``func=handler`` on its parser(s), where
``handler(args) -> int`` returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from seg_perception.errors import SegPerceptionError

SUBCOMMAND_MODULES = (
    "seg_perception.evaluation.cli",  # eval, make-bag, eval-bag, demo
    "seg_perception.training.cli",  # train, export, bench
    "seg_perception.query.cli",  # query
    "seg_perception.backends.cli",  # build-engine
    "seg_perception.backends.precision_cli",  # quantize
    "seg_perception.geometry.cli",  # grid tools
    "seg_perception.detection.fetch",  # fetch-models
    "seg_perception.evaluation.fleet_cli",  # eval-bags (Ray)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seg-perception",
        description="Semantic segmentation for robots: evaluation, bags, training, queries, demo.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            # A subcommand module that is not part of this install is skipped; an import
            # error *inside* an existing module is a bug and propagates.
            if err.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Subcommands that wrap another argument parser (train, export) take the arguments they do not declare.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if not getattr(args, "passthrough", False):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.rest = list(getattr(args, "rest", []) or []) + unknown
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SegPerceptionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
