"""Frequentist A/B statistics computed from sufficient statistics.

Every metric of an arm is summarised by a small frozen value holding counts, sums, sums of
squares and cross-products — what one SQL ``GROUP BY arm`` returns — so the same engine
analyses a DuckDB result, a Spark aggregate or any warehouse's numbers:

=====================  =====================================================================
`SampleMean`           a per-user mean (``n``, ``sum``, ``sum_squares``)
`Proportion`           a per-user rate (``n``, ``successes``): a mean of 0/1 values
`RatioStatistic`       a ratio of sums with users as the unit (defects per turn), delta method
`RegressionAdjusted`   a mean with a pre-period covariate, for CUPED
=====================  =====================================================================

`difference` reduces a (control, treatment) pair to an estimate of the lift and its
sampling variance; `lift` (`absolute_lift`, `relative_lift`) turns that into a two-sided
test and confidence interval. The sequential (`voxloop.experiments.sequential`) and
Bayesian (`voxloop.experiments.bayes`) engines take the same `Difference`.

Conventions, as in GrowthBook's gbstats:

- ``variance`` of a statistic is the per-user variance, so ``variance / n`` is the sampling
  variance of its ``mean``. Means use the ``n - 1`` sample variance; `Proportion` uses
  ``p (1 - p)``, the variance of the Wald z-test.
- The relative lift is ``treatment / control - 1``; its variance is the delta method on the
  ratio of the two independent means:
  ``v_t / (m_c^2 n_t) + m_t^2 v_c / (m_c^4 n_c)``.
- CUPED (`RegressionAdjusted` pairs) compares ``y - theta (x - c)`` per arm, with the
  pooled within-arm slope ``theta`` (`cuped_theta`) and the pooled pre-period mean ``c``
  both treated as constants: the absolute lift is the treatment coefficient of OLS
  ``y ~ arm + x``, and the relative lift is the ratio of these adjusted means (which stay
  on the metric's own scale) minus 1.
- `SampleMean` comparisons are Welch t-tests (Welch–Satterthwaite degrees of freedom over
  the two arms' shares of the variance); proportions, ratios and CUPED use the normal (z).
- A comparison that cannot be made (no users, one user, zero variance, a zero control
  mean for a relative lift, a zero ratio denominator) gives a result with that ``status``
  and ``None`` in place of numbers — never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from voxloop.errors import DataError

__all__ = [
    "STATUS_MESSAGES",
    "Difference",
    "LiftResult",
    "Proportion",
    "RatioStatistic",
    "RegressionAdjusted",
    "SRMResult",
    "SampleMean",
    "Statistic",
    "Status",
    "absolute_lift",
    "adjust_p_values",
    "benjamini_hochberg",
    "cuped_theta",
    "difference",
    "frequentist_test",
    "holm",
    "lift",
    "relative_lift",
    "srm_check",
]

Status = Literal[
    "ok",
    "no_users",
    "too_few_users",
    "zero_variance",
    "zero_baseline",
    "zero_denominator",
]
"""Why a comparison has (``"ok"``) or has not got numbers."""

STATUS_MESSAGES: dict[str, str] = {
    "ok": "ok",
    "no_users": "an arm has no users",
    "too_few_users": "an arm has fewer than 2 users",
    "zero_variance": "zero variance in both arms: no test is possible",
    "zero_baseline": "the control mean is 0: a relative lift is undefined",
    "zero_denominator": "a ratio's denominator sums to 0 in an arm",
}
"""One plain sentence per `Status`."""

_REL_TOL = 1e-9


def _check_count(value: object, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DataError(f"{owner}.{name} must be an integer count, got {value!r}", field=name)
    if value < 0:
        raise DataError(f"{owner}.{name} must be >= 0, got {value}", field=name)
    return int(value)


def _check_finite(value: object, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise DataError(f"{owner}.{name} must be a number, got {value!r}", field=name)
    if not math.isfinite(float(value)):
        raise DataError(f"{owner}.{name} must be finite, got {value!r}", field=name)
    return float(value)


def _centered(n: int, sum_x: float, sum_y: float, sum_xy: float) -> float:
    """``sum((x - mean_x)(y - mean_y))`` from raw sums (0 when ``n`` is 0)."""
    return sum_xy - sum_x * sum_y / n if n else 0.0


def _check_sum_squares(n: int, total: float, squares: float, name: str, owner: str) -> None:
    """Cauchy–Schwarz: ``sum^2 <= n * sum_squares`` for any real values."""
    if squares < 0 or total * total > n * squares * (1 + _REL_TOL) + 1e-12:
        raise DataError(
            f"{owner}.{name} = {squares!r} is too small for n = {n} and sum = {total!r}: "
            "these cannot come from real values (is it the sum of squares?)",
            field=name,
        )


def _paired_sums(
    a: npt.ArrayLike, b: npt.ArrayLike, what: str
) -> tuple[int, float, float, float, float, float]:
    """``n, sum(a), sum(a²), sum(b), sum(b²), sum(ab)`` of two per-user arrays."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise DataError(f"{what} differ in length", field="values")
    return (
        int(x.size),
        float(x.sum()),
        float(np.dot(x, x)),
        float(y.sum()),
        float(np.dot(y, y)),
        float(np.dot(x, y)),
    )


@dataclass(frozen=True, slots=True)
class SampleMean:
    """A per-user mean: ``n`` users, the ``sum`` and ``sum_squares`` of their values."""

    n: int
    sum: float
    sum_squares: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _check_count(self.n, "n", "SampleMean"))
        object.__setattr__(self, "sum", _check_finite(self.sum, "sum", "SampleMean"))
        squares = _check_finite(self.sum_squares, "sum_squares", "SampleMean")
        object.__setattr__(self, "sum_squares", squares)
        _check_sum_squares(self.n, self.sum, squares, "sum_squares", "SampleMean")

    @classmethod
    def from_values(cls, values: npt.ArrayLike) -> SampleMean:
        """The statistic of raw per-user values."""
        x = np.asarray(values, dtype=float)
        return cls(int(x.size), float(x.sum()), float(np.dot(x, x)))

    @property
    def mean(self) -> float:
        """The mean (0 when there are no users: check ``n`` first)."""
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The ``n - 1`` sample variance (0 with fewer than 2 users)."""
        if self.n < 2:
            return 0.0
        return max(0.0, _centered(self.n, self.sum, self.sum, self.sum_squares) / (self.n - 1))


@dataclass(frozen=True, slots=True)
class Proportion:
    """A per-user rate: ``successes`` of ``n`` users (a mean of 0/1 values)."""

    n: int
    successes: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _check_count(self.n, "n", "Proportion"))
        successes = _check_count(self.successes, "successes", "Proportion")
        object.__setattr__(self, "successes", successes)
        if successes > self.n:
            raise DataError(
                f"Proportion.successes = {successes} exceeds n = {self.n}", field="successes"
            )

    @classmethod
    def from_values(cls, values: npt.ArrayLike) -> Proportion:
        """The statistic of raw per-user 0/1 (or boolean) values."""
        x = np.asarray(values)
        if x.size and not np.isin(x, (0, 1)).all():
            raise DataError("Proportion.from_values needs 0/1 values", field="values")
        return cls(int(x.size), int(np.count_nonzero(x)))

    @property
    def mean(self) -> float:
        """The rate (0 when there are no users: check ``n`` first)."""
        return self.successes / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """``p (1 - p)``: the per-user variance the Wald z-test uses."""
        p = self.mean
        return p * (1.0 - p)


@dataclass(frozen=True, slots=True)
class RatioStatistic:
    """A ratio of two per-user sums, ``sum(m) / sum(d)``, with users as the unit.

    Each user contributes a numerator ``m`` (defects) and a denominator ``d`` (turns); the
    fields are sums over users of ``m``, ``m^2``, ``d``, ``d^2`` and ``m d``. Because users,
    not turns, are randomized, the variance comes from the delta method on the two
    per-user means (the turns of one user are not independent):
    ``Var(m/d) ≈ [s_m^2 - 2 R s_md + R^2 s_d^2] / (n mean_d^2)`` with ``R = sum m / sum d``.
    """

    n: int
    m_sum: float
    m_sum_squares: float
    d_sum: float
    d_sum_squares: float
    md_cross: float

    def __post_init__(self) -> None:
        owner = "RatioStatistic"
        object.__setattr__(self, "n", _check_count(self.n, "n", owner))
        for name in ("m_sum", "m_sum_squares", "d_sum", "d_sum_squares", "md_cross"):
            object.__setattr__(self, name, _check_finite(getattr(self, name), name, owner))
        _check_sum_squares(self.n, self.m_sum, self.m_sum_squares, "m_sum_squares", owner)
        _check_sum_squares(self.n, self.d_sum, self.d_sum_squares, "d_sum_squares", owner)

    @classmethod
    def from_values(cls, numerators: npt.ArrayLike, denominators: npt.ArrayLike) -> RatioStatistic:
        """The statistic of raw per-user numerators and denominators."""
        return cls(*_paired_sums(numerators, denominators, "numerators and denominators"))

    @property
    def mean(self) -> float:
        """``sum(m) / sum(d)`` (0 when the denominator sums to 0: check it first)."""
        return self.m_sum / self.d_sum if self.d_sum else 0.0

    @property
    def variance(self) -> float:
        """The per-user delta-method variance, so ``variance / n`` is ``Var(mean)``."""
        n = self.n
        if n < 2 or self.d_sum == 0:
            return 0.0
        d_mean = self.d_sum / n
        ratio = self.m_sum / self.d_sum
        var_m = _centered(n, self.m_sum, self.m_sum, self.m_sum_squares) / (n - 1)
        var_d = _centered(n, self.d_sum, self.d_sum, self.d_sum_squares) / (n - 1)
        cov = _centered(n, self.m_sum, self.d_sum, self.md_cross) / (n - 1)
        return max(0.0, (var_m - 2 * ratio * cov + ratio * ratio * var_d) / (d_mean * d_mean))


@dataclass(frozen=True, slots=True)
class RegressionAdjusted:
    """A per-user mean ``y`` with a pre-period covariate ``x``, for CUPED.

    Holds the sums of ``y`` (post period), ``x`` (pre period, e.g. the same metric in the
    weeks before the experiment; 0 for users with no history), their squares and the sum
    of ``x y``. See `cuped_theta` for the adjustment.
    """

    n: int
    post_sum: float
    post_sum_squares: float
    pre_sum: float
    pre_sum_squares: float
    post_pre_cross: float

    def __post_init__(self) -> None:
        owner = "RegressionAdjusted"
        object.__setattr__(self, "n", _check_count(self.n, "n", owner))
        for name in (
            "post_sum",
            "post_sum_squares",
            "pre_sum",
            "pre_sum_squares",
            "post_pre_cross",
        ):
            object.__setattr__(self, name, _check_finite(getattr(self, name), name, owner))
        _check_sum_squares(self.n, self.post_sum, self.post_sum_squares, "post_sum_squares", owner)
        _check_sum_squares(self.n, self.pre_sum, self.pre_sum_squares, "pre_sum_squares", owner)

    @classmethod
    def from_values(cls, post: npt.ArrayLike, pre: npt.ArrayLike) -> RegressionAdjusted:
        """The statistic of raw per-user post-period values and pre-period covariates."""
        return cls(*_paired_sums(post, pre, "post and pre values"))

    @property
    def post(self) -> SampleMean:
        """The unadjusted post-period mean."""
        return SampleMean(self.n, self.post_sum, self.post_sum_squares)

    @property
    def pre(self) -> SampleMean:
        """The pre-period covariate's mean."""
        return SampleMean(self.n, self.pre_sum, self.pre_sum_squares)

    @property
    def mean(self) -> float:
        """The unadjusted post-period mean."""
        return self.post.mean

    @property
    def variance(self) -> float:
        """The unadjusted post-period sample variance."""
        return self.post.variance

    @property
    def covariance(self) -> float:
        """The ``n - 1`` sample covariance of post and pre values."""
        if self.n < 2:
            return 0.0
        return _centered(self.n, self.pre_sum, self.post_sum, self.post_pre_cross) / (self.n - 1)


Statistic = SampleMean | Proportion | RatioStatistic | RegressionAdjusted
"""Any per-arm sufficient statistic."""


def cuped_theta(*arms: RegressionAdjusted) -> float:
    """The CUPED coefficient: the pooled within-arm slope of post on pre values.

    ``theta = sum_arms S_xy / sum_arms S_xx`` (centered within each arm). This is the
    covariate's coefficient in the OLS regression ``y ~ arm + x``, so the adjusted
    difference of means equals that regression's treatment coefficient. It is 0 when the
    pre-period has no variance (e.g. every user is new): CUPED then changes nothing.
    """
    sxy = sum(_centered(a.n, a.pre_sum, a.post_sum, a.post_pre_cross) for a in arms)
    sxx = sum(_centered(a.n, a.pre_sum, a.pre_sum, a.pre_sum_squares) for a in arms)
    # Treat a pre-period variance that is round-off of zero as zero.
    scale = sum(a.pre_sum_squares for a in arms)
    if sxx <= 1e-12 * max(scale, 1.0):
        return 0.0
    return sxy / sxx


@dataclass(frozen=True, slots=True)
class Difference:
    """A lift estimate and its sampling variance, before any test is applied.

    ``status`` says whether the numbers can be tested (see `Status`). ``estimate`` is the
    absolute (``treatment - control``) or relative (``treatment / control - 1``) lift;
    ``variance`` its delta-method sampling variance, split into the two arms' shares
    ``variance_control + variance_treatment``. ``dof`` is the Welch–Satterthwaite degrees
    of freedom for `SampleMean`, ``math.inf`` (normal) otherwise. ``theta`` is the CUPED
    coefficient when the statistics were `RegressionAdjusted`.
    """

    status: Status
    relative: bool
    estimate: float | None
    variance: float | None
    variance_control: float | None
    variance_treatment: float | None
    dof: float | None
    n_control: int
    n_treatment: int
    control_mean: float | None
    treatment_mean: float | None
    theta: float | None = None

    @property
    def se(self) -> float | None:
        """The standard error of the estimate."""
        return math.sqrt(self.variance) if self.variance is not None else None


def _moments(
    control: Statistic, treatment: Statistic
) -> tuple[float, float, float, float, float | None]:
    """``(mean_c, var_c, mean_t, var_t, theta)``: per-user means and variances to compare.

    For `RegressionAdjusted` pairs the means are CUPED-adjusted toward the pooled
    pre-period mean ``c``: ``y - theta (x - c)``, with per-user variance
    ``s_y^2 + theta^2 s_x^2 - 2 theta s_xy`` (``theta`` and ``c`` treated as constants).
    """
    if isinstance(control, RegressionAdjusted) and isinstance(treatment, RegressionAdjusted):
        theta = cuped_theta(control, treatment)
        center = (control.pre_sum + treatment.pre_sum) / (control.n + treatment.n)

        def adjusted(a: RegressionAdjusted) -> tuple[float, float]:
            pre = a.pre
            mean = a.post.mean - theta * (pre.mean - center)
            var = a.post.variance + theta * theta * pre.variance - 2 * theta * a.covariance
            return mean, max(0.0, var)

        mean_c, var_c = adjusted(control)
        mean_t, var_t = adjusted(treatment)
        return mean_c, var_c, mean_t, var_t, theta
    return control.mean, control.variance, treatment.mean, treatment.variance, None


def difference(control: Statistic, treatment: Statistic, *, relative: bool = True) -> Difference:
    """The lift of ``treatment`` over ``control`` and its delta-method variance.

    Both statistics must be of the same kind; a ``DataError`` says so otherwise.
    """
    if type(control) is not type(treatment):
        raise DataError(
            f"cannot compare a {type(control).__name__} with a {type(treatment).__name__}"
        )
    n_c, n_t = control.n, treatment.n

    def result(
        status: Status,
        means: tuple[float, float, float | None] | None = None,
        estimate: float | None = None,
        shares: tuple[float, float] | None = None,
        dof: float | None = None,
    ) -> Difference:
        mean_c, mean_t, theta = means if means is not None else (None, None, None)
        share_c, share_t = shares if shares is not None else (None, None)
        variance = share_c + share_t if share_c is not None and share_t is not None else None
        return Difference(
            status, relative, estimate, variance, share_c, share_t, dof, n_c, n_t,
            mean_c, mean_t, theta,
        )  # fmt: skip

    if n_c == 0 or n_t == 0:
        return result("no_users")
    if isinstance(control, RatioStatistic) and isinstance(treatment, RatioStatistic):
        if control.d_sum == 0 or treatment.d_sum == 0:
            return result("zero_denominator")
    mean_c, var_c, mean_t, var_t, theta = _moments(control, treatment)
    means = (mean_c, mean_t, theta)
    if n_c < 2 or n_t < 2:
        return result("too_few_users", means)
    if relative:
        if mean_c == 0:
            return result("zero_baseline", means)
        estimate = mean_t / mean_c - 1.0
        share_t = var_t / (mean_c * mean_c * n_t)
        share_c = var_c * mean_t * mean_t / (mean_c**4 * n_c)
    else:
        estimate = mean_t - mean_c
        share_t = var_t / n_t
        share_c = var_c / n_c
    variance = share_c + share_t
    if variance <= 0:
        return result("zero_variance", means, estimate)
    if isinstance(control, SampleMean):
        denominator = share_c * share_c / (n_c - 1) + share_t * share_t / (n_t - 1)
        dof = variance * variance / denominator
    else:
        dof = math.inf
    return result("ok", means, estimate, (share_c, share_t), dof)


@dataclass(frozen=True, slots=True)
class LiftResult:
    """A two-sided test of a lift: estimate, standard error, CI and p-value.

    ``method`` is ``"welch-t"``, ``"z"`` or ``"confidence-sequence"``; ``ci_level`` is
    ``1 - alpha``. When ``status`` is not ``"ok"`` the numbers it cannot give are ``None``.
    """

    status: Status
    relative: bool
    method: str
    estimate: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    ci_level: float
    dof: float | None
    difference: Difference


def _check_alpha(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise DataError(f"alpha must be in (0, 1), got {alpha!r}", field="alpha")
    return float(alpha)


def frequentist_test(diff: Difference, *, alpha: float = 0.05) -> LiftResult:
    """The fixed-horizon two-sided test of a `Difference` (Welch t or z)."""
    alpha = _check_alpha(alpha)
    if diff.status != "ok" or diff.variance is None or diff.estimate is None:
        return LiftResult(
            diff.status, diff.relative, "none", diff.estimate, None, None, None, None,
            1 - alpha, None, diff,
        )  # fmt: skip
    se = math.sqrt(diff.variance)
    stat = diff.estimate / se
    dof = diff.dof if diff.dof is not None else math.inf
    if math.isinf(dof):
        method = "z"
        p_value = 2.0 * float(special.ndtr(-abs(stat)))
        quantile = float(special.ndtri(1 - alpha / 2))
    else:
        method = "welch-t"
        p_value = 2.0 * float(special.stdtr(dof, -abs(stat)))
        quantile = float(special.stdtrit(dof, 1 - alpha / 2))
    half = quantile * se
    return LiftResult(
        "ok", diff.relative, method, diff.estimate, se, diff.estimate - half,
        diff.estimate + half, min(1.0, p_value), 1 - alpha, dof, diff,
    )  # fmt: skip


def lift(
    control: Statistic, treatment: Statistic, *, relative: bool = True, alpha: float = 0.05
) -> LiftResult:
    """Fixed-horizon test of the lift of ``treatment`` over ``control``."""
    return frequentist_test(difference(control, treatment, relative=relative), alpha=alpha)


def absolute_lift(control: Statistic, treatment: Statistic, *, alpha: float = 0.05) -> LiftResult:
    """``treatment - control``: Welch t for means, z otherwise, with a ``1 - alpha`` CI."""
    return lift(control, treatment, relative=False, alpha=alpha)


def relative_lift(control: Statistic, treatment: Statistic, *, alpha: float = 0.05) -> LiftResult:
    """``treatment / control - 1`` with a delta-method CI on the ratio of means."""
    return lift(control, treatment, relative=True, alpha=alpha)


# --------------------------------------------------------------------------- SRM


@dataclass(frozen=True, slots=True)
class SRMResult:
    """A sample-ratio-mismatch check: chi-square goodness of fit of users per arm.

    ``flagged`` is ``p_value < threshold`` (default 0.001, GrowthBook's convention: with
    many experiments a 5 % threshold would cry wolf). When it is set, the arms did not get
    the traffic the design promised and no metric of the experiment can be trusted.
    """

    arms: tuple[str, ...]
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi_square: float
    dof: int
    p_value: float
    threshold: float
    flagged: bool


def srm_check(
    observed_counts: Mapping[str, int] | Sequence[int],
    expected_weights: Mapping[str, float] | Sequence[float],
    *,
    threshold: float = 0.001,
) -> SRMResult:
    """Chi-square test that users split across arms as ``expected_weights`` says.

    Weights are normalised (they need not sum to 1). Mappings are matched by arm name;
    sequences by position (arms are then named ``"0"``, ``"1"``, ...). An arm with weight 0
    that has users is an infinite mismatch (p = 0); with no users at all the check passes
    (p = 1) — there is nothing to check yet.
    """
    if isinstance(observed_counts, Mapping) != isinstance(expected_weights, Mapping):
        raise DataError("pass observed_counts and expected_weights both as mappings or sequences")
    if isinstance(observed_counts, Mapping):
        assert isinstance(expected_weights, Mapping)
        if set(observed_counts) != set(expected_weights):
            raise DataError(
                f"arms differ: counts for {sorted(observed_counts)}, "
                f"weights for {sorted(expected_weights)}"
            )
        names = tuple(expected_weights)
        counts = [observed_counts[a] for a in names]
        weights = [float(expected_weights[a]) for a in names]
    else:
        assert not isinstance(expected_weights, Mapping)
        if len(observed_counts) != len(expected_weights):
            raise DataError(
                f"{len(observed_counts)} counts but {len(expected_weights)} expected weights"
            )
        names = tuple(str(i) for i in range(len(observed_counts)))
        counts = list(observed_counts)
        weights = [float(w) for w in expected_weights]
    if len(names) < 2:
        raise DataError("an SRM check needs at least 2 arms")
    counts = [_check_count(c, "observed_counts", "srm_check") for c in counts]
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise DataError(f"expected weights must be >= 0 with a positive sum, got {weights}")
    if not 0 < threshold < 1:
        raise DataError(f"threshold must be in (0, 1), got {threshold!r}", field="threshold")
    total = sum(counts)
    weight_sum = sum(weights)
    expected = tuple(total * w / weight_sum for w in weights)
    if total == 0:
        return SRMResult(names, tuple(counts), expected, 0.0, len(names) - 1, 1.0, threshold, False)
    chi_square = 0.0
    cells = 0
    for count, exp in zip(counts, expected, strict=True):
        if exp > 0:
            chi_square += (count - exp) ** 2 / exp
            cells += 1
        elif count > 0:
            chi_square = math.inf
    dof = max(cells - 1, 1)
    p_value = 0.0 if math.isinf(chi_square) else float(special.chdtrc(dof, chi_square))
    return SRMResult(
        names, tuple(counts), expected, chi_square, dof, p_value, threshold, p_value < threshold
    )


# --------------------------------------------------------------------------- corrections


def _check_p_values(p_values: Sequence[float]) -> npt.NDArray[np.float64]:
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise DataError("p-values must be a flat sequence")
    if p.size and (not np.isfinite(p).all() or (p < 0).any() or (p > 1).any()):
        raise DataError(f"p-values must be in [0, 1], got {list(p_values)}")
    return p


def holm(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm's step-down adjusted p-values (controls the family-wise error rate).

    The ``k``-th smallest p-value of ``m`` is multiplied by ``m - k + 1``, made
    non-decreasing, and capped at 1. Equal to ``statsmodels`` ``multipletests(method="holm")``.
    """
    p = _check_p_values(p_values)
    m = p.size
    if m == 0:
        return ()
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return tuple(float(v) for v in adjusted)


def benjamini_hochberg(p_values: Sequence[float]) -> tuple[float, ...]:
    """Benjamini–Hochberg adjusted p-values (controls the false discovery rate).

    The ``k``-th smallest p-value of ``m`` is multiplied by ``m / k``, made non-increasing
    from the largest down, and capped at 1. Equal to ``multipletests(method="fdr_bh")``.
    """
    p = _check_p_values(p_values)
    m = p.size
    if m == 0:
        return ()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, monotone)
    return tuple(float(v) for v in adjusted)


def adjust_p_values(
    p_values: Sequence[float], method: Literal["holm", "bh", "none"]
) -> tuple[float, ...]:
    """Holm (``"holm"``), Benjamini–Hochberg (``"bh"``) or no (``"none"``) correction."""
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "none":
        return tuple(float(v) for v in _check_p_values(p_values))
    raise DataError(f"unknown correction {method!r} (holm, bh, none)", field="correction")
