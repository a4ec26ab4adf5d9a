"""Specification of `voxloop.experiments.analyze`: from per-arm sufficient statistics to a
verdict in plain words — guardrails and SRM block shipping, bad inputs never give NaN."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from voxloop.errors import DataError
from voxloop.experiments.analyze import analyze, format_result
from voxloop.experiments.config import (
    AnalysisSettings,
    Arm,
    ExperimentConfig,
    Metric,
    load_config,
)
from voxloop.experiments.stats import (
    Proportion,
    RatioStatistic,
    RegressionAdjusted,
    SampleMean,
    holm,
    lift,
)

GOLDEN = Path(__file__).parent / "data" / "format_result.txt"
EXAMPLE = Path(__file__).parent / "data" / "experiments.toml"


def normal_stat(n: int, mean: float, sd: float) -> SampleMean:
    """The statistic of n values with exactly this mean and sample sd."""
    return SampleMean(n, n * mean, (n - 1) * sd * sd + n * mean * mean)


def config(
    metrics: tuple[Metric, ...] = (Metric("success", "proportion", role="primary"),),
    weights: dict[str, float] | None = None,
    **settings,
) -> ExperimentConfig:
    weights = weights or {"A": 0.5, "B": 0.5}
    arms = tuple(Arm(name, w) for name, w in weights.items())
    return ExperimentConfig("exp", arms, "A", metrics, analysis=AnalysisSettings(**settings))


def test_a_clear_win_on_the_primary_metric_ships():
    result = analyze({"A": {"success": Proportion(10_000, 1000)},
                      "B": {"success": Proportion(10_000, 1150)}}, config())  # fmt: skip
    row = result.metric("success", "B")
    assert (row.outcome, result.verdict) == ("better", "ship")
    assert row.estimate == pytest.approx(0.15)
    assert result.summary.startswith("ship B: success +15.0% [")


def test_no_difference_says_so_and_keeps_the_control():
    result = analyze({"A": {"success": Proportion(10_000, 1000)},
                      "B": {"success": Proportion(10_000, 1010)}}, config())  # fmt: skip
    assert result.verdict == "no_difference"
    assert result.summary.startswith("no detectable difference on the primary metrics")
    assert "keep the control" in result.summary


def test_a_worse_primary_metric_means_do_not_ship():
    result = analyze({"A": {"success": Proportion(10_000, 1000)},
                      "B": {"success": Proportion(10_000, 850)}}, config())  # fmt: skip
    assert result.verdict == "do_not_ship"
    assert "B is worse on success -15.0%" in result.summary


def test_a_failing_guardrail_blocks_a_winner():
    metrics = (
        Metric("success", "proportion", role="primary"),
        Metric("latency_ms", "mean", role="guardrail", direction="decrease"),
    )
    arms = {
        "A": {"success": Proportion(10_000, 1000), "latency_ms": normal_stat(10_000, 300, 50)},
        "B": {"success": Proportion(10_000, 1150), "latency_ms": normal_stat(10_000, 306, 50)},
    }
    result = analyze(arms, config(metrics))
    assert result.metric("success", "B").outcome == "better"
    assert result.metric("latency_ms", "B").outcome == "worse"
    assert result.verdict == "do_not_ship"
    assert "guardrail failed for B: latency_ms +2.0%" in result.summary
    assert "it wins on success" in result.summary


def test_guardrails_are_tested_uncorrected_and_the_rest_as_one_holm_family():
    metrics = (
        Metric("success", "proportion", role="primary"),
        Metric("turns", "mean"),
        Metric("errors", "proportion", role="guardrail", direction="decrease"),
    )
    stats = {
        "A": {"success": Proportion(5000, 500), "turns": normal_stat(5000, 4.0, 2.0),
              "errors": Proportion(5000, 50)},
        "B": {"success": Proportion(2500, 280), "turns": normal_stat(2500, 4.1, 2.0),
              "errors": Proportion(2500, 33)},
        "C": {"success": Proportion(2500, 265), "turns": normal_stat(2500, 3.95, 2.0),
              "errors": Proportion(2500, 24)},
    }  # fmt: skip
    result = analyze(stats, config(metrics, {"A": 0.5, "B": 0.25, "C": 0.25}))
    family = [r for r in result.metrics if r.role != "guardrail"]
    raw = [lift(stats["A"][r.metric], stats[r.arm][r.metric]).p_value for r in family]
    assert [r.p_value for r in family] == pytest.approx(raw, rel=1e-12)
    assert [r.p_value_adjusted for r in family] == pytest.approx(holm(raw), rel=1e-12)
    for row in result.metrics:
        if row.role == "guardrail":
            assert row.p_value_adjusted == row.p_value


def test_srm_blocks_the_verdict_even_when_a_metric_wins():
    result = analyze({"A": {"success": Proportion(5500, 550)},
                      "B": {"success": Proportion(4500, 560)}}, config())  # fmt: skip
    assert result.metric("success", "B").outcome == "better"
    assert result.srm.flagged
    assert result.verdict == "srm"
    assert result.summary.startswith("SRM: do not trust this result. Users split 5,500 / 4,500")


def test_srm_uses_the_assigned_users_when_given():
    stats = {"A": {"success": Proportion(5000, 500)}, "B": {"success": Proportion(5000, 560)}}
    result = analyze(stats, config(), users={"A": 5000, "B": 5600})
    assert result.verdict == "srm"
    assert [a.users for a in result.arms] == [5000, 5600]


def test_an_arm_with_no_users_gives_no_data_and_no_nan():
    result = analyze({"A": {"success": Proportion(1000, 100)},
                      "B": {"success": Proportion(0, 0)}}, config())  # fmt: skip
    assert result.verdict == "no_data"
    assert result.summary == "no data: B has no users, nothing to analyse yet"
    row = result.metric("success", "B")
    assert row.status == "no_users" and row.outcome == "not_analysable"
    assert "NaN" not in result.to_json()


def test_zero_variance_in_both_arms_cannot_be_decided_unless_the_arms_are_identical():
    metrics = (Metric("success", "proportion", role="primary"),
               Metric("crashes", "mean", role="guardrail", direction="decrease"))  # fmt: skip
    arms = {
        "A": {"success": Proportion(4000, 400), "crashes": SampleMean(4000, 0.0, 0.0)},
        "B": {"success": Proportion(4000, 480), "crashes": SampleMean(4000, 0.0, 0.0)},
    }
    result = analyze(arms, config(metrics))
    crashes = result.metric("crashes", "B")
    assert crashes.outcome == "inconclusive" and "same constant value" in crashes.note
    assert result.verdict == "ship"  # no crashes anywhere is not a reason to block

    arms["B"]["success"] = Proportion(4000, 4000)
    arms["A"]["success"] = Proportion(4000, 0)
    stuck = analyze(arms, config(metrics))
    assert stuck.metric("success", "B").outcome == "not_analysable"
    assert stuck.verdict == "cannot_decide"
    assert "zero variance" in stuck.summary


def test_a_zero_control_mean_falls_back_to_the_absolute_difference():
    metrics = (Metric("success", "proportion", role="primary"),
               Metric("crashes", "proportion", role="guardrail", direction="decrease"))  # fmt: skip
    arms = {
        "A": {"success": Proportion(4000, 400), "crashes": Proportion(4000, 0)},
        "B": {"success": Proportion(4000, 480), "crashes": Proportion(4000, 30)},
    }
    result = analyze(arms, config(metrics))
    crashes = result.metric("crashes", "B")
    assert crashes.difference == "absolute" and "control mean is 0" in crashes.note
    assert crashes.outcome == "worse"
    assert result.verdict == "do_not_ship"
    # the report marks the one lift that is not relative like the rest
    (line,) = [x for x in format_result(result).splitlines() if x.startswith("crashes")]
    assert "+0.0075 [" in line and "] (absolute)" in line
    (line,) = [x for x in format_result(result).splitlines() if x.startswith("success")]
    assert "absolute" not in line


def test_missing_pre_period_for_a_cuped_metric_is_a_data_error():
    metrics = (Metric("turns", "mean", role="primary", cuped=True),)
    arms = {"A": {"turns": normal_stat(100, 3, 1)}, "B": {"turns": normal_stat(100, 3, 1)}}
    with pytest.raises(DataError, match="missing pre-period"):
        analyze(arms, config(metrics))


def test_cuped_metrics_report_theta_and_a_narrower_interval():
    metrics = (Metric("turns", "mean", role="primary", cuped=True),)
    a = RegressionAdjusted(1000, 3000.0, 10_000.0, 2900.0, 9400.0, 9500.0)
    b = RegressionAdjusted(1000, 3100.0, 10_700.0, 2950.0, 9700.0, 9980.0)
    result = analyze({"A": {"turns": a}, "B": {"turns": b}}, config(metrics))
    row = result.metric("turns", "B")
    plain = lift(a.post, b.post)
    assert row.theta is not None and row.theta > 0
    assert row.ci_high - row.ci_low < plain.ci_high - plain.ci_low
    assert row.control_mean == pytest.approx(3.0)  # the observed, unadjusted mean


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ({"A": {"success": Proportion(10, 1)}}, "missing B"),
        ({"A": {"success": Proportion(10, 1)}, "B": {"success": Proportion(10, 1)},
          "C": {"success": Proportion(10, 1)}}, "not in the config C"),
        ({"A": {"success": Proportion(10, 1)}, "B": {}}, "no statistic for metric 'success'"),
        ({"A": {"success": Proportion(10, 1)}, "B": {"success": SampleMean(10, 1.0, 1.0)}},
         "needs a Proportion or RegressionAdjusted"),
        ({"A": {"success": Proportion(10, 1), "typo": Proportion(10, 1)},
          "B": {"success": Proportion(10, 1)}}, "not in the config: typo"),
    ],
)  # fmt: skip
def test_mismatched_inputs_are_data_errors_naming_them(arms, message):
    with pytest.raises(DataError, match=message):
        analyze(arms, config())


def test_metrics_counting_different_users_need_the_assigned_counts():
    metrics = (Metric("success", "proportion", role="primary"), Metric("rating", "mean"))
    arms = {
        "A": {"success": Proportion(1000, 100), "rating": normal_stat(400, 4, 1)},
        "B": {"success": Proportion(1000, 120), "rating": normal_stat(420, 4, 1)},
    }
    with pytest.raises(DataError, match="pass users="):
        analyze(arms, config(metrics))
    assert analyze(arms, config(metrics), users={"A": 1000, "B": 1000}).verdict in {
        "ship",
        "no_difference",
    }


def test_the_bayesian_engine_decides_on_the_chance_to_win():
    stats = {"A": {"success": Proportion(10_000, 1000)}, "B": {"success": Proportion(10_000, 1090)}}
    result = analyze(stats, config(engine="bayesian"))
    row = result.metric("success", "B")
    assert row.p_value is None and row.chance_to_win > 0.95
    assert result.verdict == "ship" and "chance to beat control" in result.summary
    timid = analyze(stats, config(engine="bayesian", win_probability=0.999))
    assert timid.verdict == "no_difference"
    assert f"best chance to beat control is {row.chance_to_win:.1%}, 99.9% is needed" in (
        timid.summary
    )


def test_the_sequential_engine_is_more_cautious_and_says_to_keep_collecting():
    stats = {"A": {"success": Proportion(10_000, 1000)}, "B": {"success": Proportion(10_000, 1090)}}
    fixed = analyze(stats, config())
    sequential = analyze(stats, config(engine="sequential"))
    assert fixed.verdict == "ship"
    assert sequential.verdict == "no_difference"
    assert "keep collecting" in sequential.summary
    row = sequential.metric("success", "B")
    assert row.p_value > fixed.metric("success", "B").p_value


def test_the_best_of_several_winning_arms_ships():
    stats = {"A": {"success": Proportion(10_000, 1000)},
             "B": {"success": Proportion(10_000, 1150)},
             "C": {"success": Proportion(10_000, 1250)}}  # fmt: skip
    result = analyze(stats, config(weights={"A": 0.34, "B": 0.33, "C": 0.33}))
    assert result.summary.startswith("ship C:") and "B also wins" in result.summary


def _example_result():
    exp = load_config(EXAMPLE)["nlu-v2"]
    arms = {
        "classical": {
            "task_success": Proportion(20_000, 12_000),
            "turns_per_user": RegressionAdjusted(20_000, 100_000.0, 700_000.0, 96_000.0,
                                                 640_000.0, 650_000.0),
            "defects_per_turn": RatioStatistic(20_000, 9_000.0, 15_000.0, 100_000.0,
                                               700_000.0, 60_000.0),
            "latency_ms": normal_stat(20_000, 310.0, 80.0),
        },
        "transformer": {
            "task_success": Proportion(20_100, 12_530),
            "turns_per_user": RegressionAdjusted(20_100, 101_500.0, 715_000.0, 96_500.0,
                                                 644_000.0, 662_000.0),
            "defects_per_turn": RatioStatistic(20_100, 8_400.0, 14_000.0, 101_500.0,
                                               715_000.0, 56_000.0),
            "latency_ms": normal_stat(20_100, 311.0, 82.0),
        },
    }  # fmt: skip
    return analyze(arms, exp)


def test_format_result_matches_the_golden_report():
    text = format_result(_example_result())
    if os.environ.get("VOXLOOP_UPDATE_GOLDEN"):
        GOLDEN.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == GOLDEN.read_text(encoding="utf-8")


def test_to_json_is_strict_json_with_every_field():
    result = _example_result()
    data = json.loads(result.to_json())
    assert data["verdict"] == result.verdict == "ship"
    assert data["srm"]["flagged"] is False
    assert {row["metric"] for row in data["metrics"]} == {
        "task_success", "turns_per_user", "defects_per_turn", "latency_ms",
    }  # fmt: skip
    assert data["analysis"]["engine"] == "frequentist"
    for row in data["metrics"]:
        for key in ("estimate", "ci_low", "ci_high", "p_value", "chance_to_win"):
            assert row[key] is None or math.isfinite(row[key])


def test_a_p_value_below_the_smallest_float_is_not_printed_as_zero():
    arms = {"A": {"success": Proportion(100_000, 10_000)},
            "B": {"success": Proportion(100_000, 60_000)}}  # fmt: skip
    result = analyze(arms, config((Metric("success", "proportion", role="primary"),)))
    assert result.metric("success", "B").p_value == 0.0  # underflow
    (line,) = [x for x in format_result(result).splitlines() if x.startswith("success")]
    assert "< 1e-300" in line and " 0 " not in line
