"""Specification of `voxloop.experiments.power`: the numbers statsmodels gives, and power
that simulated experiments actually achieve."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.proportion import power_proportions_2indep

from voxloop.errors import DataError
from voxloop.experiments.power import (
    SampleSize,
    mde_mean,
    mde_proportion,
    power_mean,
    power_proportion,
    sample_size_mean,
    sample_size_proportion,
)
from voxloop.experiments.stats import Proportion, absolute_lift

T_TEST = TTestIndPower()


@pytest.mark.parametrize(
    ("effect", "sd", "n", "ratio", "alpha"),
    [(0.3, 1.5, 400, 1.0, 0.05), (0.3, 1.5, 400, 2.0, 0.05), (-1.0, 4.0, 60, 0.5, 0.01),
     (0.05, 1.0, 20, 1.0, 0.1)],
)  # fmt: skip
def test_power_of_means_is_statsmodels_t_test_power(effect, sd, n, ratio, alpha):
    expected = T_TEST.power(effect / sd, n, alpha, ratio=ratio, alternative="two-sided")
    assert power_mean(effect, sd, n, ratio=ratio, alpha=alpha) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("effect", "ratio", "power"), [(0.2, 1.0, 0.8), (0.1, 2.0, 0.9)])
def test_sample_size_of_means_is_statsmodels_solve_power_rounded_up(effect, ratio, power):
    expected = T_TEST.solve_power(effect, power=power, alpha=0.05, ratio=ratio)
    size = sample_size_mean(effect, 1.0, power=power, ratio=ratio)
    assert size.control == int(np.ceil(expected))
    assert size.treatment == int(np.ceil(ratio * size.control))
    assert size.total == size.control + size.treatment


def test_mde_of_means_is_the_effect_statsmodels_gives_the_planned_power():
    mde = mde_mean(2.0, 393, ratio=1.5)
    assert T_TEST.power(mde / 2.0, 393, 0.05, ratio=1.5) == pytest.approx(0.8, abs=1e-12)
    # statsmodels' own root finder stops a little earlier (power 0.799997).
    expected = T_TEST.solve_power(None, nobs1=393, alpha=0.05, power=0.8, ratio=1.5) * 2.0
    assert mde == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    ("baseline", "effect", "n", "ratio"),
    [(0.1, 0.01, 5000, 1.0), (0.1, 0.01, 5000, 0.5), (0.4, -0.03, 2000, 3.0)],
)
def test_power_of_proportions_is_statsmodels_power_proportions_2indep(baseline, effect, n, ratio):
    # statsmodels' sample 1 is our treatment; its ratio is n_control / n_treatment.
    expected = power_proportions_2indep(
        effect, baseline, ratio * n, ratio=1 / ratio, alpha=0.05, return_results=False
    )
    assert power_proportion(baseline, effect, n, ratio=ratio) == pytest.approx(expected, rel=1e-9)


def test_sample_size_of_proportions_is_the_smallest_that_reaches_the_power():
    size = sample_size_proportion(0.1, 0.01, power=0.8)
    assert size == SampleSize(14751, 14751)

    def power_at(n: int) -> float:
        return power_proportions_2indep(0.01, 0.1, n, ratio=1.0, return_results=False)

    assert power_at(size.control) >= 0.8 > power_at(size.control - 1)


def test_mde_of_proportions_round_trips_through_power():
    mde = mde_proportion(0.1, 14751)
    assert mde == pytest.approx(0.01, rel=1e-3)
    assert power_proportion(0.1, mde, 14751) == pytest.approx(0.8, abs=1e-9)


def test_planned_power_is_the_power_simulated_experiments_achieve():
    """3,000 experiments at the planned size: the z-test rejects ~80 % of the time."""
    rng = np.random.default_rng(17)
    size = sample_size_proportion(0.2, 0.02, power=0.8)
    reps = 3000
    control = rng.binomial(size.control, 0.2, reps)
    treatment = rng.binomial(size.treatment, 0.22, reps)
    rejected = [
        absolute_lift(Proportion(size.control, int(c)), Proportion(size.treatment, int(t))).p_value
        < 0.05
        for c, t in zip(control, treatment, strict=True)
    ]
    assert np.mean(rejected) == pytest.approx(0.8, abs=0.025)


@pytest.mark.parametrize(
    "call",
    [
        lambda: power_mean(0.1, 0.0, 100),
        lambda: power_mean(0.1, 1.0, 100, alpha=1.5),
        lambda: power_proportion(1.2, 0.1, 100),
        lambda: power_proportion(0.95, 0.1, 100),
        lambda: sample_size_mean(0.0, 1.0),
        lambda: sample_size_proportion(0.1, 0.01, power=0.01),
        lambda: mde_proportion(0.5, 3),
        lambda: sample_size_mean(1e-9, 1.0),
    ],
)
def test_impossible_plans_are_data_errors(call):
    with pytest.raises(DataError):
        call()
