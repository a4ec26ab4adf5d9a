"""Sequential testing that stays valid however often you look: Gaussian-mixture
confidence sequences and the matching always-valid p-values (mSPRT).

A fixed-horizon test promises its 5 % error rate only if the data are looked at once, at
the planned sample size. Looking every day and stopping at the first ``p < 0.05``
inflates the false-positive rate several-fold. The intervals here instead hold
*simultaneously at every sample size* with probability ``1 - alpha``: the normal-mixture
boundary of Howard, Ramdas, McAuliffe & Sekhon (2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", eq. 14), applied to the delta-method estimate of the
lift as an asymptotic confidence sequence (Waudby-Smith et al., 2023) — the construction
GrowthBook's sequential engine uses. The always-valid p-value is the inverse of the
mixture likelihood ratio, the mSPRT of Johari, Pekelis & Walsh (2017/2022).

With ``N = n_control + n_treatment`` users so far, ``s^2 = N Var(estimate)`` and mixing
variance ``rho`` (in users), the two-sided ``1 - alpha`` confidence sequence is::

    estimate ± sqrt( s^2 (N + rho) / N^2 · log((N + rho) / (rho alpha^2)) )

and ``p = min(1, sqrt((N + rho) / rho) · exp(-z^2 N / (2 (N + rho))))`` with
``z = estimate / se``; the interval excludes 0 exactly when ``p < alpha``.

**The tuning parameter** ``tuning`` (default 5,000) is the total number of users at
which the interval is tightest: ``rho = tuning / (-2 log alpha + log(1 - 2 log alpha))``
(Howard et al.'s near-optimal choice). Any value keeps the guarantee; a value near the
sample size you expect to reach when you decide gives the narrowest intervals there.
Too small a value widens late intervals; too large widens early ones. At ``tuning`` the
interval is about 1.5-2x as wide as the fixed-horizon one: that is the price of peeking.

**The peeking schedule** is free: look after every user, every day, or irregularly, and
stop the first time the interval excludes 0 (``p < alpha``) — the error rate stays at
most ``alpha`` (in practice below it when looks are sparse, since the guarantee covers
continuous monitoring). What the guarantee assumes:

- statistics are cumulative from the start of the experiment (never a sliding window),
  and the decision to look does not depend on data not yet seen;
- the traffic split does not change during the experiment (a weight change starts a new
  analysis), and users' outcomes are i.i.d. over time (no novelty drift);
- each look has enough users for the normal approximation of the estimate (the
  confidence sequence is asymptotic: treat looks with fewer than ~100 users per arm, or
  a handful of conversions, as uninformative);
- one hypothesis: with several arms or metrics, correct the always-valid p-values
  (Holm or Benjamini–Hochberg stay valid on them).

The p-value of one look is valid on its own; over a run of looks the valid summary is
their running minimum (`always_valid_p_value`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from voxloop.errors import DataError
from voxloop.experiments.stats import Difference, LiftResult, Statistic, difference

__all__ = [
    "DEFAULT_TUNING",
    "always_valid_p_value",
    "confidence_sequence",
    "mixture_rho",
    "sequential_lift",
    "sequential_test",
]

DEFAULT_TUNING = 5000
"""Total users at which the confidence sequence is tightest, unless told otherwise."""


def mixture_rho(alpha: float, tuning: float = DEFAULT_TUNING) -> float:
    """The mixing variance (in users) that makes the boundary tightest at ``tuning`` users."""
    if not 0 < alpha < 1:
        raise DataError(f"alpha must be in (0, 1), got {alpha!r}", field="alpha")
    if not tuning > 0 or not math.isfinite(tuning):
        raise DataError(f"tuning must be a positive number of users, got {tuning!r}")
    log_term = -2.0 * math.log(alpha)
    return tuning / (log_term + math.log(1.0 + log_term))


def confidence_sequence(
    estimate: float,
    variance: float,
    n_total: int,
    *,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> tuple[float, float, float]:
    """``(low, high, p_value)`` of the two-sided confidence sequence at ``n_total`` users.

    ``variance`` is the sampling variance of ``estimate`` (``se^2``).
    """
    if n_total < 1 or variance <= 0:
        raise DataError("a confidence sequence needs users and a positive variance")
    rho = mixture_rho(alpha, tuning)
    n = float(n_total)
    s2 = variance * n
    half = math.sqrt(s2 * (n + rho) / (n * n) * math.log((n + rho) / (rho * alpha * alpha)))
    z2 = estimate * estimate / variance
    log_p = 0.5 * math.log((n + rho) / rho) - z2 * n / (2.0 * (n + rho))
    p_value = 1.0 if log_p >= 0 else math.exp(log_p)
    return estimate - half, estimate + half, p_value


def sequential_test(
    diff: Difference, *, alpha: float = 0.05, tuning: float = DEFAULT_TUNING
) -> LiftResult:
    """The always-valid test of a `Difference`: confidence sequence and mSPRT p-value."""
    if not 0 < alpha < 1:
        raise DataError(f"alpha must be in (0, 1), got {alpha!r}", field="alpha")
    if diff.status != "ok" or diff.variance is None or diff.estimate is None:
        return LiftResult(
            diff.status, diff.relative, "none", diff.estimate, None, None, None, None,
            1 - alpha, None, diff,
        )  # fmt: skip
    low, high, p_value = confidence_sequence(
        diff.estimate,
        diff.variance,
        diff.n_control + diff.n_treatment,
        alpha=alpha,
        tuning=tuning,
    )
    return LiftResult(
        "ok", diff.relative, "confidence-sequence", diff.estimate, math.sqrt(diff.variance),
        low, high, p_value, 1 - alpha, math.inf, diff,
    )  # fmt: skip


def sequential_lift(
    control: Statistic,
    treatment: Statistic,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> LiftResult:
    """Always-valid test of the lift of ``treatment`` over ``control`` at this look."""
    return sequential_test(
        difference(control, treatment, relative=relative), alpha=alpha, tuning=tuning
    )


def always_valid_p_value(p_values: Iterable[float]) -> float:
    """The always-valid p-value after a run of looks: the minimum over the looks so far."""
    best = 1.0
    for p in p_values:
        if not 0 <= p <= 1:
            raise DataError(f"p-values must be in [0, 1], got {p!r}")
        best = min(best, p)
    return best
