"""The privacy commands: ``voxloop log retain``, ``voxloop log forget`` and the
``--dp-*`` options of ``voxloop kpi``. Each parses its arguments and makes one library call.

Wired in by ``voxloop.log.command`` (`register_log_commands`, `add_dp_options`, `cmd_dp_kpi`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

__all__ = ["add_dp_options", "cmd_dp_kpi", "register_log_commands"]


def cmd_retain(args: argparse.Namespace) -> int:
    from voxloop.log.kpi import counted
    from voxloop.log.store import parse_day
    from voxloop.privacy.retention import retain

    today = parse_day(args.today, key="--today")
    result = retain(args.log, args.days, today=today, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print(
            f"{verb} {counted(len(result.partitions), 'day partition')} before "
            f"{result.cutoff} ({counted(result.files, 'file')}, {counted(result.rows, 'row')})"
        )
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from voxloop.log.kpi import counted
    from voxloop.privacy.retention import forget

    user = args.user
    if args.redact is not None:  # the log stores ids hashed: forget the hashed id
        from voxloop.privacy import Redactor, load_redaction_config

        redactor = Redactor(load_redaction_config(args.redact))
        if redactor.config.action("user_id") == "hash":
            user = redactor.hash_id(user) or user
    result = forget(args.log, user, check_hashed=args.redact is None)
    if not (result.turns or result.feedback):  # a user with no data: nothing to do
        salt = (
            " — with --redact, the id is hashed with the salt in the environment now: is it "
            "the one the server hashed with?"
            if user != args.user
            else ""
        )
        print(
            "voxloop: note: --user matches no turn or feedback event of the log; nothing "
            f"was removed (the request is logged in privacy_audit.jsonl){salt}",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print(
            f"removed {counted(result.turns, 'turn')} and "
            f"{counted(result.feedback, 'feedback event')} (rewrote "
            f"{counted(len(result.files_rewritten), 'file')}, deleted "
            f"{len(result.files_deleted)}); logged in privacy_audit.jsonl"
        )
    return 0


def register_log_commands(log: Any) -> None:
    """Add ``retain`` and ``forget`` to the ``voxloop log`` subcommands."""
    retain = log.add_parser("retain", help="delete day partitions older than --days")
    retain.add_argument("--log", required=True, help="log directory")
    retain.add_argument("--days", required=True, type=int, help="days to keep (today included)")
    retain.add_argument("--today", help="YYYY-MM-DD (default: today, UTC)")
    retain.add_argument("--dry-run", action="store_true", help="only say what would go")
    retain.add_argument("--json", action="store_true", help="the result as one JSON object")
    retain.set_defaults(func=cmd_retain)

    forget = log.add_parser("forget", help="remove one user's turns and feedback")
    forget.add_argument("--log", required=True, help="log directory")
    forget.add_argument("--user", required=True, help="the user id")
    forget.add_argument(
        "--redact",
        metavar="CONFIG",
        help="the server's redaction config: hash the id as the log stores it",
    )
    forget.add_argument("--json", action="store_true", help="the result as one JSON object")
    forget.set_defaults(func=cmd_forget)


def add_dp_options(kpi: argparse.ArgumentParser) -> None:
    """The ``--dp-*`` options of ``voxloop kpi``."""
    kpi.add_argument(
        "--dp-epsilon",
        type=float,
        metavar="E",
        help="release differentially private KPIs spending E of the log's budget",
    )
    kpi.add_argument(
        "--dp-delta",
        type=float,
        default=None,
        metavar="D",
        help="delta of the Gaussian mechanism (default 1e-6)",
    )
    kpi.add_argument("--dp-mechanism", choices=["laplace", "gaussian"], default="laplace",
                     help="noise of the release (default laplace)")  # fmt: skip
    kpi.add_argument(
        "--dp-max-turns",
        type=int,
        default=10,
        metavar="K",
        help="turns counted per user at most (default 10)",
    )
    kpi.add_argument(
        "--dp-budget",
        type=float,
        default=None,
        metavar="E",
        help="total epsilon of the log, set on the first DP query (default 10)",
    )
    kpi.add_argument(
        "--dp-delta-budget",
        type=float,
        default=None,
        metavar="D",
        help="total delta of the log (Gaussian releases), set on the first DP query (default 1e-5)",
    )
    kpi.add_argument("--dp-seed", type=int, default=None, help=argparse.SUPPRESS)


def cmd_dp_kpi(args: argparse.Namespace) -> int:
    from voxloop.errors import ConfigError, option_names
    from voxloop.log.command import KPI_OPTIONS  # not at the top: it imports this module
    from voxloop.privacy.dp import DpOptions, dp_kpis, format_dp_kpis

    if getattr(args, "engine", "duckdb") != "duckdb":
        raise ConfigError("differentially private KPIs run on DuckDB only", key="--engine")

    options = DpOptions(
        epsilon=args.dp_epsilon,
        delta=args.dp_delta,
        mechanism=args.dp_mechanism,
        max_turns_per_user=args.dp_max_turns,
    )
    with option_names(KPI_OPTIONS):
        result = dp_kpis(
            args.log,
            options,
            by=args.by,
            since=args.since,
            until=args.until,
            low_confidence=args.low_confidence,
            budget=args.dp_budget,
            delta_budget=args.dp_delta_budget,
            seed=args.dp_seed,
        )
    if args.json:  # (a slice by day has dates as keys: ISO strings in JSON)
        print(json.dumps(result, ensure_ascii=False, default=str))
    else:
        print(format_dp_kpis(result))
    return 0
