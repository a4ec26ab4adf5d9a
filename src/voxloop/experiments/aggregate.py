"""From a per-user table to per-arm sufficient statistics, in one SQL ``GROUP BY``.

The analysis engine never sees individual users: a SQL engine (DuckDB, Spark, any
warehouse) reduces a table with one row per user — its arm and its metric values — to
counts, sums, sums of squares and cross-products per arm, and `statistics_from_rows`
turns that result into the statistics `analyze` takes::

    sql = sufficient_statistics_sql(config, "read_parquet('users/*.parquet')")
    rows = duckdb.sql(sql).fetchall()          # or spark.sql(sql).collect()
    result = analyze(statistics_from_rows(rows, config), config)

Columns default to the metric's name (a proportion or mean metric ``x`` reads column
``x``; a ratio ``x`` reads ``x_numerator`` and ``x_denominator``; a CUPED metric ``x``
also reads ``x_pre``); pass `MetricColumns` to name others. The query is plain SQL
(``COUNT``, ``SUM``, ``CAST AS DOUBLE``, ``COALESCE``) that DuckDB and Spark SQL run
alike. Missing values count as 0 — right for counts and successes; a metric only some
users have (a rating) is a ratio (sum of ratings / number rated), not a mean.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from voxloop.errors import ConfigError, DataError
from voxloop.experiments.config import ExperimentConfig, Metric
from voxloop.experiments.stats import (
    Proportion,
    RatioStatistic,
    RegressionAdjusted,
    SampleMean,
    Statistic,
)

__all__ = ["MetricColumns", "statistics_from_rows", "sufficient_statistics_sql"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class MetricColumns:
    """Where a metric's per-user values are: ``value`` (or ``numerator``/``denominator``
    for a ratio) and ``pre`` (the pre-period covariate, for CUPED)."""

    value: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    pre: str | None = None


def _column(name: str | None, default: str, metric: str) -> str:
    column = name or default
    if not _IDENTIFIER.match(column):
        raise ConfigError(
            f"column {column!r} is not a plain SQL identifier: name the column with MetricColumns",
            key=f"metrics.{metric}",
        )
    return column


def _fields(metric: Metric, columns: MetricColumns) -> list[tuple[str, str | None]]:
    """``(field, SQL expression)`` pairs: the sums this metric's statistic needs."""

    def value(col: str) -> str:
        return f"COALESCE(CAST({col} AS DOUBLE), 0)"

    name = metric.name
    if metric.type == "ratio":
        m = value(_column(columns.numerator, f"{name}_numerator", name))
        d = value(_column(columns.denominator, f"{name}_denominator", name))
        return [("m_sum", m), ("m_sum_squares", f"{m} * {m}"), ("d_sum", d),
                ("d_sum_squares", f"{d} * {d}"), ("md_cross", f"{m} * {d}")]  # fmt: skip
    y = value(_column(columns.value, name, name))
    if metric.cuped:
        x = value(_column(columns.pre, f"{name}_pre", name))
        return [("post_sum", y), ("post_sum_squares", f"{y} * {y}"), ("pre_sum", x),
                ("pre_sum_squares", f"{x} * {x}"), ("post_pre_cross", f"{x} * {y}")]  # fmt: skip
    if metric.type == "proportion":
        return [("successes", y)]
    return [("sum", y), ("sum_squares", f"{y} * {y}")]


def _layout(
    config: ExperimentConfig, columns: Mapping[str, MetricColumns] | None
) -> list[tuple[Metric, list[tuple[str, str | None]]]]:
    columns = columns or {}
    unknown = set(columns) - {m.name for m in config.metrics}
    if unknown:
        raise ConfigError(f"columns given for unknown metrics: {', '.join(sorted(unknown))}")
    return [(m, _fields(m, columns.get(m.name, MetricColumns()))) for m in config.metrics]


def sufficient_statistics_sql(
    config: ExperimentConfig,
    source: str,
    *,
    columns: Mapping[str, MetricColumns] | None = None,
    arm_column: str = "arm",
) -> str:
    """The ``SELECT ... GROUP BY arm`` that reduces a per-user ``source`` (a table name or
    a table expression) to the sufficient statistics of every metric of ``config``.

    Result columns: the arm, ``n`` (users), then ``s0``, ``s1``, ... in the order
    `statistics_from_rows` reads them.
    """
    arm = _column(arm_column, arm_column, "arm")
    select = [f"{arm} AS arm", "COUNT(*) AS n"]
    index = 0
    for _metric, fields in _layout(config, columns):
        for _field, expression in fields:
            select.append(f"SUM({expression}) AS s{index}")
            index += 1
    body = ",\n  ".join(select)
    return f"SELECT\n  {body}\nFROM {source}\nGROUP BY {arm}\nORDER BY {arm}"


def statistics_from_rows(
    rows: Iterable[Sequence[object]],
    config: ExperimentConfig,
    *,
    columns: Mapping[str, MetricColumns] | None = None,
) -> dict[str, dict[str, Statistic]]:
    """Turn the rows of `sufficient_statistics_sql` into ``{arm: {metric: statistic}}``.

    Arms of the config with no row get empty statistics (``n = 0``); a row for an arm
    the config does not know is a ``DataError`` (users were logged under a wrong arm).
    """
    layout = _layout(config, columns)
    result: dict[str, dict[str, Statistic]] = {}
    for row in rows:
        arm, n, *sums = row
        if arm not in config.arm_names:
            raise DataError(
                f"the data has users in arm {arm!r}, which experiment {config.name!r} "
                f"does not define ({', '.join(config.arm_names)})"
            )
        try:
            values = [float(s) if s is not None else 0.0 for s in sums]  # type: ignore[arg-type]
            count = int(n)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise DataError(f"row for arm {arm!r} is not numbers: {row!r}") from None
        result[str(arm)] = _statistics(layout, count, values)
    for arm in config.arm_names:
        if arm not in result:
            result[arm] = _statistics(layout, 0, [0.0] * sum(len(f) for _, f in layout))
    return result


def _statistics(
    layout: list[tuple[Metric, list[tuple[str, str | None]]]], n: int, values: list[float]
) -> dict[str, Statistic]:
    stats: dict[str, Statistic] = {}
    position = 0
    for metric, fields in layout:
        part = values[position : position + len(fields)]
        position += len(fields)
        if metric.type == "ratio":
            stats[metric.name] = RatioStatistic(n, *part)
        elif metric.cuped:
            stats[metric.name] = RegressionAdjusted(n, *part)
        elif metric.type == "proportion":
            successes = round(part[0])
            if abs(part[0] - successes) > 1e-6 * max(1.0, part[0]):
                raise DataError(
                    f"proportion metric {metric.name!r} sums to {part[0]!r}: its per-user "
                    "values must be 0 or 1",
                    field=metric.name,
                )
            stats[metric.name] = Proportion(n, int(successes))
        else:
            stats[metric.name] = SampleMean(n, *part)
    if position != len(values):
        raise DataError(f"expected {position} sums per row, got {len(values)}")
    return stats
