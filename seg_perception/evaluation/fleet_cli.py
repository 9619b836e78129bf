"""Subcommand ``eval-bags`` of ``seg-perception``: many bags on Ray, one merged report (see ``fleet``).

Exit code 0 when every bag was evaluated (``ok`` or ``partial``), 1 when any bag failed,
2 for usage errors (no Ray, missing model, no bags).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from seg_perception.backends.cli import add_model_args
from seg_perception.errors import ConfigError
from seg_perception.evaluation.cli import add_bag_args, report_paths, topic_overrides

#: test hook ``bag_name:after_frames:marker_path`` (see ``fleet`` module docstring)
KILL_HOOK_ENV = "SEG_PERCEPTION_FLEET_TEST_KILL"


def _bags(args: argparse.Namespace) -> list[str]:
    bags = list(args.bags)
    if args.manifest:
        try:
            lines = Path(args.manifest).read_text().splitlines()
        except OSError as err:
            raise ConfigError(f"cannot read manifest {args.manifest}: {err.strerror or err}") from err
        base = Path(args.manifest).parent
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                bags.append(str(Path(line) if Path(line).is_absolute() else base / line))
    if not bags:
        raise ConfigError("eval-bags needs BAG arguments or --manifest FILE")
    return bags


def _kill_hook() -> tuple[str, int, str] | None:
    raw = os.environ.get(KILL_HOOK_ENV)
    if not raw:
        return None
    name, after, marker = raw.split(":", 2)
    return name, int(after), marker


def _bag_table(bags: list[dict[str, Any]]) -> str:
    """The report's per-bag Markdown table."""
    from seg_perception.evaluation.report import pct

    table = ["", "## Bags", "", "| bag | status | frames | mIoU | error |", "| --- | --- | --- | --- | --- |"]
    for b in bags:
        err = (b.get("error") or "").replace("|", "/")
        table.append(f"| `{b['path']}` | {b['status']} | {b['frames']} | {pct(b.get('miou'))} | {err} |")
    return "\n".join(table) + "\n"


def _cmd_eval_bags(args: argparse.Namespace) -> int:
    from seg_perception.evaluation.bag_report import write_bag_report
    from seg_perception.evaluation.fleet import FleetOptions, import_ray, run_fleet

    import_ray()  # the one-line install hint before any work
    bags = _bags(args)
    options = FleetOptions(
        model=args.model,
        backend=args.backend,
        **topic_overrides(args),
        camera_config=args.camera_config,
        address=args.address,
        num_cpus=args.num_cpus,
        max_retries=args.max_retries,
    )
    json_path = Path(args.json)
    results_dir = Path(args.results_dir) if args.results_dir else json_path.parent / f"{json_path.stem}_bags"

    def progress(record: dict[str, Any]) -> None:
        if not args.no_progress:
            extra = f": {record['error']}" if record.get("error") else ""
            print(f"[{record['status']}] {record['path']} ({record['frames']} frames){extra}", file=sys.stderr)

    result = run_fleet(bags, options, results_dir, resume=args.resume, kill_hook=_kill_hook(), on_result=progress)
    summary = result.summary
    write_bag_report(
        summary,
        report_paths(args),
        title=f"eval-bags: {len(summary['bags'])} bags",
        confusion=result.confusion,
        latency={s: h.samples() for s, h in result.latency.items()},
        latency_title="Latency (merged histograms)",
        appendix=_bag_table(summary["bags"]),
    )
    miou = summary.get("miou")
    acc = "no ground truth" if miou is None else f"mIoU {100 * miou:.2f} %"
    lat = summary["latency_ms"].get("total", {})
    print(
        f"{len(bags)} bags ({len(result.resumed)} resumed, {summary['failed_bags']} failed), {summary['frames']} "
        f"frames: {acc}; latency median {lat.get('median', 0):.1f} ms, p95 {lat.get('p95', 0):.1f} ms -> {args.json}"
    )
    return 1 if result.any_failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval-bags`` to the ``seg-perception`` parser."""
    p = subparsers.add_parser(
        "eval-bags",
        help="evaluate many bags as Ray tasks; one merged, exact report",
        description="Each bag is one Ray task running eval-bag's evaluation on one inference thread. Confusion "
        "matrices are summed (the merged mIoU equals a serial run's), latency is merged from histograms. Per-bag "
        "results are written atomically to --results-dir; --resume skips bags already done. Ray starts locally "
        "with the machine's cores unless --address joins a cluster. Exit code 1 when any bag failed.",
    )
    p.add_argument("bags", nargs="*", help="rosbag2 folders, .mcap/.db3 files or ROS 1 .bag files")
    p.add_argument("--manifest", default=None, help="file with one bag path per line (relative to the file)")
    add_bag_args(p)
    p.add_argument("--results-dir", default=None, help="per-bag results (default: <json stem>_bags beside the JSON)")
    p.add_argument("--resume", action="store_true", help="skip bags whose result is already in --results-dir")
    p.add_argument("--address", default=None, help="Ray cluster to join ('auto' or host:port); default: local Ray")
    p.add_argument("--num-cpus", type=int, default=None, help="local Ray: CPUs to use (default: all cores)")
    p.add_argument("--max-retries", type=int, default=3, help="Ray retries of a task whose worker died (default 3)")
    add_model_args(p)
    p.add_argument("--no-progress", action="store_true", help="no per-bag lines on stderr")
    p.set_defaults(func=_cmd_eval_bags)
