"""``voxloop experiment analyze``: an experiment's verdict straight from the turn log.

Wired into ``voxloop.cli`` with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from voxloop.errors import option_names
from voxloop.log.command import LOG_RANGE_OPTIONS, add_log_range
from voxloop.log.kpi import counted

__all__ = ["register"]


def cmd_analyze(args: argparse.Namespace) -> int:
    from voxloop.experiments.analyze import format_result
    from voxloop.experiments.config import load_config
    from voxloop.experiments.from_log import analyze_log

    config = load_config(args.config)
    names = [args.experiment] if args.experiment else [e.name for e in config.experiments]
    results = []
    for name in names:
        with option_names(LOG_RANGE_OPTIONS):
            analysis = analyze_log(
                args.log,
                config[name],
                since=args.since,
                until=args.until,
                pre_days=args.pre_days,
                engine=args.engine,
                master=args.master,
            )
        results.append(analysis)
    if args.json:
        print(json.dumps([a.to_dict() for a in results], ensure_ascii=False, indent=2))
        return 0
    for analysis in results:
        print(format_result(analysis.result))
        if analysis.mixed_users:
            print(
                f"note: {analysis.mixed_users} user(s) were logged under more than one arm "
                "and are left out (did the experiment file change mid-test?)"
            )
        if analysis.armless_turns:
            print(
                f"note: left out {counted(analysis.armless_turns, 'turn')} of the experiment "
                "logged without an arm"
            )
        print()
    return 0


def register(sub: Any) -> None:
    """Add ``experiment`` (``analyze``) to the ``voxloop`` command's subparsers."""
    experiment = sub.add_parser("experiment", help="A/B experiments over the turn log")
    commands = experiment.add_subparsers(dest="experiment_command", required=True, metavar="SUB")
    p = commands.add_parser("analyze", help="lift, CI, SRM and a verdict per experiment")
    add_log_range(p)
    p.add_argument("--config", required=True, help="the experiments TOML the server used")
    p.add_argument("--experiment", help="analyse only this experiment (default: all)")
    p.add_argument("--pre-days", type=int, default=14,
                   help="days before --since that CUPED metrics read (default 14)")  # fmt: skip
    p.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb",
                   help="SQL engine (default duckdb)")  # fmt: skip
    p.add_argument("--master", help="Spark master (local[2], spark://host:7077, yarn)")
    p.add_argument("--json", action="store_true", help="the results as JSON")
    p.set_defaults(func=cmd_analyze)
