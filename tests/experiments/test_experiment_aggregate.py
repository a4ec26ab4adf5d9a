"""Specification of `voxloop.experiments.aggregate`: the SQL a warehouse runs gives the
same statistics as computing them from the raw per-user values."""

from __future__ import annotations

import numpy as np
import pytest

from voxloop.errors import ConfigError, DataError
from voxloop.experiments.aggregate import (
    MetricColumns,
    statistics_from_rows,
    sufficient_statistics_sql,
)
from voxloop.experiments.analyze import analyze
from voxloop.experiments.config import Arm, ExperimentConfig, Metric
from voxloop.experiments.stats import (
    Proportion,
    RatioStatistic,
    RegressionAdjusted,
    SampleMean,
)

CONFIG = ExperimentConfig(
    "exp",
    (Arm("A", 0.5), Arm("B", 0.3), Arm("C", 0.2)),
    "A",
    (
        Metric("success", "proportion", role="primary"),
        Metric("latency", "mean", role="guardrail", direction="decrease"),
        Metric("defects", "ratio", direction="decrease"),
        Metric("turns", "mean", cuped=True),
    ),
)


@pytest.fixture(scope="module")
def users():
    pandas = pytest.importorskip("pandas")
    rng = np.random.default_rng(4)
    n = 5000
    frame = pandas.DataFrame(
        {
            "arm": rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2]),
            "success": rng.random(n) < 0.3,
            "latency": rng.gamma(3.0, 100.0, n),
            "defects_numerator": rng.poisson(0.5, n),
            "turns_before": rng.poisson(4.0, n).astype(float),
        }
    )
    frame["defects_denominator"] = frame["defects_numerator"] + rng.poisson(3.0, n)
    frame["turns"] = frame["turns_before"] + rng.normal(0, 1, n)
    frame.loc[frame.index[:10], "latency"] = None  # missing values count as 0
    return frame


def test_duckdb_aggregation_equals_statistics_from_the_raw_values(users):
    duckdb = pytest.importorskip("duckdb")
    columns = {"turns": MetricColumns(pre="turns_before")}
    sql = sufficient_statistics_sql(CONFIG, "users", columns=columns)
    rows = duckdb.query_df(users, "users", sql).fetchall()
    stats = statistics_from_rows(rows, CONFIG, columns=columns)
    for arm in ("A", "B", "C"):
        part = users[users["arm"] == arm]
        expected = {
            "success": Proportion.from_values(part["success"].astype(int)),
            "latency": SampleMean.from_values(part["latency"].fillna(0)),
            "defects": RatioStatistic.from_values(
                part["defects_numerator"], part["defects_denominator"]
            ),
            "turns": RegressionAdjusted.from_values(part["turns"], part["turns_before"]),
        }
        for metric, stat in expected.items():
            got = stats[arm][metric]
            assert type(got) is type(stat)
            for field in got.__dataclass_fields__:
                assert getattr(got, field) == pytest.approx(getattr(stat, field), rel=1e-9)
    assert analyze(stats, CONFIG).verdict in {"ship", "no_difference", "do_not_ship"}


def test_an_arm_without_rows_gets_empty_statistics_and_an_unknown_arm_is_an_error():
    width = 1 + 2 + 5 + 5
    stats = statistics_from_rows([("A", 10, *([1.0] * width))], CONFIG)
    assert stats["B"]["success"] == Proportion(0, 0)
    assert analyze(stats, CONFIG).verdict == "no_data"
    with pytest.raises(DataError, match="arm 'Z'"):
        statistics_from_rows([("Z", 10, *([1.0] * width))], CONFIG)


def test_non_binary_proportion_columns_and_bad_column_names_are_refused():
    width = 1 + 2 + 5 + 5
    with pytest.raises(DataError, match="must be 0 or 1"):
        statistics_from_rows([("A", 10, 2.5, *([1.0] * (width - 1)))], CONFIG)
    with pytest.raises(ConfigError, match="plain SQL identifier"):
        sufficient_statistics_sql(CONFIG, "t", columns={"latency": MetricColumns("p95; DROP")})
    with pytest.raises(ConfigError, match="unknown metrics"):
        sufficient_statistics_sql(CONFIG, "t", columns={"nope": MetricColumns("x")})
