"""Specification of `voxloop.experiments.sequential`: intervals that stay valid however
often one looks, with p-values that are the inverse of the mixture likelihood ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as sps

from voxloop.errors import DataError
from voxloop.experiments.sequential import (
    always_valid_p_value,
    confidence_sequence,
    mixture_rho,
    sequential_lift,
)
from voxloop.experiments.simulate import synthetic_statistics
from voxloop.experiments.stats import Proportion, SampleMean, lift


def test_p_value_is_the_inverse_of_the_gaussian_mixture_likelihood_ratio():
    """Johari et al.'s mSPRT: integrate the likelihood ratio over the N(0, 1/rho) mixture."""
    estimate, variance, n, alpha, tuning = 0.021, 0.0001, 8000, 0.05, 5000
    rho = mixture_rho(alpha, tuning)
    z_sum = estimate / math.sqrt(variance) * math.sqrt(n)  # the standardised sum S_n

    def integrand(lam: float) -> float:
        return math.exp(lam * z_sum - lam * lam * n / 2) * sps.norm.pdf(lam, 0, 1 / math.sqrt(rho))

    ratio, _ = integrate.quad(integrand, -1, 1, points=[z_sum / n], limit=200)
    _, _, p_value = confidence_sequence(estimate, variance, n, alpha=alpha, tuning=tuning)
    assert p_value == pytest.approx(min(1.0, 1.0 / ratio), rel=1e-6)


@given(
    estimate=st.floats(-1.0, 1.0),
    se=st.floats(1e-3, 1.0),
    n=st.integers(10, 10**7),
    alpha=st.sampled_from([0.01, 0.05, 0.1]),
)
def test_interval_excludes_zero_exactly_when_p_is_below_alpha(estimate, se, n, alpha):
    low, high, p_value = confidence_sequence(estimate, se * se, n, alpha=alpha)
    excludes = low > 0 or high < 0
    margin = abs(p_value - alpha) / alpha
    if margin > 1e-6:  # away from the boundary, where rounding could tip either way
        assert excludes == (p_value < alpha)


def test_tuning_puts_the_narrowest_interval_near_the_tuning_sample_size():
    alpha, tuning, n, variance = 0.05, 5000, 5000, 1.0 / 5000

    def width(rho_scale: float) -> float:
        # Width at n for a mixing variance rho_scale times the tuned one.
        return confidence_sequence(0.0, variance, n, alpha=alpha, tuning=tuning * rho_scale)[1]

    tuned = width(1.0)
    assert tuned <= min(width(s) for s in np.geomspace(0.1, 10, 41)) * 1.01


def test_a_confidence_sequence_is_wider_than_the_fixed_horizon_interval():
    control, treatment = Proportion(5000, 500), Proportion(5000, 560)
    fixed = lift(control, treatment)
    always = sequential_lift(control, treatment)
    assert always.estimate == fixed.estimate
    assert always.ci_low < fixed.ci_low and always.ci_high > fixed.ci_high
    assert always.p_value > fixed.p_value
    assert 1.3 < (always.ci_high - always.ci_low) / (fixed.ci_high - fixed.ci_low) < 2.5


def test_aa_with_daily_peeking_keeps_false_positives_at_most_alpha():
    """300 A/A experiments looked at every day for 20 days (test-sized; the benchmark
    runs 2,000+). Stopping at the first fixed-horizon p < 0.05 would be wrong ~25 % of the
    time; the sequential test stays at or below 5 %."""
    rng = np.random.default_rng(7)
    experiments, days = 300, 20
    sequential = naive = 0
    for metric in ("proportion", "mean"):
        a = synthetic_statistics(metric, experiments=experiments, users_per_day=150,
                                 days=days, rng=rng)  # fmt: skip
        b = synthetic_statistics(metric, experiments=experiments, users_per_day=150,
                                 days=days, rng=rng)  # fmt: skip
        for control, treatment in zip(a, b, strict=True):
            looks = [sequential_lift(c, t).p_value for c, t in zip(control, treatment, strict=True)]
            sequential += always_valid_p_value(looks) < 0.05
            naive += any(lift(c, t).p_value < 0.05 for c, t in zip(control, treatment, strict=True))
    total = 2 * experiments
    assert sequential / total <= 0.05
    assert naive / total > 0.12  # why peeking needs this module


def test_a_real_effect_is_detected_and_stays_detected():
    rng = np.random.default_rng(11)
    a = synthetic_statistics("proportion", experiments=50, users_per_day=500, days=20, rng=rng)
    b = synthetic_statistics("proportion", experiments=50, users_per_day=500, days=20,
                             lift=0.25, rng=rng)  # fmt: skip
    detected = [
        always_valid_p_value(sequential_lift(c, t).p_value for c, t in zip(x, y, strict=True))
        < 0.05
        for x, y in zip(a, b, strict=True)
    ]
    assert np.mean(detected) >= 0.9


def test_degenerate_inputs_give_a_status_and_bad_settings_a_data_error():
    res = sequential_lift(SampleMean(0, 0.0, 0.0), SampleMean(5, 5.0, 5.0))
    assert res.status == "no_users" and res.p_value is None and res.ci_low is None
    with pytest.raises(DataError):
        mixture_rho(1.5)
    with pytest.raises(DataError):
        mixture_rho(0.05, tuning=0)
    with pytest.raises(DataError):
        always_valid_p_value([0.3, 1.2])
