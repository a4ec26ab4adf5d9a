"""Power, sample size and minimum detectable effect for two-arm tests (two-sided).

Plan before you run: how many users per arm does an effect need, or what effect can the
traffic you have detect? Conventions:

- ``n_control`` users in the control arm and ``ratio * n_control`` in the treatment
  (``ratio = n_treatment / n_control``); sample sizes are rounded up to whole users.
- ``effect`` is the absolute difference ``treatment - control`` (for a relative lift
  ``r`` on a baseline ``b``, pass ``r * b``); minimum detectable effects are positive.
- Means: the exact power of the two-sample t-test with a common ``sd``, from the
  noncentral t distribution (as ``statsmodels.stats.power.TTestIndPower``).
- Proportions: the normal approximation with the pooled variance under the null and the
  unpooled one under the alternative (Fleiss; as
  ``statsmodels.stats.proportion.power_proportions_2indep``).
- Both tails count toward power. With ``k`` treatment arms compared to one control,
  plan with ``alpha / k`` to leave room for the multiple-comparison correction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scipy import optimize, special

from voxloop.errors import DataError

__all__ = [
    "SampleSize",
    "mde_mean",
    "mde_proportion",
    "power_mean",
    "power_proportion",
    "sample_size_mean",
    "sample_size_proportion",
]

_MAX_USERS = 10**12


@dataclass(frozen=True, slots=True)
class SampleSize:
    """Users needed per arm (whole users) and in total."""

    control: int
    treatment: int

    @property
    def total(self) -> int:
        """Users in both arms."""
        return self.control + self.treatment


def _check(alpha: float, ratio: float, power: float | None = None) -> None:
    if not 0 < alpha < 1:
        raise DataError(f"alpha must be in (0, 1), got {alpha!r}", field="alpha")
    if not (ratio > 0 and math.isfinite(ratio)):
        raise DataError(f"ratio must be positive, got {ratio!r}", field="ratio")
    if power is not None and not alpha < power < 1:
        raise DataError(f"power must be in (alpha, 1), got {power!r}", field="power")


def _check_sd(sd: float) -> None:
    if not (sd > 0 and math.isfinite(sd)):
        raise DataError(f"sd must be positive, got {sd!r}", field="sd")


def _check_rate(rate: float, name: str) -> None:
    if not 0 < rate < 1:
        raise DataError(f"{name} must be a rate in (0, 1), got {rate!r}", field=name)


def power_mean(
    effect: float, sd: float, n_control: float, *, ratio: float = 1.0, alpha: float = 0.05
) -> float:
    """Power of the two-sided two-sample t-test to detect ``effect`` (common ``sd``)."""
    _check(alpha, ratio)
    _check_sd(sd)
    n_t = ratio * n_control
    dof = n_control + n_t - 2
    if dof <= 0:
        raise DataError("power needs more than 2 users in total", field="n_control")
    noncentrality = (effect / sd) / math.sqrt(1 / n_control + 1 / n_t)
    crit = float(special.stdtrit(dof, 1 - alpha / 2))
    # P(T > crit) + P(T < -crit), the second as P(T > crit) under -noncentrality.
    power = _t_above(dof, noncentrality, crit) + _t_above(dof, -noncentrality, crit)
    return min(1.0, max(0.0, power))


def _t_above(dof: float, noncentrality: float, t: float) -> float:
    """``P(T > t)`` for a noncentral t; far in the tails, where scipy's ``nctdtr`` can
    return NaN, the normal approximation (Johnson et al.) is used (those tails are ~0 or ~1).
    """
    below = float(special.nctdtr(dof, noncentrality, t))
    if not math.isfinite(below):
        z = (t * (1 - 1 / (4 * dof)) - noncentrality) / math.sqrt(1 + t * t / (2 * dof))
        below = float(special.ndtr(z))
    return 1.0 - below


def _pooled_rate(baseline: float, effect: float, ratio: float) -> float:
    return (baseline + ratio * (baseline + effect)) / (1 + ratio)


def power_proportion(
    baseline: float,
    effect: float,
    n_control: float,
    *,
    ratio: float = 1.0,
    alpha: float = 0.05,
) -> float:
    """Power of the two-sided z-test of two rates: ``baseline`` vs ``baseline + effect``."""
    _check(alpha, ratio)
    _check_rate(baseline, "baseline")
    treated = baseline + effect
    _check_rate(treated, "baseline + effect")
    if n_control <= 0:
        raise DataError("n_control must be positive", field="n_control")
    n_t = ratio * n_control
    pooled = _pooled_rate(baseline, effect, ratio)
    se_null = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_t))
    se_alt = math.sqrt(baseline * (1 - baseline) / n_control + treated * (1 - treated) / n_t)
    crit = float(special.ndtri(1 - alpha / 2)) * se_null
    upper = float(special.ndtr((abs(effect) - crit) / se_alt))
    lower = float(special.ndtr((-abs(effect) - crit) / se_alt))
    return min(1.0, upper + lower)


def _smallest_n(power_at: Callable[[float], float], power: float, minimum: float) -> float:
    """The continuous ``n`` where ``power_at(n)`` reaches ``power`` (monotone in ``n``)."""
    low, high = minimum, max(2 * minimum, 16.0)
    if power_at(low) >= power:
        return low
    while power_at(high) < power:
        low, high = high, high * 4
        if high > _MAX_USERS:
            raise DataError("the effect is too small to detect with any realistic sample size")
    return float(optimize.brentq(lambda n: power_at(n) - power, low, high, xtol=1e-6))


def _whole(n_control: float, ratio: float) -> SampleSize:
    control = math.ceil(n_control - 1e-9)
    return SampleSize(control, math.ceil(ratio * control - 1e-9))


def sample_size_mean(
    effect: float, sd: float, *, power: float = 0.8, ratio: float = 1.0, alpha: float = 0.05
) -> SampleSize:
    """Users per arm for the t-test to detect ``effect`` with probability ``power``."""
    _check(alpha, ratio, power)
    _check_sd(sd)
    if effect == 0 or not math.isfinite(effect):
        raise DataError(f"effect must be a non-zero number, got {effect!r}", field="effect")
    minimum = max(2.0, 2.5 / (1 + ratio))
    n = _smallest_n(lambda n: power_mean(effect, sd, n, ratio=ratio, alpha=alpha), power, minimum)
    return _whole(n, ratio)


def sample_size_proportion(
    baseline: float,
    effect: float,
    *,
    power: float = 0.8,
    ratio: float = 1.0,
    alpha: float = 0.05,
) -> SampleSize:
    """Users per arm for the z-test to detect ``baseline`` → ``baseline + effect``."""
    _check(alpha, ratio, power)
    if effect == 0:
        raise DataError("effect must be non-zero", field="effect")
    n = _smallest_n(
        lambda n: power_proportion(baseline, effect, n, ratio=ratio, alpha=alpha), power, 1.0
    )
    return _whole(n, ratio)


def mde_mean(
    sd: float, n_control: float, *, power: float = 0.8, ratio: float = 1.0, alpha: float = 0.05
) -> float:
    """The smallest positive effect the t-test detects with probability ``power``."""
    _check(alpha, ratio, power)
    _check_sd(sd)
    high = sd
    while power_mean(high, sd, n_control, ratio=ratio, alpha=alpha) < power:
        high *= 4
    return float(
        optimize.brentq(
            lambda e: power_mean(e, sd, n_control, ratio=ratio, alpha=alpha) - power,
            0.0,
            high,
            xtol=1e-12 * sd,
        )
    )


def mde_proportion(
    baseline: float,
    n_control: float,
    *,
    power: float = 0.8,
    ratio: float = 1.0,
    alpha: float = 0.05,
) -> float:
    """The smallest rise ``effect > 0`` over ``baseline`` detected with probability ``power``.

    A ``DataError`` says so when even a rise to a rate near 1 is not detectable.
    """
    _check(alpha, ratio, power)
    _check_rate(baseline, "baseline")
    high = (1 - baseline) * (1 - 1e-9)

    def gap(effect: float) -> float:
        return power_proportion(baseline, effect, n_control, ratio=ratio, alpha=alpha) - power

    if gap(high) < 0:
        raise DataError(f"no rise over a baseline of {baseline} is detectable with these users")
    return float(optimize.brentq(gap, 1e-12, high, xtol=1e-12))
