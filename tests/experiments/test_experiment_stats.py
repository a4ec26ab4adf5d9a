"""Specification of `voxloop.experiments.stats`: every estimator agrees with scipy and
statsmodels on the same raw data, and bad inputs give a status or a DataError, never NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats._delta_method import NonlinearDeltaCov
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep
from statsmodels.stats.proportion import test_proportions_2indep as wald_2indep

from voxloop.errors import DataError, VoxloopError
from voxloop.experiments.stats import (
    Proportion,
    RatioStatistic,
    RegressionAdjusted,
    SampleMean,
    absolute_lift,
    adjust_p_values,
    benjamini_hochberg,
    cuped_theta,
    difference,
    holm,
    lift,
    relative_lift,
    srm_check,
)

RTOL = 1e-9


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20250601)


# --------------------------------------------------------------------------- statistics


def test_sample_mean_from_sums_has_the_numpy_mean_and_sample_variance(rng):
    x = rng.lognormal(1.0, 0.8, 777)
    stat = SampleMean.from_values(x)
    assert stat.n == 777
    assert stat.mean == pytest.approx(x.mean(), rel=RTOL)
    assert stat.variance == pytest.approx(x.var(ddof=1), rel=1e-8)


def test_proportion_is_a_mean_of_zeros_and_ones_with_bernoulli_variance():
    stat = Proportion.from_values([1, 0, 0, 1, 1, 0, 0, 0])
    assert (stat.n, stat.successes, stat.mean) == (8, 3, 0.375)
    assert stat.variance == pytest.approx(0.375 * 0.625)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SampleMean(-1, 0.0, 0.0), "n"),
        (lambda: SampleMean(2.5, 0.0, 0.0), "n"),  # type: ignore[arg-type]
        (lambda: SampleMean(10, 10.0, 5.0), "sum_squares"),  # impossible: 100 > 10 * 5
        (lambda: SampleMean(10, math.nan, 5.0), "sum"),
        (lambda: Proportion(10, 11), "successes"),
        (lambda: RatioStatistic(5, 1.0, 1.0, 3.0, 1.0, 1.0), "d_sum_squares"),
        (lambda: RegressionAdjusted(5, 1.0, 1.0, 1.0, math.inf, 0.0), "pre_sum_squares"),
    ],
)
def test_impossible_sufficient_statistics_are_data_errors_naming_the_field(make, field):
    with pytest.raises(DataError) as error:
        make()
    assert error.value.field == field


# --------------------------------------------------------------------------- means


@pytest.mark.parametrize(
    ("n_c", "n_t", "sd_c", "sd_t", "shift"),
    [(500, 700, 3.0, 4.0, 0.4), (40, 25, 1.0, 5.0, 1.0), (3000, 3000, 2.0, 2.0, 0.0)],
)
def test_absolute_lift_of_means_is_scipys_welch_t_test(rng, n_c, n_t, sd_c, sd_t, shift):
    a = rng.normal(10.0, sd_c, n_c)
    b = rng.normal(10.0 + shift, sd_t, n_t)
    ours = absolute_lift(SampleMean.from_values(a), SampleMean.from_values(b), alpha=0.1)
    theirs = sps.ttest_ind(b, a, equal_var=False)
    ci = theirs.confidence_interval(confidence_level=0.9)
    assert ours.method == "welch-t"
    assert ours.estimate == pytest.approx(b.mean() - a.mean(), rel=RTOL)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-7)
    assert ours.dof == pytest.approx(theirs.df, rel=1e-7)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-7)


def test_relative_lift_se_is_statsmodels_delta_method_on_the_ratio_of_means(rng):
    a = rng.gamma(2.0, 3.0, 900)
    b = rng.gamma(2.0, 3.3, 1100)
    ours = relative_lift(SampleMean.from_values(a), SampleMean.from_values(b))
    cov = np.diag([a.var(ddof=1) / a.size, b.var(ddof=1) / b.size])
    delta = NonlinearDeltaCov(lambda p: np.array([p[1] / p[0] - 1.0]), [a.mean(), b.mean()], cov)
    assert ours.estimate == pytest.approx(b.mean() / a.mean() - 1.0, rel=RTOL)
    assert ours.se == pytest.approx(math.sqrt(delta.cov()[0, 0]), rel=1e-5)


def test_relative_lift_interval_covers_the_true_lift_at_the_nominal_rate(rng):
    """2,000 simulated experiments with a +10 % true lift on a skewed metric."""
    reps, n = 2000, 400
    a = rng.lognormal(0.0, 0.7, (reps, n))
    b = rng.lognormal(0.0, 0.7, (reps, n)) * 1.1
    covered = 0
    for x, y in zip(a, b, strict=True):
        res = relative_lift(SampleMean.from_values(x), SampleMean.from_values(y))
        covered += res.ci_low <= 0.1 <= res.ci_high
    assert 0.93 <= covered / reps <= 0.97


# --------------------------------------------------------------------------- proportions


@pytest.mark.parametrize(("c", "n_c", "t", "n_t"), [(100, 1000, 130, 1000), (51, 480, 40, 520)])
def test_absolute_lift_of_proportions_is_statsmodels_wald_test(c, n_c, t, n_t):
    ours = absolute_lift(Proportion(n_c, c), Proportion(n_t, t))
    theirs = wald_2indep(t, n_t, c, n_c, method="wald", compare="diff")
    low, high = confint_proportions_2indep(t, n_t, c, n_c, method="wald", compare="diff")
    assert ours.method == "z"
    assert ours.estimate == pytest.approx(theirs.diff, rel=RTOL)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((low, high), rel=1e-9)


def test_relative_lift_of_proportions_is_the_delta_method_z_interval():
    control, treatment = Proportion(2000, 200), Proportion(2000, 236)
    ours = relative_lift(control, treatment, alpha=0.05)
    cov = np.diag([0.1 * 0.9 / 2000, 0.118 * 0.882 / 2000])
    delta = NonlinearDeltaCov(lambda p: np.array([p[1] / p[0] - 1.0]), [0.1, 0.118], cov)
    se = math.sqrt(delta.cov()[0, 0])
    z = sps.norm.ppf(0.975)
    assert ours.se == pytest.approx(se, rel=1e-6)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((0.18 - z * se, 0.18 + z * se), rel=1e-5)
    assert ours.p_value == pytest.approx(2 * sps.norm.sf(0.18 / se), rel=1e-5)


# --------------------------------------------------------------------------- ratios


def _turns_and_defects(rng, n, rate=0.1):
    turns = 1 + rng.poisson(3.0, n)
    user_effect = rng.beta(2, 18, n) * rate / 0.1  # users differ: turns are clustered
    return rng.binomial(turns, np.clip(user_effect, 0, 1)).astype(float), turns.astype(float)


def test_ratio_variance_is_statsmodels_delta_method_with_users_as_the_unit(rng):
    m, d = _turns_and_defects(rng, 1500)
    stat = RatioStatistic.from_values(m, d)
    cov = np.cov(np.vstack([m, d]), ddof=1) / m.size
    delta = NonlinearDeltaCov(lambda p: np.array([p[0] / p[1]]), [m.mean(), d.mean()], cov)
    assert stat.mean == pytest.approx(m.sum() / d.sum(), rel=RTOL)
    assert math.sqrt(stat.variance / stat.n) == pytest.approx(
        math.sqrt(delta.cov()[0, 0]), rel=1e-5
    )


def test_ratio_delta_variance_matches_the_spread_of_ratios_across_experiments(rng):
    reps, n = 3000, 300
    ratios, predicted = [], []
    for _ in range(reps):
        stat = RatioStatistic.from_values(*_turns_and_defects(rng, n))
        ratios.append(stat.mean)
        predicted.append(stat.variance / stat.n)
    # The empirical variance of a variance estimate from 3,000 draws is within ~5 %.
    assert np.var(ratios, ddof=1) == pytest.approx(np.mean(predicted), rel=0.08)


def test_ratio_lift_is_a_z_test_on_the_two_delta_method_variances(rng):
    a = RatioStatistic.from_values(*_turns_and_defects(rng, 2000))
    b = RatioStatistic.from_values(*_turns_and_defects(rng, 2000, rate=0.12))
    res = absolute_lift(a, b)
    se = math.sqrt(a.variance / a.n + b.variance / b.n)
    assert res.method == "z"
    assert res.se == pytest.approx(se, rel=RTOL)
    assert res.p_value == pytest.approx(2 * sps.norm.sf(abs(b.mean - a.mean) / se), rel=1e-9)


# --------------------------------------------------------------------------- CUPED


def _correlated(rng, n, rho, shift=0.0):
    x = rng.normal(5.0, 2.0, n)
    noise = rng.normal(0.0, 2.0, n)
    y = 10.0 + shift + rho * (x - 5.0) + math.sqrt(1 - rho * rho) * noise
    return y, x


def test_cuped_estimate_is_the_treatment_coefficient_of_ols_with_the_covariate(rng):
    y_a, x_a = _correlated(rng, 2500, 0.7)
    y_b, x_b = _correlated(rng, 2000, 0.7, shift=0.15)
    a = RegressionAdjusted.from_values(y_a, x_a)
    b = RegressionAdjusted.from_values(y_b, x_b)
    res = absolute_lift(a, b)
    y = np.concatenate([y_a, y_b])
    treated = np.concatenate([np.zeros(y_a.size), np.ones(y_b.size)])
    design = sm.add_constant(np.column_stack([treated, np.concatenate([x_a, x_b])]))
    ols = sm.OLS(y, design).fit(cov_type="HC1")
    assert res.estimate == pytest.approx(ols.params[1], rel=1e-9)
    assert cuped_theta(a, b) == pytest.approx(ols.params[2], rel=1e-9)
    # The same estimator: CUPED's variance and OLS's robust variance agree asymptotically.
    assert res.se == pytest.approx(ols.bse[1], rel=0.02)


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_cuped_reduces_variance_by_one_minus_rho_squared(rng, rho):
    reps, n = 3000, 200
    plain, adjusted, predicted = [], [], []
    for _ in range(reps):
        y_a, x_a = _correlated(rng, n, rho)
        y_b, x_b = _correlated(rng, n, rho)
        a = RegressionAdjusted.from_values(y_a, x_a)
        b = RegressionAdjusted.from_values(y_b, x_b)
        cuped = absolute_lift(a, b)
        unadjusted = absolute_lift(a.post, b.post)
        plain.append(unadjusted.estimate)
        adjusted.append(cuped.estimate)
        predicted.append((cuped.se / unadjusted.se) ** 2)
    # The reported standard errors shrink by the expected factor ...
    assert np.mean(predicted) == pytest.approx(1 - rho * rho, abs=0.01)
    # ... and so does the actual spread of the estimates across 3,000 experiments
    # (the ratio of the two variances is known to within about ±0.01 here).
    assert np.var(adjusted) / np.var(plain) == pytest.approx(1 - rho * rho, abs=0.03)


def test_cuped_without_pre_period_variance_is_the_plain_comparison(rng):
    y_a, y_b = rng.normal(3, 1, 800), rng.normal(3.1, 1, 800)
    a = RegressionAdjusted.from_values(y_a, np.zeros(800))  # every user is new
    b = RegressionAdjusted.from_values(y_b, np.zeros(800))
    assert cuped_theta(a, b) == 0.0
    cuped = relative_lift(a, b)
    plain = relative_lift(a.post, b.post)
    assert cuped.estimate == pytest.approx(plain.estimate, rel=RTOL)
    assert cuped.se == pytest.approx(plain.se, rel=1e-9)


# --------------------------------------------------------------------------- degenerate


@pytest.mark.parametrize(
    ("control", "treatment", "relative", "status"),
    [
        (SampleMean(0, 0.0, 0.0), SampleMean(10, 5.0, 5.0), True, "no_users"),
        (SampleMean(1, 1.0, 1.0), SampleMean(10, 5.0, 5.0), True, "too_few_users"),
        (SampleMean(10, 20.0, 40.0), SampleMean(10, 20.0, 40.0), True, "zero_variance"),
        (Proportion(100, 0), Proportion(100, 0), False, "zero_variance"),
        (Proportion(100, 0), Proportion(100, 3), True, "zero_baseline"),
        (RatioStatistic(5, 0, 0, 0, 0, 0), RatioStatistic(5, 1, 1, 5, 5, 1), True,
         "zero_denominator"),
    ],
)  # fmt: skip
def test_degenerate_comparisons_give_a_status_and_no_nan(control, treatment, relative, status):
    res = lift(control, treatment, relative=relative)
    assert res.status == status
    assert res.p_value is None and res.ci_low is None and res.ci_high is None and res.se is None
    for value in (res.estimate, res.difference.control_mean):
        assert value is None or math.isfinite(value)


def test_one_arm_with_zero_variance_is_still_a_valid_welch_test(rng):
    b = rng.normal(1.0, 1.0, 50)
    res = absolute_lift(SampleMean(30, 30.0, 30.0), SampleMean.from_values(b))
    assert res.status == "ok"
    assert res.dof == pytest.approx(49.0)
    assert res.p_value == pytest.approx(sps.ttest_1samp(b, 1.0).pvalue, rel=1e-7)


def test_comparing_different_kinds_of_statistic_is_a_data_error():
    with pytest.raises(DataError, match="cannot compare"):
        difference(Proportion(10, 1), SampleMean(10, 1.0, 1.0))


# --------------------------------------------------------------------------- SRM


def test_srm_is_scipys_chi_square_goodness_of_fit():
    observed = {"A": 5120, "B": 2440, "C": 2440}
    res = srm_check(observed, {"A": 0.5, "B": 0.25, "C": 0.25})
    theirs = sps.chisquare([5120, 2440, 2440], [5000, 2500, 2500])
    assert res.chi_square == pytest.approx(theirs.statistic, rel=RTOL)
    assert res.p_value == pytest.approx(theirs.pvalue, rel=1e-9)
    assert res.dof == 2


def test_srm_flags_a_55_45_split_of_10k_users():
    res = srm_check([5500, 4500], [0.5, 0.5])
    assert res.flagged
    assert res.p_value < 1e-20


def test_srm_passes_a_fair_split_and_uses_the_0_001_threshold():
    assert not srm_check([5030, 4970], [0.5, 0.5]).flagged
    borderline = srm_check([5150, 4850], [0.5, 0.5])  # p ≈ 0.0027
    assert 0.001 < borderline.p_value < 0.05 and not borderline.flagged
    assert srm_check([5150, 4850], [0.5, 0.5], threshold=0.01).flagged


def test_srm_with_no_users_yet_passes_and_a_zero_weight_arm_with_users_fails():
    empty = srm_check([0, 0], [0.5, 0.5])
    assert (empty.p_value, empty.flagged) == (1.0, False)
    leaked = srm_check([100, 100, 1], [0.5, 0.5, 0.0])
    assert leaked.flagged and leaked.p_value == 0.0


def test_srm_needs_matching_arms():
    with pytest.raises(DataError, match="arms differ"):
        srm_check({"A": 1, "B": 2}, {"A": 0.5, "C": 0.5})
    with pytest.raises(VoxloopError):
        srm_check([1, 2, 3], [0.5, 0.5])


# --------------------------------------------------------------------------- corrections

p_value_lists = st.lists(
    st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.01, 0.05, 1.0])),
    min_size=1,
    max_size=30,
)


@settings(max_examples=25, deadline=None)  # statsmodels' holm takes ~50 ms a call
@given(p_value_lists)
def test_holm_equals_statsmodels_multipletests(p_values):
    expected = multipletests(p_values, method="holm")[1]
    assert holm(p_values) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(p_value_lists)
def test_benjamini_hochberg_equals_statsmodels_multipletests(p_values):
    expected = multipletests(p_values, method="fdr_bh")[1]
    assert benjamini_hochberg(p_values) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_corrections_handle_ties_and_extremes_like_statsmodels(method):
    p_values = [0.01, 0.04, 0.04, 0.0, 1.0, 0.03, 0.01, 0.2]
    ours = holm(p_values) if method == "holm" else benjamini_hochberg(p_values)
    assert ours == pytest.approx(multipletests(p_values, method=method)[1], rel=1e-12)


def test_corrections_reject_bad_p_values_and_accept_an_empty_family():
    assert holm([]) == () and benjamini_hochberg([]) == ()
    assert adjust_p_values([0.2, 0.01], "none") == (0.2, 0.01)
    with pytest.raises(DataError):
        holm([0.5, math.nan])
    with pytest.raises(DataError):
        adjust_p_values([0.5], "bonferroni")  # type: ignore[arg-type]
