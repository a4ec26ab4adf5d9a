"""Analyse an experiment straight from the turn log: `analyze_log`.

The metrics an experiment file may name are the per-user metrics of the turn log below
(`LOG_METRICS`); each has a fixed type, and the file must say the same type. One SQL
query (DuckDB or Spark, over the KPI library's ``turn_facts``) builds the per-user table —
one row per user logged in the experiment, with their arm and metric values, and for
CUPED metrics the same value over the pre-period before ``since`` — and
`sufficient_statistics_sql` reduces it to per-arm sums; the analysis never sees a user.

Users logged under more than one arm (the experiment file changed mid-test) are left out
and counted in ``LogAnalysis.mixed_users``; turns logged with the experiment but no arm are
left out and counted in ``LogAnalysis.armless_turns``; a high count is itself a finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from voxloop.errors import ConfigError
from voxloop.experiments.aggregate import statistics_from_rows, sufficient_statistics_sql
from voxloop.experiments.analyze import ExperimentResult, analyze
from voxloop.experiments.config import ExperimentConfig

__all__ = ["LOG_METRICS", "LogAnalysis", "LogMetric", "analyze_log", "per_user_sql"]


@dataclass(frozen=True, slots=True)
class LogMetric:
    """A per-user metric of the turn log: a value (mean / proportion) or numerator and
    denominator (ratio), as SQL aggregates over one user's rows of ``turn_facts``."""

    type: str
    value: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    description: str = ""


def _per_turn(flag: str, what: str) -> LogMetric:
    return LogMetric("ratio", numerator=f"SUM({flag})", denominator="COUNT(*)", description=what)


#: Every metric `analyze_log` can compute, by the name an experiment file uses.
LOG_METRICS: dict[str, LogMetric] = {
    "turns_per_user": LogMetric("mean", value="COUNT(*)", description="turns per user"),
    "had_defect": LogMetric(
        "proportion", value="MAX(defect)", description="users with at least one defect"
    ),
    "defect_rate": _per_turn("defect", "defective turns per turn"),
    "not_recognized_rate": _per_turn("not_recognized", "turns the parser declined"),
    "low_confidence_rate": _per_turn("low_confidence", "turns below the confidence bar"),
    "rephrase_rate": _per_turn("rephrased", "turns the user rephrased"),
    "barge_in_rate": _per_turn("barge_in", "turns interrupted"),
    "abandonment_rate": _per_turn("abandoned", "turns abandoned"),
    "negative_feedback_rate": _per_turn("negative_feedback", "turns with negative feedback"),
    "task_success_rate": LogMetric(
        "ratio",
        numerator="SUM(COALESCE(task_success, 0))",
        denominator="COUNT(task_success)",
        description="successful tasks per task with a success signal",
    ),
    "rating": LogMetric(
        "ratio",
        numerator="SUM(COALESCE(rating, 0))",
        denominator="COUNT(rating)",
        description="mean rating on [0, 1] over rated turns",
    ),
    "latency_ms": LogMetric(
        "ratio",
        numerator="SUM(COALESCE(latency_ms, 0))",
        denominator="COUNT(latency_ms)",
        description="mean request latency",
    ),
}


@dataclass(frozen=True)
class LogAnalysis:
    """The result, with what the log held."""

    result: ExperimentResult
    users: int
    mixed_users: int
    since: date | None
    until: date | None
    armless_turns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.result.to_dict(),
            "log": {
                "users": self.users,
                "mixed_users": self.mixed_users,
                "armless_turns": self.armless_turns,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
            },
        }


def _check_metrics(config: ExperimentConfig) -> None:
    for metric in config.metrics:
        key = f"experiments.{config.name}.metrics.{metric.name}"
        found = LOG_METRICS.get(metric.name)
        if found is None:
            raise ConfigError(
                f"the turn log has no metric {metric.name!r}; choose from {', '.join(LOG_METRICS)}",
                key=key,
            )
        if found.type != metric.type:
            raise ConfigError(
                f"{metric.name!r} is a {found.type} metric in the turn log; set "
                f'type = "{found.type}"',
                key=f"{key}.type",
            )
        if metric.cuped and found.type == "ratio":
            raise ConfigError(
                "CUPED here adjusts means and proportions; a ratio metric cannot set cuped",
                key=f"{key}.cuped",
            )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _exposed_turns(config: ExperimentConfig, since: date | None) -> str:
    """The condition on ``turn_facts`` of the turns logged in ``config``'s experiment."""
    window = f" AND day >= DATE {_quote(since.isoformat())}" if since is not None else ""
    return f"experiment = {_quote(config.name)}{window}"


def per_user_sql(config: ExperimentConfig, *, since: date | None = None) -> str:
    """The per-user table of ``config`` over ``turn_facts``: ``user_id, arm, arms`` and one
    column per metric value (``name``, or ``name_numerator``/``name_denominator``, and
    ``name_pre`` for CUPED metrics, from turns before ``since``)."""
    _check_metrics(config)
    columns = ["user_id", "MIN(arm) AS arm", "COUNT(DISTINCT arm) AS arms"]
    pre_columns = ["user_id"]
    outer = ["e.*"]
    for metric in config.metrics:
        m = LOG_METRICS[metric.name]
        if m.type == "ratio":
            columns += [f"{m.numerator} AS {metric.name}_numerator"]
            columns += [f"{m.denominator} AS {metric.name}_denominator"]
        else:
            columns.append(f"{m.value} AS {metric.name}")
            if metric.cuped:
                pre_columns.append(f"{m.value} AS {metric.name}_pre")
                outer.append(f"COALESCE(p.{metric.name}_pre, 0) AS {metric.name}_pre")
    exposed = (
        f"SELECT {', '.join(columns)} FROM turn_facts "
        f"WHERE {_exposed_turns(config, since)} AND arm <> '(none)' AND user_id IS NOT NULL "
        "GROUP BY user_id"
    )
    if len(pre_columns) == 1:
        return f"SELECT e.* FROM ({exposed}) e"
    if since is None:
        raise ConfigError(
            "a CUPED metric needs a pre-period: give the experiment's start (--since)",
            key="since",
        )
    pre = (
        f"SELECT {', '.join(pre_columns)} FROM turn_facts "
        f"WHERE user_id IS NOT NULL AND day < DATE {_quote(since.isoformat())} GROUP BY user_id"
    )
    return (
        f"SELECT {', '.join(outer)} FROM ({exposed}) e LEFT JOIN ({pre}) p ON p.user_id = e.user_id"
    )


def analyze_log(
    log: str | Path,
    config: ExperimentConfig,
    *,
    since: date | str | None = None,
    until: date | str | None = None,
    pre_days: int = 14,
    engine: str = "duckdb",
    master: str | None = None,
    kpi_options: Mapping[str, Any] | None = None,
) -> LogAnalysis:
    """Analyse ``config`` over the turn log in ``log`` (days ``since``..``until``
    inclusive; CUPED metrics read the ``pre_days`` days before ``since``)."""
    from voxloop.log.engines import make_engine
    from voxloop.log.kpi import KpiOptions, materialize_facts
    from voxloop.log.store import LogStore, parse_day

    start = parse_day(since, key="since")
    end = parse_day(until, key="until")
    if isinstance(pre_days, bool) or not isinstance(pre_days, int) or pre_days < 1:
        raise ConfigError(f"must be a whole number of days >= 1, got {pre_days!r}", key="pre_days")
    table = per_user_sql(config, since=start)  # checks the metrics before touching the log
    cuped = any(m.cuped for m in config.metrics)
    first = start - timedelta(days=pre_days) if (start is not None and cuped) else start
    store = LogStore(log, since=first, until=end)
    db = make_engine(store, engine, master=master)
    try:
        materialize_facts(db, KpiOptions(**(kpi_options or {})))
        db.materialize("experiment_users", table)
        mixed = db.sql("SELECT COUNT(*) AS n FROM experiment_users WHERE arms > 1")
        mixed_users = int(mixed.column("n")[0].as_py() or 0)
        armless = db.sql(
            "SELECT COUNT(*) AS n FROM turn_facts "
            f"WHERE {_exposed_turns(config, start)} AND arm = '(none)'"
        )
        armless_turns = int(armless.column("n")[0].as_py() or 0)
        clean = "(SELECT * FROM experiment_users WHERE arms = 1) u"
        rows = db.sql(sufficient_statistics_sql(config, clean)).to_pylist()
    finally:
        db.close()
    tuples = [tuple(r.values()) for r in rows]
    stats = statistics_from_rows(tuples, config)
    users = {r["arm"]: int(r["n"]) for r in rows}
    users = {arm: users.get(arm, 0) for arm in config.arm_names}
    result = analyze(stats, config, users=users)
    return LogAnalysis(result, sum(users.values()), mixed_users, start, end, armless_turns)
