"""Bayesian analysis of a lift: chance to beat control, expected loss, credible interval.

Two models over the same sufficient statistics:

- `gaussian_lift` (any metric, as GrowthBook's Bayesian engine): the likelihood of the
  lift is normal, ``N(estimate, se^2)`` from the delta method (`stats.difference`), and
  the prior on the lift is ``N(prior.mean, prior.sd^2)``. The **default prior is flat**
  (``sd = None``, improper uniform): the posterior is then ``N(estimate, se^2)``, the
  credible interval equals the z confidence interval and the chance to beat control is
  ``Phi(estimate / se)``. A weakly-informative alternative is ``GaussianPrior(0, 0.3)``
  on the relative lift ("most changes move a metric by less than ±60 %"), which shrinks
  noisy early estimates toward 0.
- `beta_binomial` (proportions only): conjugate ``Beta(a, b)`` priors per arm, default
  ``Beta(1, 1)`` (uniform on the rate); chance to beat control and expected losses are
  computed by one-dimensional quadrature, not simulation, so they are reproducible.

"Better" follows ``higher_is_better``: for a metric where lower is better (latency,
errors) the chance to win is the posterior probability that the lift is negative.
Expected loss is what you give up, in the lift's units, if you pick that arm and it is
in fact the worse one: ``E[max(0, -lift)]`` for shipping the treatment (sign flipped for
lower-is-better), and ``E[max(0, lift)]`` for keeping the control.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, special
from scipy.stats import beta as beta_dist

from voxloop.errors import DataError
from voxloop.experiments.stats import Difference, Proportion, Statistic, Status, difference

__all__ = [
    "BayesResult",
    "BetaBinomialResult",
    "GaussianPrior",
    "beta_binomial",
    "gaussian_lift",
    "gaussian_posterior",
]


@dataclass(frozen=True, slots=True)
class GaussianPrior:
    """A normal prior on the lift; ``sd=None`` is the flat (improper uniform) prior."""

    mean: float = 0.0
    sd: float | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean):
            raise DataError(f"prior mean must be finite, got {self.mean!r}", field="prior.mean")
        if self.sd is not None and not (self.sd > 0 and math.isfinite(self.sd)):
            raise DataError(f"prior sd must be positive, got {self.sd!r}", field="prior.sd")


@dataclass(frozen=True, slots=True)
class BayesResult:
    """The posterior of a lift and the decision quantities derived from it."""

    status: Status
    relative: bool
    prior: GaussianPrior
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    ci_level: float
    chance_to_win: float | None
    expected_loss: float | None
    """Expected loss of shipping the treatment (``E[max(0, -lift)]``, direction-aware)."""
    risk_control: float | None
    """Expected loss of keeping the control."""
    difference: Difference


def _normal_losses(mean: float, sd: float) -> tuple[float, float]:
    """``(E[max(0, -X)], E[max(0, X)])`` for ``X ~ N(mean, sd^2)``."""
    z = mean / sd
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    lose = sd * pdf - mean * float(special.ndtr(-z))
    gain = sd * pdf + mean * float(special.ndtr(z))
    return max(0.0, lose), max(0.0, gain)


def gaussian_posterior(
    diff: Difference,
    *,
    prior: GaussianPrior | None = None,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> BayesResult:
    """The normal posterior of a `Difference` under ``prior`` (flat by default)."""
    prior = prior if prior is not None else GaussianPrior()
    if not 0 < alpha < 1:
        raise DataError(f"alpha must be in (0, 1), got {alpha!r}", field="alpha")
    if diff.status != "ok" or diff.variance is None or diff.estimate is None:
        return BayesResult(
            diff.status, diff.relative, prior, diff.estimate, None, None, None, 1 - alpha,
            None, None, None, diff,
        )  # fmt: skip
    precision = 1.0 / diff.variance
    weighted = diff.estimate * precision
    if prior.sd is not None:
        precision += 1.0 / prior.sd**2
        weighted += prior.mean / prior.sd**2
    mean = weighted / precision
    sd = math.sqrt(1.0 / precision)
    half = float(special.ndtri(1 - alpha / 2)) * sd
    signed = mean if higher_is_better else -mean
    chance = float(special.ndtr(signed / sd))
    loss_ship, loss_keep = _normal_losses(signed, sd)
    return BayesResult(
        "ok", diff.relative, prior, mean, sd, mean - half, mean + half, 1 - alpha, chance,
        loss_ship, loss_keep, diff,
    )  # fmt: skip


def gaussian_lift(
    control: Statistic,
    treatment: Statistic,
    *,
    relative: bool = True,
    prior: GaussianPrior | None = None,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> BayesResult:
    """Bayesian analysis of the lift of ``treatment`` over ``control`` (normal model)."""
    return gaussian_posterior(
        difference(control, treatment, relative=relative),
        prior=prior,
        alpha=alpha,
        higher_is_better=higher_is_better,
    )


@dataclass(frozen=True, slots=True)
class BetaBinomialResult:
    """Conjugate beta posteriors of two rates and the decision quantities.

    ``chance_to_win`` is ``P(p_t > p_c)`` (``<`` when lower is better); losses are in
    absolute rate units; ``control_ci``/``treatment_ci`` are equal-tailed credible
    intervals of each arm's rate.
    """

    prior: tuple[float, float]
    control_posterior: tuple[float, float]
    treatment_posterior: tuple[float, float]
    control_ci: tuple[float, float]
    treatment_ci: tuple[float, float]
    ci_level: float
    chance_to_win: float
    expected_loss: float
    risk_control: float


def _beta_losses(narrow: tuple[float, float], wide: tuple[float, float]) -> tuple[float, ...]:
    """``P(W > N)``, ``E[max(0, N - W)]``, ``E[max(0, W - N)]`` for independent betas.

    Integrates over the quantile ``u`` of the narrower posterior ``N``, where the
    integrand (a smooth function of the wider one's CDF) is well behaved even when both
    posteriors are very concentrated.
    """
    a_w, b_w = wide
    mean_w = a_w / (a_w + b_w)

    def at(u: float) -> tuple[float, float, float]:
        c = float(beta_dist.ppf(u, *narrow))
        cdf = float(special.betainc(a_w, b_w, c))
        cdf_up = float(special.betainc(a_w + 1, b_w, c))
        below = c * cdf - mean_w * cdf_up  # E[max(0, c - W)]
        above = mean_w * (1 - cdf_up) - c * (1 - cdf)  # E[max(0, W - c)]
        return 1.0 - cdf, max(0.0, below), max(0.0, above)

    values, _ = integrate.quad_vec(
        lambda u: np.array(at(u)), 0.0, 1.0, epsabs=1e-12, epsrel=1e-9, limit=400
    )
    values = [float(v) for v in values]
    return tuple(values)


def beta_binomial(
    control: Proportion,
    treatment: Proportion,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> BetaBinomialResult:
    """Conjugate Bayesian comparison of two rates with ``Beta(*prior)`` priors."""
    if not isinstance(control, Proportion) or not isinstance(treatment, Proportion):
        raise DataError("beta_binomial compares two Proportion statistics")
    a0, b0 = prior
    if not (a0 > 0 and b0 > 0 and math.isfinite(a0) and math.isfinite(b0)):
        raise DataError(f"beta prior parameters must be positive, got {prior!r}", field="prior")
    if not 0 < alpha < 1:
        raise DataError(f"alpha must be in (0, 1), got {alpha!r}", field="alpha")
    post_c = (a0 + control.successes, b0 + control.n - control.successes)
    post_t = (a0 + treatment.successes, b0 + treatment.n - treatment.successes)

    def interval(params: tuple[float, float]) -> tuple[float, float]:
        low, high = beta_dist.ppf([alpha / 2, 1 - alpha / 2], *params)
        return float(low), float(high)

    def spread(params: tuple[float, float]) -> float:
        a, b = params
        return a * b / ((a + b) ** 2 * (a + b + 1))

    # P(T > C), E[max(0, C - T)], E[max(0, T - C)]
    if spread(post_t) <= spread(post_c):
        p_c_above, t_over, c_over = _beta_losses(post_t, post_c)
        p_t_above = 1.0 - p_c_above
    else:
        p_t_above, c_over, t_over = _beta_losses(post_c, post_t)
    if higher_is_better:
        chance, loss_ship, loss_keep = p_t_above, c_over, t_over
    else:
        chance, loss_ship, loss_keep = 1.0 - p_t_above, t_over, c_over
    return BetaBinomialResult(
        (float(a0), float(b0)), post_c, post_t, interval(post_c), interval(post_t), 1 - alpha,
        min(1.0, max(0.0, chance)), loss_ship, loss_keep,
    )  # fmt: skip
