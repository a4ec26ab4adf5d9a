"""The ``voxloop kpi``, ``voxloop log sql``, ``voxloop log generate`` and ``voxloop report``
commands: each parses its arguments and makes one call into the library.

Wired into ``voxloop.cli`` with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from voxloop.errors import ConfigError, option_names
from voxloop.privacy.command import add_dp_options, register_log_commands

__all__ = ["KPI_OPTIONS", "LOG_RANGE_OPTIONS", "add_log_range", "register"]

# The library parameter behind each option, for its errors (`voxloop.errors.option_names`):
# the day range of every command that takes `add_log_range`, and `voxloop kpi`'s options.
LOG_RANGE_OPTIONS = {"since": "--since", "until": "--until"}
KPI_OPTIONS = {
    **LOG_RANGE_OPTIONS,
    "by": "--by",
    "low_confidence": "--low-confidence",
    "rephrase_window_s": "--rephrase-window",
    "rephrase_similarity": "--rephrase-similarity",
    "rephrase_quick_s": "--rephrase-quick",
    "top_k": "--top",
}


def add_log_range(p: argparse.ArgumentParser) -> None:
    """``--log`` (required) and the ``--since`` / ``--until`` day range over it."""
    p.add_argument("--log", required=True, help="log directory (`voxloop serve --log-dir`)")
    p.add_argument("--since", help="first day, YYYY-MM-DD (inclusive)")
    p.add_argument(
        "--until",
        help="last day, YYYY-MM-DD (inclusive; a turn's rephrase on a later day is not seen, "
        "its feedback up to a day later is)",
    )


def cmd_kpi(args: argparse.Namespace) -> int:
    from voxloop.log.kpi import compute_kpis, format_kpis, kpis_to_json

    if getattr(args, "dp_epsilon", None) is not None:
        from voxloop.privacy.command import cmd_dp_kpi

        return cmd_dp_kpi(args)

    with option_names(KPI_OPTIONS):
        kpis = compute_kpis(
            args.log,
            since=args.since,
            until=args.until,
            by=args.by,
            low_confidence=args.low_confidence,
            rephrase_window_s=args.rephrase_window,
            rephrase_similarity=args.rephrase_similarity,
            rephrase_quick_s=args.rephrase_quick,
            top_k=args.top,
            engine=args.engine,
            master=args.master,
        )
    if "summary" in kpis and not kpis["summary"].column("turns")[0].as_py():
        span = ""
        if args.since or args.until:
            span = f" from {args.since or 'the start'} to {args.until or 'the end'}"
        print(f"voxloop: warning: no turns in {args.log}{span}", file=sys.stderr)
    if args.json:
        print(json.dumps(kpis_to_json(kpis, log=args.log, engine=args.engine), ensure_ascii=False))
    else:
        print(format_kpis(kpis))
    return 0


def cmd_log_sql(args: argparse.Namespace) -> int:
    from voxloop.log.kpi import format_table, kpis_to_json
    from voxloop.log.store import LogStore

    if not args.query.strip():
        raise ConfigError("is empty; give one SQL query, e.g. 'SELECT COUNT(*) FROM turns'",
                          key="query")  # fmt: skip
    if args.limit < 1:
        raise ConfigError(f"must be at least 1, got {args.limit} (--json prints every row)",
                          key="--limit")  # fmt: skip
    table = LogStore(args.log, since=args.since, until=args.until).sql(args.query)
    if args.json:
        print(json.dumps(kpis_to_json({"rows": table})["rows"], ensure_ascii=False))
    else:
        print(format_table(table, limit=args.limit))
    return 0


def cmd_log_generate(args: argparse.Namespace) -> int:
    from voxloop.data import load_corpus
    from voxloop.log.generate import ModelArm, generate_log, generate_log_fast
    from voxloop.log.kpi import counted
    from voxloop.log.store import parse_day
    from voxloop.nlu.base import load_parser, read_manifest
    from voxloop.nlu.evaluate import unknown_intents

    start = parse_day(args.start, key="--start") or date(2026, 11, 1)
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise ConfigError(
            f"must be a confidence in [0, 1], got {args.threshold}", key="--threshold"
        )
    if len(args.model) > 2:
        raise ConfigError("give one --model, or two for an A/B experiment", key="model")
    utterances = load_corpus(args.data).split(args.split)
    models: list[ModelArm] = []
    folders: list[Path] = []
    for i, path in enumerate(args.model):
        manifest = read_manifest(path)
        folder = Path(path).expanduser().resolve()
        # named as `voxloop serve` names it: the manifest's version, else the folder's name
        version = str(manifest.get("version") or folder.name)
        if version in (m.model_version for m in models) and folder not in folders:
            raise ConfigError(
                f"both models are named {version!r} (a model's version, else its folder's "
                "name); train one with another --version, or give it another folder name",
                key="model",
            )
        unknown = unknown_intents(manifest.get("intents"), utterances)
        if unknown:
            print(f"voxloop: warning: {path}: {unknown}; its simulated users are misunderstood "
                  "on them", file=sys.stderr)  # fmt: skip
        models.append(ModelArm(load_parser(path), version, parse_ms=2.0 * (1 + 0.5 * i)))
        folders.append(folder)
    if args.turns:
        made = generate_log_fast(args.out, utterances, models, turns=args.turns, days=args.days,
                                 start=start, threshold=args.threshold, seed=args.seed)  # fmt: skip
    else:
        made = generate_log(args.out, utterances, models, users=args.users, days=args.days,
                            start=start, threshold=args.threshold, seed=args.seed)  # fmt: skip
    print(
        f"wrote {counted(made.turns, 'turn')} and {counted(made.feedback, 'feedback event')} "
        f"of {counted(made.users, 'user')} over {counted(made.days, 'day')} to {args.out}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from voxloop.report.html import write_report

    with option_names(LOG_RANGE_OPTIONS):
        path = write_report(args.log, args.out, since=args.since, until=args.until,
                            engine=args.engine, experiments=args.experiments)  # fmt: skip
    print(f"wrote {path}")
    return 0


def register(sub: Any) -> None:
    """Add ``kpi``, ``log`` (``sql``, ``generate``) and ``report`` to the ``voxloop``
    command's subparsers."""
    kpi = sub.add_parser("kpi", help="KPIs per domain from a turn log")
    add_log_range(kpi)
    kpi.add_argument("--by", default="domain", help="columns to slice by: domain,model_version")
    kpi.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb",
                     help="SQL engine (default duckdb)")  # fmt: skip
    kpi.add_argument("--master", help="Spark master (local[2], spark://host:7077, yarn)")
    kpi.add_argument("--low-confidence", type=float, default=0.5, help="threshold (default 0.5)")
    kpi.add_argument("--rephrase-window", type=float, default=30.0, help="seconds (default 30)")
    kpi.add_argument("--rephrase-similarity", type=float, default=0.2,
                     help="character-trigram Jaccard (default 0.2)")  # fmt: skip
    kpi.add_argument("--rephrase-quick", type=float, default=8.0,
                     help="seconds: a quick retry after a declined or low-confidence turn "
                          "counts as a rephrase at trigram similarity >= 0.05 (default 8; "
                          "0 turns it off)")  # fmt: skip
    kpi.add_argument("--top", type=int, default=10, help="rows of the top-N tables")
    kpi.add_argument("--json", action="store_true", help="one JSON object")
    kpi.set_defaults(func=cmd_kpi)
    add_dp_options(kpi)

    log = sub.add_parser("log", help="query and generate turn logs").add_subparsers(
        dest="log_command", required=True, metavar="SUBCOMMAND"
    )
    sql = log.add_parser("sql", help="run SQL over turns, feedback, turns_with_feedback")
    add_log_range(sql)
    sql.add_argument("query", help="one SQL query over those views")
    sql.add_argument("--json", action="store_true", help="every row as one JSON array")
    sql.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")
    sql.set_defaults(func=cmd_log_sql)

    gen = log.add_parser("generate", help="simulate users talking to a model; write a turn log")
    gen.add_argument("--out", required=True, help="the turn log directory to write")
    gen.add_argument("--model", required=True, action="append",
                     help="model directory (twice for an A/B experiment)")  # fmt: skip
    gen.add_argument("--data", required=True, help="FORMAT:PATH of the corpus to speak from")
    gen.add_argument("--split", default="test", help="split the users speak (default test)")
    gen.add_argument("--users", type=int, default=200, help="simulated users (default 200)")
    gen.add_argument("--days", type=int, default=7, help="days of traffic (default 7)")
    gen.add_argument("--start", help="first day, YYYY-MM-DD")
    gen.add_argument("--threshold", type=float, help="decline parses below this confidence")
    gen.add_argument("--turns", type=int, help="fast vectorised mode: about this many turns")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.set_defaults(func=cmd_log_generate)
    register_log_commands(log)

    report = sub.add_parser("report", help="one self-contained HTML page of the KPIs")
    add_log_range(report)
    report.add_argument("--out", required=True, help="the HTML page to write")
    report.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb",
                        help="SQL engine (default duckdb)")  # fmt: skip
    report.add_argument("--experiments", help="experiments TOML: add each one's analysis")
    report.set_defaults(func=cmd_report)


def main(argv: list[str] | None = None) -> int:  # for trying without cli.py
    from voxloop.errors import VoxloopError

    top = argparse.ArgumentParser(prog="voxloop")
    register(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except VoxloopError as e:
        print(f"voxloop: error: {e}", file=sys.stderr)
        return 1
