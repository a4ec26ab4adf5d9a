"""A/A tests: with no true difference, the engine declares one at rate alpha.

This is the test-sized version (400 experiments per metric type, seeded). Its bands are
about ±3.5 standard errors around alpha: wide enough never to flake, narrow enough to
catch a biased test — the classic mistake of analysing a ratio metric with turns instead
of users as the unit lands far outside them (checked below). The full 10,000-experiment
run, with the ±1 point criterion and the sequential test under daily peeking, is
``benchmarks/bench_experiments.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from voxloop.experiments.analyze import analyze
from voxloop.experiments.config import AnalysisSettings, Arm, ExperimentConfig, Metric
from voxloop.experiments.simulate import SYNTHETIC_METRICS, synthetic_statistics
from voxloop.experiments.stats import Proportion, RatioStatistic, lift

ALPHA = 0.05
EXPERIMENTS = 400
USERS = 1000


@pytest.fixture(scope="module")
def aa_data():
    rng = np.random.default_rng(2025)
    return {
        metric: [
            [days[0] for days in synthetic_statistics(
                metric, experiments=EXPERIMENTS, users_per_day=USERS, rng=rng)]
            for _arm in ("A", "B")
        ]
        for metric in SYNTHETIC_METRICS
    }  # fmt: skip


def aa_config(**settings) -> ExperimentConfig:
    metrics = tuple(
        Metric(name, "mean" if name == "cuped" else name, role="primary", cuped=name == "cuped")
        for name in SYNTHETIC_METRICS
    )
    settings = {"correction": "none", **settings}
    return ExperimentConfig("aa", (Arm("A", 0.5), Arm("B", 0.5)), "A", metrics,
                            analysis=AnalysisSettings(**settings))  # fmt: skip


def p_values(aa_data, **settings) -> dict[str, np.ndarray]:
    config = aa_config(**settings)
    found: dict[str, list[float]] = {m: [] for m in SYNTHETIC_METRICS}
    for e in range(EXPERIMENTS):
        arms = {arm: {m: aa_data[m][i][e] for m in SYNTHETIC_METRICS}
                for i, arm in enumerate(("A", "B"))}  # fmt: skip
        result = analyze(arms, config)
        assert result.verdict in {"no_difference", "ship", "do_not_ship"}
        for row in result.metrics:
            found[row.metric].append(row.p_value)
    return {m: np.array(v) for m, v in found.items()}


@pytest.mark.parametrize("difference", ["relative", "absolute"])
def test_fixed_horizon_false_positive_rate_is_alpha(aa_data, difference):
    found = p_values(aa_data, difference=difference)
    pooled = np.concatenate(list(found.values()))
    assert 0.03 <= np.mean(pooled < ALPHA) <= 0.07  # 1,600 p-values: SE 0.55 points
    for metric, p in found.items():
        assert np.mean(p < ALPHA) <= 0.09, metric  # 400 p-values: SE 1.1 points
    # Not only the tail: under the null, p-values are uniform.
    assert sps.kstest(pooled, "uniform").pvalue > 0.001


def test_a_biased_test_would_fail_these_bands(aa_data):
    """Treating each turn as independent (a per-turn proportion) ignores that one user's
    turns are correlated: its false-positive rate is far above alpha. Ours is not."""
    control, treatment = aa_data["ratio"]
    naive = [
        lift(Proportion(int(a.d_sum), int(a.m_sum)), Proportion(int(b.d_sum), int(b.m_sum))).p_value
        for a, b in zip(control, treatment, strict=True)
    ]
    ours = [lift(a, b).p_value for a, b in zip(control, treatment, strict=True)]
    assert isinstance(control[0], RatioStatistic)
    assert np.mean(np.array(naive) < ALPHA) > 0.09
    assert np.mean(np.array(ours) < ALPHA) <= 0.07


def test_holm_keeps_the_family_wise_error_rate_at_most_alpha(aa_data):
    config = aa_config(correction="holm")
    false_alarms = 0
    for e in range(EXPERIMENTS):
        arms = {arm: {m: aa_data[m][i][e] for m in SYNTHETIC_METRICS}
                for i, arm in enumerate(("A", "B"))}  # fmt: skip
        result = analyze(arms, config)
        false_alarms += any(r.p_value_adjusted < ALPHA for r in result.metrics)
    assert false_alarms / EXPERIMENTS <= 0.07  # uncorrected, 4 metrics would give ~0.19
