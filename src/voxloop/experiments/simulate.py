"""Synthetic experiments for validating the engine (A/A tests, power) and for benchmarks.

`synthetic_statistics` draws per-user values for many experiments at once with numpy and
returns, per experiment, the *cumulative* sufficient statistic of one arm after each day
— exactly what a daily aggregation of a log would give. Distributions are chosen to be
unkind to normal approximations (skewed means, clustered ratios):

============  =========================================================================
proportion    Bernoulli(0.1) per user
mean          LogNormal(0, 1) per user (skewness about 6)
ratio         turns ``d = 1 + Poisson(4)``, defects ``m ~ Binomial(d, q)`` with a
              per-user rate ``q ~ Beta(0.5, 4.5)``: a user's turns are not independent
cuped         pre ``x ~ LogNormal(0, 0.5)``, post ``y = x + Normal(0, 0.5)`` (rho about 0.7)
============  =========================================================================

``lift`` multiplies the treatment's expected value by ``1 + lift``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from voxloop.errors import DataError
from voxloop.experiments.stats import (
    Proportion,
    RatioStatistic,
    RegressionAdjusted,
    SampleMean,
    Statistic,
)

__all__ = ["SYNTHETIC_METRICS", "SyntheticMetric", "synthetic_statistics"]

SyntheticMetric = Literal["proportion", "mean", "ratio", "cuped"]
SYNTHETIC_METRICS: tuple[SyntheticMetric, ...] = ("proportion", "mean", "ratio", "cuped")

_CHUNK_VALUES = 4_000_000  # per-user values drawn at once, to bound memory

Array = npt.NDArray[np.float64]


def _daily_sums(
    metric: SyntheticMetric, shape: tuple[int, int, int], lift: float, rng: np.random.Generator
) -> list[Array]:
    """Per-(experiment, day) sums over users, one array per sufficient-statistic field."""
    scale = 1.0 + lift
    if metric == "proportion":
        successes = rng.binomial(shape[2], min(1.0, 0.1 * scale), size=shape[:2])
        return [successes.astype(float)]
    if metric == "mean":
        y = rng.lognormal(0.0, 1.0, size=shape) * scale
        return [y.sum(axis=2), (y * y).sum(axis=2)]
    if metric == "ratio":
        d = 1.0 + rng.poisson(4.0, size=shape)
        rate = np.minimum(1.0, rng.beta(0.5, 4.5, size=shape) * scale)  # users differ
        m = rng.binomial(d.astype(np.int64), rate).astype(float)
        return [m.sum(2), (m * m).sum(2), d.sum(2), (d * d).sum(2), (m * d).sum(2)]
    if metric == "cuped":
        x = rng.lognormal(0.0, 0.5, size=shape)
        y = (x + rng.normal(0.0, 0.5, size=shape)) * scale
        return [y.sum(2), (y * y).sum(2), x.sum(2), (x * x).sum(2), (x * y).sum(2)]
    raise DataError(f"unknown synthetic metric {metric!r} ({', '.join(SYNTHETIC_METRICS)})")


def _statistic(metric: SyntheticMetric, n: int, sums: list[float]) -> Statistic:
    if metric == "proportion":
        return Proportion(n, int(sums[0]))
    if metric == "mean":
        return SampleMean(n, sums[0], sums[1])
    if metric == "ratio":
        return RatioStatistic(n, *sums)
    return RegressionAdjusted(n, *sums)


def synthetic_statistics(
    metric: SyntheticMetric,
    *,
    experiments: int,
    users_per_day: int,
    days: int = 1,
    lift: float = 0.0,
    rng: np.random.Generator,
) -> list[list[Statistic]]:
    """``result[e][d]``: one arm's cumulative statistic in experiment ``e`` after day ``d``."""
    if experiments < 1 or users_per_day < 1 or days < 1:
        raise DataError("experiments, users_per_day and days must be positive")
    per_experiment = days * users_per_day
    chunk = max(1, _CHUNK_VALUES // per_experiment)
    result: list[list[Statistic]] = []
    for start in range(0, experiments, chunk):
        count = min(chunk, experiments - start)
        sums = _daily_sums(metric, (count, days, users_per_day), lift, rng)
        cumulative = [np.cumsum(s, axis=1) for s in sums]
        for e in range(count):
            result.append(
                [
                    _statistic(
                        metric,
                        users_per_day * (d + 1),
                        [float(c[e, d]) for c in cumulative],
                    )
                    for d in range(days)
                ]
            )
    return result
