"""Differentially private KPIs: counts and rates per slice, with user-level privacy.

What is released, per value of ``by`` (default: domain): the number of turns and users and
the numerator of every rate of the KPI library (defects, not recognized, low confidence,
rephrased, barge-in, abandoned, negative feedback); rates are noisy numerator / noisy turns
(post-processing, clipped to [0, 1]) and the summary row is the sum of the slices.

- **Contribution bounding**: each user counts with at most ``max_turns_per_user`` (K) turns
  of the range, chosen by a hash of the turn id (a turn without a user id is its own user).
  Adding or removing one user then changes each released family of counts (turns per slice,
  users per slice, defects per slice, ...) by at most K in L1 and L2 norm.
- **Mechanisms**: Laplace with scale K / epsilon_f, or the analytic Gaussian mechanism
  (Balle & Wang 2018: the smallest sigma whose privacy profile meets delta_f, valid for every
  epsilon), where the query's (epsilon, delta) is split evenly over the m families
  (basic composition).
- **Budget**: a ledger per log (``privacy_budget.json`` in the log directory) records every
  release; epsilons and deltas add up (basic composition), and a query that would take
  either total past the log's budget (epsilon 10, delta 1e-5 unless set by its first DP
  query) is refused with
  `BudgetExhausted`, before anything is computed, and a query is recorded only once its
  result is computed (a query that fails spends nothing), before it is released.

The slice values themselves (the domain names) are taken as public, as a model's list of
domains is; do not slice by a column whose values are personal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from voxloop.errors import ConfigError, DataError, VoxloopError
from voxloop.log.kpi import SLICE_COLUMNS, KpiOptions, counted, materialize_facts
from voxloop.log.lock import exclusive
from voxloop.log.store import LogStore
from voxloop.nlu.base import write_json_atomic

__all__ = [
    "BUDGET_FILE",
    "COUNTS",
    "BudgetExhausted",
    "DpOptions",
    "Ledger",
    "analytic_gaussian_sigma",
    "bounded_counts",
    "dp_kpis",
    "format_dp_kpis",
    "noise",
    "release",
    "release_rows",
]

BUDGET_FILE = "privacy_budget.json"
DEFAULT_BUDGET = 10.0
DEFAULT_DELTA = 1e-6
DEFAULT_DELTA_BUDGET = 1e-5  # ten Gaussian releases at the default delta
# The released count families: the column of turn_facts summed (None: COUNT) → name.
COUNTS = (
    "turns",
    "users",
    "defect",
    "not_recognized",
    "low_confidence",
    "rephrased",
    "barge_in",
    "abandoned",
    "negative_feedback",
)
_RATE_NAMES = {
    "defect": "defect_rate",
    "not_recognized": "not_recognized_rate",
    "low_confidence": "low_confidence_rate",
    "rephrased": "rephrase_rate",
    "barge_in": "barge_in_rate",
    "abandoned": "abandonment_rate",
    "negative_feedback": "negative_feedback_rate",
}


class BudgetExhausted(VoxloopError):
    """A DP query would spend more of a log's privacy budget than is left."""


@dataclass(frozen=True)
class DpOptions:
    """Epsilon (and delta) of one release, its mechanism, and the per-user bound K."""

    epsilon: float
    delta: float | None = None
    mechanism: str = "laplace"
    max_turns_per_user: int = 10

    def __post_init__(self) -> None:
        if not (isinstance(self.epsilon, int | float) and math.isfinite(self.epsilon)):
            raise ConfigError(f"must be a positive number, got {self.epsilon!r}", key="dp_epsilon")
        if self.epsilon <= 0:
            raise ConfigError(
                f"must be positive (smaller is more private), got {self.epsilon}", key="dp_epsilon"
            )
        if self.mechanism not in ("laplace", "gaussian"):
            raise ConfigError(
                f"must be laplace or gaussian, got {self.mechanism!r}", key="dp_mechanism"
            )
        if self.delta is not None and not (0 <= self.delta < 1):
            raise ConfigError(f"must be in [0, 1), got {self.delta}", key="dp_delta")
        if self.mechanism == "gaussian" and self.delta == 0:
            raise ConfigError("the Gaussian mechanism needs delta > 0", key="dp_delta")
        k = self.max_turns_per_user
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"must be a whole number >= 1, got {k!r}", key="dp_max_turns")

    @property
    def spent_delta(self) -> float:
        """The delta this release spends (0 for Laplace)."""
        if self.mechanism == "laplace":
            return 0.0
        return DEFAULT_DELTA if self.delta is None else self.delta


# --- mechanisms ------------------------------------------------------------------------
@cache
def analytic_gaussian_sigma(sensitivity: float, epsilon: float, delta: float) -> float:
    """The smallest sigma for which N(0, sigma^2) noise on a query of L2 sensitivity
    ``sensitivity`` is (epsilon, delta)-DP (Balle & Wang 2018, Theorem 8)."""
    from scipy.stats import norm

    def profile(sigma: float) -> float:  # the delta this sigma achieves at epsilon
        a = sensitivity / (2 * sigma)
        b = epsilon * sigma / sensitivity
        return float(norm.cdf(a - b) - math.exp(epsilon) * norm.cdf(-a - b))

    lo, hi = 1e-6 * sensitivity, sensitivity
    while profile(hi) > delta:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if profile(mid) > delta else (lo, mid)
    return hi


def noise_scale(options: DpOptions, families: int = len(COUNTS)) -> float:
    """The Laplace scale b or the Gaussian sigma added to each released count."""
    k = float(options.max_turns_per_user)
    eps = options.epsilon / families
    if options.mechanism == "laplace":
        return k / eps
    return analytic_gaussian_sigma(k, eps, options.spent_delta / families)


def noise(
    options: DpOptions, size: int | tuple[int, ...], rng: np.random.Generator, families: int
) -> np.ndarray:
    """Noise of the mechanism for ``size`` released counts."""
    scale = noise_scale(options, families)
    if options.mechanism == "laplace":
        return rng.laplace(0.0, scale, size)
    return rng.normal(0.0, scale, size)


def release(
    counts: Mapping[str, np.ndarray], options: DpOptions, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Noisy counts: each family of ``counts`` (arrays over the slices) plus its noise."""
    return {
        name: np.asarray(values, dtype=float) + noise(options, len(values), rng, len(counts))
        for name, values in counts.items()
    }


# --- the budget ledger -----------------------------------------------------------------
class Ledger:
    """The privacy budget of one log: ``privacy_budget.json`` in its directory."""

    def __init__(
        self,
        directory: str | Path,
        *,
        budget: float | None = None,
        delta_budget: float | None = None,
    ) -> None:
        self.path = Path(directory) / BUDGET_FILE
        if self.path.is_file():
            import json

            try:
                self.data: dict[str, Any] = json.loads(self.path.read_text("utf-8"))
                stored = float(self.data["budget_epsilon"])
                # ledgers written before deltas were budgeted have the default
                stored_delta = float(self.data.get("budget_delta", DEFAULT_DELTA_BUDGET))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise ConfigError(f"{self.path}: not a privacy budget ledger ({e})") from None
            for asked, kept, key in ((budget, stored, "dp_budget"),
                                     (delta_budget, stored_delta, "dp_delta_budget")):  # fmt: skip
                if asked is not None and asked != kept:
                    raise ConfigError(
                        f"the log's budget is {kept:g} (set by its first DP query, in "
                        f"{self.path}); a budget cannot be changed afterwards",
                        key=key,
                    )
            self.data["budget_delta"] = stored_delta
        else:
            budget = DEFAULT_BUDGET if budget is None else budget
            if not (math.isfinite(budget) and budget > 0):
                raise ConfigError(f"must be a positive number, got {budget}", key="dp_budget")
            delta_budget = DEFAULT_DELTA_BUDGET if delta_budget is None else delta_budget
            if not (0 <= delta_budget < 1):
                raise ConfigError(f"must be in [0, 1), got {delta_budget}", key="dp_delta_budget")
            self.data = {
                "version": 1,
                "budget_epsilon": budget,
                "budget_delta": delta_budget,
                "releases": [],
            }

    @property
    def budget(self) -> float:
        return float(self.data["budget_epsilon"])

    @property
    def budget_delta(self) -> float:
        return float(self.data["budget_delta"])

    @property
    def spent(self) -> float:
        return float(sum(r["epsilon"] for r in self.data["releases"]))

    @property
    def spent_delta(self) -> float:
        return float(sum(r.get("delta") or 0.0 for r in self.data["releases"]))

    def check(self, epsilon: float, delta: float = 0.0) -> None:
        """Raise `BudgetExhausted` when a release of ``epsilon`` and ``delta`` would pass
        either budget."""
        if self.spent + epsilon > self.budget + 1e-12:
            raise BudgetExhausted(
                f"{self.path}: privacy budget exhausted: {self.spent:g} of epsilon "
                f"{self.budget:g} spent, this query needs {epsilon:g} "
                f"(left: {max(0.0, self.budget - self.spent):g})"
            )
        if delta and self.spent_delta + delta > self.budget_delta * (1 + 1e-9):
            raise BudgetExhausted(
                f"{self.path}: privacy budget exhausted: {self.spent_delta:g} of delta "
                f"{self.budget_delta:g} spent, this query needs {delta:g} "
                f"(left: {max(0.0, self.budget_delta - self.spent_delta):g})"
            )

    def spend(self, epsilon: float, delta: float, what: Mapping[str, Any], now: datetime) -> None:
        """Record a release, or raise `BudgetExhausted` (recording nothing); a ledger that
        cannot be written raises `DataError` (the release must then not be made)."""
        self.check(epsilon, delta)
        release = {"ts": now.isoformat(), "epsilon": epsilon, "delta": delta, **what}
        releases = [*self.data["releases"], release]
        try:
            write_json_atomic(self.path, {**self.data, "releases": releases})
        except OSError as e:
            raise DataError(
                f"cannot record the release in the privacy budget ledger ({e.strerror or e}); "
                "nothing was released",
                file=self.path,
            ) from None
        self.data["releases"].append(release)


# --- the query -------------------------------------------------------------------------
def _counts_sql(by: Sequence[str], k: int, low_confidence: float) -> str:
    cols = ", ".join(by)
    sums = ",\n  ".join(f"CAST(SUM({c}) AS BIGINT) AS {c}" for c in COUNTS[2:])
    return f"""
WITH bounded AS (
  SELECT *, COALESCE(user_id, '~' || turn_id) AS unit,
    ROW_NUMBER() OVER (PARTITION BY COALESCE(user_id, '~' || turn_id)
                       ORDER BY hash(turn_id), turn_id) AS nth
  FROM turn_facts
)
SELECT {cols},
  COUNT(*) AS turns,
  COUNT(DISTINCT unit) AS users,
  {sums}
FROM bounded WHERE nth <= {k}
GROUP BY {cols}
ORDER BY {cols}
"""


def bounded_counts(
    store: LogStore, by: Sequence[str], max_turns_per_user: int, low_confidence: float = 0.5
) -> pa.Table:
    """The exact counts per slice after contribution bounding (never released as such)."""
    engine = store.engine()
    try:
        materialize_facts(engine, KpiOptions(by=tuple(by), low_confidence=low_confidence))
        return engine.sql(_counts_sql(by, max_turns_per_user, low_confidence))
    finally:
        engine.close()


def release_rows(
    table: pa.Table, by: Sequence[str], options: DpOptions, rng: np.random.Generator
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Noisy summary and per-slice rows from `bounded_counts` (spends no budget: the caller
    does)."""
    true = {c: np.asarray(table.column(c).to_pylist(), dtype=float) for c in COUNTS}
    noisy = release(true, options, rng)
    keys = [table.column(c).to_pylist() for c in by]
    rows = zip(*keys, strict=True)
    slices = [_row(dict(zip(by, key, strict=True)), noisy, i) for i, key in enumerate(rows)]
    totals = {c: np.array([noisy[c].sum()]) for c in COUNTS if c != "users"}
    return _row({}, totals, 0), slices


def dp_kpis(
    log: str | Path,
    options: DpOptions,
    *,
    by: Sequence[str] | str = ("domain",),
    since: str | None = None,
    until: str | None = None,
    low_confidence: float = 0.5,
    budget: float | None = None,
    delta_budget: float | None = None,
    seed: int | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Release the KPI counts and rates of a log with ``options``' privacy, spending its
    epsilon and delta from the log's ledger: refused before computing when a budget would be
    exceeded, recorded once the result is computed (a failed query spends nothing).
    ``budget`` and ``delta_budget`` are set by a log's first DP query."""
    if isinstance(by, str):
        by = tuple(c.strip() for c in by.split(",") if c.strip())
    KpiOptions(by=tuple(by), low_confidence=low_confidence)  # validates by
    if set(by) - set(SLICE_COLUMNS):  # KpiOptions checked; keeps the SQL to known names
        raise ConfigError("unknown slice column", key="by")
    store = LogStore(log, since=since, until=until)
    what = {
        "query": "kpi",
        "by": list(by),
        "since": since,
        "until": until,
        "mechanism": options.mechanism,
        "max_turns_per_user": options.max_turns_per_user,
    }
    with exclusive(store.directory, "a DP query"):  # one spender of the budget at a time
        ledger = Ledger(store.directory, budget=budget, delta_budget=delta_budget)  # under lock
        ledger.check(options.epsilon, options.spent_delta)  # refuse before computing anything
        table = bounded_counts(store, by, options.max_turns_per_user, low_confidence)
        summary, slices = release_rows(table, by, options, np.random.default_rng(seed))
        ledger.spend(options.epsilon, options.spent_delta, what, now())  # then release
    return {
        "log": str(store.directory),
        "epsilon": options.epsilon,
        "delta": options.spent_delta,
        "mechanism": options.mechanism,
        "max_turns_per_user": options.max_turns_per_user,
        "noise_scale": noise_scale(options),
        "budget_epsilon": ledger.budget,
        "spent_epsilon": ledger.spent,
        "budget_delta": ledger.budget_delta,
        "spent_delta": ledger.spent_delta,
        "summary": summary,
        "by_slice": slices,
    }


def _row(key: dict[str, Any], noisy: Mapping[str, np.ndarray], i: int) -> dict[str, Any]:
    turns = max(float(noisy["turns"][i]), 1.0)
    row: dict[str, Any] = dict(key)
    row["turns"] = max(0, round(float(noisy["turns"][i])))
    if "users" in noisy:
        row["users"] = max(0, round(float(noisy["users"][i])))
    for count, rate in _RATE_NAMES.items():
        row[rate] = min(1.0, max(0.0, float(noisy[count][i]) / turns))
    return row


def format_dp_kpis(result: Mapping[str, Any]) -> str:
    """The release as plain text: one line of privacy terms, then the table."""
    head = (
        f"differentially private KPIs: epsilon {result['epsilon']:g}"
        + (f", delta {result['delta']:g}" if result["delta"] else "")
        + f", {result['mechanism']} noise scale {result['noise_scale']:.2f} per count, "
        f"at most {counted(result['max_turns_per_user'], 'turn')} per user (a turn without "
        "a user id counts as a user of its own); budget "
        f"{result['spent_epsilon']:g} of {result['budget_epsilon']:g} spent"
        + (
            f" (delta {result['spent_delta']:g} of {result['budget_delta']:g})"
            if result["spent_delta"]
            else ""
        )
    )
    rows = [{"slice": "(all)", **result["summary"]}] + [
        {"slice": "/".join(str(v) for k, v in r.items() if k not in _ROW_VALUES), **r}
        for r in result["by_slice"]
    ]
    columns = ["slice", "turns", "users", *_RATE_NAMES.values()]
    cells = [[_cell(r.get(c), c) for c in columns] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return head + "\n" + "\n".join(line.rstrip() for line in lines)


_ROW_VALUES = {"turns", "users", *_RATE_NAMES.values()}


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if column.endswith("_rate"):
        return f"{value:.1%}"
    return f"{value:,}" if isinstance(value, int) else str(value)
