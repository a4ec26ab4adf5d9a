"""Specification of `voxloop.experiments.bayes`: posteriors, chance to win and expected
loss agree with direct numerical integration, closed forms and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special
from scipy import stats as sps

from voxloop.errors import DataError
from voxloop.experiments.bayes import GaussianPrior, beta_binomial, gaussian_lift
from voxloop.experiments.stats import Proportion, SampleMean, relative_lift


def test_flat_prior_credible_interval_is_the_z_confidence_interval():
    control, treatment = Proportion(4000, 400), Proportion(4000, 452)
    bayes = gaussian_lift(control, treatment)
    freq = relative_lift(control, treatment)
    z = sps.norm.ppf(0.975)
    assert bayes.prior == GaussianPrior(0.0, None)
    assert (bayes.mean, bayes.sd) == pytest.approx((freq.estimate, freq.se), rel=1e-12)
    assert (bayes.ci_low, bayes.ci_high) == pytest.approx(
        (freq.estimate - z * freq.se, freq.estimate + z * freq.se), rel=1e-12
    )
    # Chance to win under a flat prior is one minus the one-sided p-value.
    assert bayes.chance_to_win == pytest.approx(1 - freq.p_value / 2, rel=1e-12)


def test_informative_prior_posterior_matches_numerical_integration():
    control, treatment = Proportion(800, 80), Proportion(800, 100)
    prior = GaussianPrior(0.0, 0.1)
    bayes = gaussian_lift(control, treatment, prior=prior)
    est, se = bayes.difference.estimate, bayes.difference.se

    def density(x: float) -> float:
        return sps.norm.pdf(x, est, se) * sps.norm.pdf(x, 0.0, 0.1)

    lo, hi = -2.0, 2.0
    mass = integrate.quad(density, lo, hi, points=[0.0, est])[0]
    mean = integrate.quad(lambda x: x * density(x), lo, hi, points=[0.0, est])[0] / mass
    win = integrate.quad(density, 0.0, hi, points=[est])[0] / mass
    loss = integrate.quad(lambda x: -x * density(x), lo, 0.0)[0] / mass
    assert bayes.mean == pytest.approx(mean, rel=1e-6)
    assert bayes.mean < est  # shrunk toward the prior mean
    assert bayes.chance_to_win == pytest.approx(win, rel=1e-6)
    assert bayes.expected_loss == pytest.approx(loss, rel=1e-5)


def test_expected_losses_are_the_normal_partial_expectations():
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 500), rng.normal(10.1, 2, 500)
    bayes = gaussian_lift(SampleMean.from_values(a), SampleMean.from_values(b), relative=False)
    draws = rng.normal(bayes.mean, bayes.sd, 2_000_000)
    assert bayes.expected_loss == pytest.approx(np.maximum(0, -draws).mean(), rel=0.01)
    assert bayes.risk_control == pytest.approx(np.maximum(0, draws).mean(), rel=0.01)


def test_lower_is_better_flips_the_chance_to_win_and_the_losses():
    control, treatment = Proportion(3000, 300), Proportion(3000, 270)
    up = gaussian_lift(control, treatment)
    down = gaussian_lift(control, treatment, higher_is_better=False)
    assert down.chance_to_win == pytest.approx(1 - up.chance_to_win, rel=1e-12)
    assert (down.expected_loss, down.risk_control) == pytest.approx(
        (up.risk_control, up.expected_loss), rel=1e-12
    )


def _evan_miller_chance(a_c: int, b_c: int, a_t: int, b_t: int) -> float:
    """Closed form of P(p_t > p_c) for Beta posteriors with integer a_t (E. Miller)."""
    total = 0.0
    for i in range(a_t):
        total += math.exp(
            special.betaln(a_c + i, b_c + b_t)
            - math.log(b_t + i)
            - special.betaln(1 + i, b_t)
            - special.betaln(a_c, b_c)
        )
    return total


@pytest.mark.parametrize(("c", "n_c", "t", "n_t"), [(10, 100, 18, 100), (40, 500, 35, 300)])
def test_beta_binomial_chance_to_win_is_the_closed_form(c, n_c, t, n_t):
    res = beta_binomial(Proportion(n_c, c), Proportion(n_t, t))
    expected = _evan_miller_chance(1 + c, 1 + n_c - c, 1 + t, 1 + n_t - t)
    assert res.chance_to_win == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("control", "treatment"),
    [
        (Proportion(1000, 100), Proportion(1000, 120)),
        (Proportion(1000, 100), Proportion(200_000, 21_000)),  # very different widths
        (Proportion(50_000, 5000), Proportion(800, 70)),
    ],
)
def test_beta_binomial_agrees_with_simulation(control, treatment):
    rng = np.random.default_rng(5)
    res = beta_binomial(control, treatment)
    p_c = rng.beta(*res.control_posterior, 2_000_000)
    p_t = rng.beta(*res.treatment_posterior, 2_000_000)
    assert res.chance_to_win == pytest.approx((p_t > p_c).mean(), abs=0.002)
    assert res.expected_loss == pytest.approx(np.maximum(0, p_c - p_t).mean(), rel=0.02, abs=1e-6)
    assert res.risk_control == pytest.approx(np.maximum(0, p_t - p_c).mean(), rel=0.02, abs=1e-6)
    assert res.control_ci == pytest.approx(tuple(np.quantile(p_c, [0.025, 0.975])), rel=0.01)


def test_bad_priors_are_data_errors_and_degenerate_inputs_a_status():
    with pytest.raises(DataError):
        GaussianPrior(0.0, -1.0)
    with pytest.raises(DataError):
        beta_binomial(Proportion(10, 1), Proportion(10, 2), prior=(0.0, 1.0))
    res = gaussian_lift(Proportion(0, 0), Proportion(10, 1))
    assert res.status == "no_users" and res.chance_to_win is None and res.expected_loss is None
