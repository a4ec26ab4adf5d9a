"""The KPI library: what a voice-assistant team asks of its turn log, defined once as SQL.

Every KPI is one ``.sql`` file in ``voxloop/log/kpi/`` that DuckDB and Spark SQL run alike
(the common subset: ``CASE``, ``COALESCE``, ``NULLIF``, ``CAST``, ``LEAD``/``ROW_NUMBER``/
``DENSE_RANK``/``SUM OVER``, ``SUBSTRING``/``LOWER``/``CONCAT``/``LENGTH``, ``CEIL``, joins).
First ``texts.sql`` numbers the distinct utterance texts, ``rephrase_candidates.sql`` keeps
the turns whose user spoke again within the rephrase window (a ``LEAD`` window, linear in
the log), then ``turn_facts.sql`` computes one row per turn with every signal as a 0/1
column (the definitions are in that file; trigram similarity only for the distinct text
pairs of the candidates), then each KPI is a ``GROUP BY`` over it:

===================  ======================================================================
table                what
===================  ======================================================================
summary              turns, users, sessions, days and every rate, over the whole range
by_slice             every rate per value of ``by`` (default: domain) — the defect rate
                     per domain
volume               turns per domain and intent
latency              latency p50/p95/p99 (nearest rank), max and mean per model version
daily                turns and rates per day and domain (the trends)
top_failing          per domain, the utterances with the most defective turns
hot_spots            the intents most often declined or below the confidence threshold
confusions           the (best guess, runner-up) intent pairs of low-confidence turns
arms                 every rate per experiment arm
friction_examples    recent rephrased turns with the rephrase, its delay and similarity
===================  ======================================================================

Rates are fractions of turns. A **defect** is a turn that was not recognized, OR was
rephrased (the same user spoke again within ``rephrase_window_s`` seconds with a text whose
character-trigram Jaccard similarity is at least ``rephrase_similarity``; or within
``rephrase_quick_s`` seconds after a declined or low-confidence turn with a similarity of at
least ``rephrase_quick_similarity``, a quick retry; or the client reported a rephrase), OR
got a barge-in or abandonment, OR negative feedback (a rating below 0.5 on the [0, 1] scale
of `voxloop.schema.RATING_SCALE`, or ``task_success`` = 0).

Parameters are substituted into the SQL as numeric literals (checked first) and ``by`` as
column names from a fixed list: no user text ever reaches the SQL.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa

from voxloop.errors import ConfigError
from voxloop.log.engines import Engine, make_engine
from voxloop.log.store import LogStore

__all__ = [
    "KPI_TABLES",
    "SLICE_COLUMNS",
    "STAGES",
    "materialize_facts",
    "KpiOptions",
    "arm_users_sql",
    "compute_kpis",
    "counted",
    "format_kpis",
    "kpi_sql",
    "kpis_to_json",
]

KPI_TABLES = (
    "summary",
    "by_slice",
    "volume",
    "latency",
    "daily",
    "top_failing",
    "hot_spots",
    "confusions",
    "arms",
    "friction_examples",
)
# Tables materialised, in order, before the KPIs (each KPI is a GROUP BY over turn_facts).
STAGES = ("texts", "rephrase_candidates", "turn_facts")
# Columns of turn_facts one can slice by (--by).
SLICE_COLUMNS = (
    "domain",
    "intent",
    "top_intent",
    "model_version",
    "experiment",
    "arm",
    "locale",
    "channel",
    "day",
)
_PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")


@dataclass(frozen=True, slots=True)
class KpiOptions:
    """The knobs of the KPI definitions (see the module docstring)."""

    by: tuple[str, ...] = ("domain",)
    low_confidence: float = 0.5
    rephrase_window_s: float = 30.0
    rephrase_similarity: float = 0.2
    rephrase_quick_s: float = 8.0
    rephrase_quick_similarity: float = 0.05
    top_k: int = 10
    examples: int = 20
    tables: tuple[str, ...] = field(default=KPI_TABLES)

    def __post_init__(self) -> None:
        if not self.by:
            raise ConfigError("give at least one column to slice by", key="by")
        for column in self.by:
            if column not in SLICE_COLUMNS:
                raise ConfigError(
                    f"cannot slice by {column!r}; choose from {', '.join(SLICE_COLUMNS)}",
                    key="by",
                )
        if len(set(self.by)) != len(self.by):
            raise ConfigError("a column is repeated", key="by")
        for name in ("low_confidence", "rephrase_similarity", "rephrase_quick_similarity"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value <= 1):
                raise ConfigError(f"must be a number in [0, 1], got {value!r}", key=name)
        for name in ("rephrase_window_s", "rephrase_quick_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"must be a number of seconds >= 0, got {value!r}", key=name)
        for name in ("top_k", "examples"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ConfigError(f"must be a whole number >= 1, got {value!r}", key=name)
        unknown = set(self.tables) - set(KPI_TABLES)
        if unknown:
            raise ConfigError(
                f"unknown KPI table(s) {', '.join(sorted(unknown))}; "
                f"choose from {', '.join(KPI_TABLES)}",
                key="tables",
            )

    def parameters(self) -> dict[str, str]:
        """The SQL literal of every ``${name}`` the KPI files use."""
        from voxloop.log.engines import MAX_CHARS

        return {
            "by": ", ".join(self.by),
            "low_confidence": _decimal(self.low_confidence),
            "similarity": _decimal(self.rephrase_similarity),
            "window_s": _decimal(self.rephrase_window_s),
            "window_us": str(round(self.rephrase_window_s * 1_000_000)),
            "quick_s": _decimal(self.rephrase_quick_s),
            # 0 s turns the quick retry off: -1 µs, as a gap of 0 (two turns of one user at
            # the same instant) would still pass "gap <= 0"
            "quick_us": str(round(self.rephrase_quick_s * 1_000_000) or -1),
            "quick_similarity": _decimal(self.rephrase_quick_similarity),
            "max_chars": str(MAX_CHARS),
            "top_k": str(self.top_k),
            "examples": str(self.examples),
        }


def _decimal(value: float) -> str:
    """A number as a plain decimal literal (no exponent): exact DECIMAL in both engines."""
    text = format(Decimal(repr(float(value))), "f")
    return text if "." in text else text + ".0"


@cache
def _read(name: str) -> str:
    try:
        return resources.files("voxloop.log").joinpath("kpi", f"{name}.sql").read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no KPI named {name!r}", key="tables") from None


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def kpi_sql(name: str, options: KpiOptions | None = None) -> str:
    """The SQL of one KPI file with its parameters filled in (what both engines run)."""
    values = (options or KpiOptions()).parameters()
    values["rates"] = _strip_comments(_read("_rates")).strip()

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ConfigError(f"{name}.sql uses unknown parameter ${{{key}}}")
        return values[key]

    return _PLACEHOLDER.sub(fill, _strip_comments(_read(name))).strip()


def arm_users_sql(options: KpiOptions | None = None) -> str:
    """The per-user table of experiment arms (over ``turn_facts``), for
    `voxloop.experiments.aggregate.sufficient_statistics_sql` as a subquery."""
    return kpi_sql("arm_users", options)


def compute_kpis(
    source: LogStore | Engine | str | Path,
    *,
    since: date | datetime | str | None = None,
    until: date | datetime | str | None = None,
    by: Sequence[str] | str = ("domain",),
    low_confidence: float = 0.5,
    rephrase_window_s: float = 30.0,
    rephrase_similarity: float = 0.2,
    rephrase_quick_s: float = 8.0,
    rephrase_quick_similarity: float = 0.05,
    top_k: int = 10,
    examples: int = 20,
    tables: Iterable[str] = KPI_TABLES,
    engine: str = "duckdb",
    master: str | None = None,
) -> dict[str, pa.Table]:
    """Every KPI table of a log, ``{name: Arrow table}`` in the order of `KPI_TABLES`.

    ``source`` is a log directory, a `LogStore`, or an engine (which is reused, so a Spark
    session starts once). ``since``/``until`` (inclusive days) narrow the range;
    ``engine`` (``duckdb`` or ``spark``, with ``master``) is used when ``source`` is not an
    engine already.
    """
    if isinstance(by, str):
        by = tuple(c.strip() for c in by.split(",") if c.strip())
    options = KpiOptions(
        by=tuple(by),
        low_confidence=low_confidence,
        rephrase_window_s=rephrase_window_s,
        rephrase_similarity=rephrase_similarity,
        rephrase_quick_s=rephrase_quick_s,
        rephrase_quick_similarity=rephrase_quick_similarity,
        top_k=top_k,
        examples=examples,
        tables=tuple(tables),
    )
    owned = None
    if isinstance(source, str | Path):
        source = LogStore(source, since=since, until=until)
    elif isinstance(source, LogStore):
        if since is not None or until is not None:
            source = LogStore(source.directory, since=since, until=until)
    else:
        if since is not None or until is not None:
            source.register(LogStore(source.store.directory, since=since, until=until))
    if isinstance(source, LogStore):
        owned = source = make_engine(source, engine, master=master)
    try:
        return run_kpis(source, options)
    finally:
        if owned is not None:
            owned.close()


def materialize_facts(engine: Engine, options: KpiOptions) -> None:
    """Materialise the stages every KPI reads (``texts``, ``rephrase_candidates``, then
    ``turn_facts``) on ``engine``."""
    for stage in STAGES:
        engine.materialize(stage, kpi_sql(stage, options))


def run_kpis(engine: Engine, options: KpiOptions) -> dict[str, pa.Table]:
    """`materialize_facts`, then run each KPI of ``options``."""
    materialize_facts(engine, options)
    return {name: engine.sql(kpi_sql(name, options)) for name in options.tables}


# --- output ---------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):  # SUM of integers is a DECIMAL(38, 0) in DuckDB
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def kpis_to_json(kpis: Mapping[str, pa.Table], **meta: Any) -> dict[str, Any]:
    """KPI tables as plain JSON values: ``{name: [row objects]}`` (dates as ISO strings),
    plus any ``meta`` given (log directory, options)."""
    out: dict[str, Any] = {k: _plain(v) for k, v in meta.items()}
    for name, table in kpis.items():
        out[name] = [{k: _plain(v) for k, v in row.items()} for row in table.to_pylist()]
    return out


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if column.endswith(("_rate", "share")):
            return f"{value:.1%}"
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, Decimal):
        return _cell(_plain(value), column)
    if isinstance(value, int):
        return f"{value:,}"
    text = str(_plain(value))
    return text if len(text) <= 48 else text[:47] + "…"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun`` as they read: "1 day", "2 days", "1,204 feedback events"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def format_table(table: pa.Table, *, limit: int = 30) -> str:
    """One table as aligned plain text (at most ``limit`` rows)."""
    columns = table.column_names
    rows = [[_cell(v, c) for c, v in row.items()] for row in table.slice(0, limit).to_pylist()]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(columns), line(["-" * w for w in widths])] + [line(r) for r in rows]
    if table.num_rows > limit:
        out.append(f"... {counted(table.num_rows - limit, 'more row')} (--json for all)")
    if not rows:
        out.append("(no rows)")  # "(none)" labels a NULL domain, experiment or arm
    return "\n".join(out)


def format_kpis(kpis: Mapping[str, pa.Table], *, limit: int = 30) -> str:
    """Every KPI table as plain text, one titled block each."""
    blocks = []
    for name, table in kpis.items():
        blocks.append(f"== {name} ==\n{format_table(table, limit=limit)}")
    return "\n\n".join(blocks)


def options_json(options: KpiOptions) -> str:
    """The options as JSON (recorded with results)."""
    return json.dumps(asdict(options))
