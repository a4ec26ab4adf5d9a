"""One call from per-arm sufficient statistics to a decision: `analyze`.

``analyze(arms, config)`` takes, for every arm of the experiment, one statistic per
configured metric (`Proportion`, `SampleMean`, `RatioStatistic`, or `RegressionAdjusted`
for CUPED metrics) and returns an `ExperimentResult`:

- per metric and non-control arm: the lift (relative or absolute, as configured) with its
  interval, the p-value (frequentist or always-valid) raw and corrected, the Bayesian
  chance to win and expected loss, and an outcome (``better``, ``worse``,
  ``inconclusive``, ``not_analysable``);
- the sample-ratio-mismatch check, which **blocks the verdict** when it fires;
- per arm and overall, a decision and a plain-words verdict.

Decision rules:

- Multiple comparisons: with the frequentist and sequential engines, the p-values of all
  primary and secondary metrics across all treatment arms form one family, corrected by
  Holm or Benjamini–Hochberg (``analysis.correction``); a metric is better or worse when
  its corrected p-value is below ``alpha``. Intervals stay at the nominal level.
  Guardrails are tested uncorrected, so harm is caught as readily as possible. The
  Bayesian engine calls a metric better when its chance to win reaches
  ``win_probability`` and worse when it is at most ``1 - win_probability``.
- An arm ships when at least one primary metric is better, none is worse, every primary
  and guardrail metric could be analysed, and no guardrail is worse. Among several such
  arms the one with the most primary wins, then the largest first primary lift, ships.
- No users in some arm → ``no_data``; SRM → ``srm``: neither looks at any metric.
- A relative lift over a control mean of 0 (say, crashes: none in control) falls back to
  the absolute difference for that metric, with a note. Two arms that are constant and
  equal (no crashes anywhere) show no difference. Other degenerate inputs (one user, zero
  variance with different constants, zero ratio denominators) make the metric
  ``not_analysable`` with a reason, never a NaN.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from voxloop.errors import DataError
from voxloop.experiments.bayes import BayesResult, GaussianPrior, gaussian_posterior
from voxloop.experiments.config import AnalysisSettings, ExperimentConfig, Metric
from voxloop.experiments.sequential import sequential_test
from voxloop.experiments.stats import (
    STATUS_MESSAGES,
    Difference,
    LiftResult,
    Proportion,
    RatioStatistic,
    RegressionAdjusted,
    SampleMean,
    SRMResult,
    Statistic,
    adjust_p_values,
    difference,
    frequentist_test,
    srm_check,
)

__all__ = [
    "ArmSummary",
    "ArmVerdict",
    "Decision",
    "ExperimentResult",
    "MetricResult",
    "Outcome",
    "Verdict",
    "analyze",
    "format_result",
]

Outcome = Literal["better", "worse", "inconclusive", "not_analysable"]
Decision = Literal["ship", "do_not_ship", "no_difference", "cannot_decide"]
Verdict = Literal["ship", "do_not_ship", "no_difference", "cannot_decide", "srm", "no_data"]


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric compared between one treatment arm and the control.

    ``estimate``/``ci_low``/``ci_high`` are on the ``difference`` scale (a relative lift
    of 0.031 is +3.1 %); the interval is a confidence interval (frequentist), a
    confidence sequence (sequential) or a credible interval (Bayesian). Means are the
    observed, unadjusted ones; ``theta`` is the CUPED coefficient when one was used.
    """

    metric: str
    arm: str
    role: str
    direction: str
    type: str
    difference: str
    status: str
    outcome: Outcome
    n_control: int
    n_treatment: int
    control_mean: float | None
    treatment_mean: float | None
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_value_adjusted: float | None
    chance_to_win: float | None
    expected_loss: float | None
    theta: float | None
    note: str


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """Users an arm received against the share the design promised."""

    name: str
    users: int
    expected_share: float
    observed_share: float | None


@dataclass(frozen=True, slots=True)
class ArmVerdict:
    """The decision for one treatment arm and the reason for it, in plain words."""

    arm: str
    decision: Decision
    reason: str


@dataclass(frozen=True, slots=True)
class ExperimentResult:
    """Everything `analyze` concluded about one experiment."""

    experiment: str
    control: str
    analysis: AnalysisSettings
    arms: tuple[ArmSummary, ...]
    srm: SRMResult
    metrics: tuple[MetricResult, ...]
    arm_verdicts: tuple[ArmVerdict, ...]
    verdict: Verdict
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become ``None``)."""
        result: dict[str, Any] = _finite(asdict(self))
        return result

    def to_json(self, *, indent: int | None = 2) -> str:
        """The result as JSON."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def metric(self, metric: str, arm: str) -> MetricResult:
        """The result row of ``metric`` for ``arm``."""
        for row in self.metrics:
            if row.metric == metric and row.arm == arm:
                return row
        raise KeyError(f"no result for metric {metric!r} and arm {arm!r}")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# --------------------------------------------------------------------------- inputs


_ACCEPTED: dict[str, tuple[type, ...]] = {
    "proportion": (Proportion, RegressionAdjusted),
    "mean": (SampleMean, RegressionAdjusted),
    "ratio": (RatioStatistic,),
}


def _statistic(metric: Metric, arm: str, stat: object) -> Statistic:
    """The statistic to analyse for ``metric``, checked against its configured type."""
    accepted = _ACCEPTED[metric.type]
    if metric.cuped and not isinstance(stat, RegressionAdjusted):
        raise DataError(
            f"metric {metric.name!r} has cuped = true, so every arm needs a RegressionAdjusted "
            f"statistic with pre-period sums; arm {arm!r} gave {type(stat).__name__} "
            "(missing pre-period): aggregate the pre-period covariate or set cuped = false",
            field=metric.name,
        )
    if not isinstance(stat, accepted):
        names = " or ".join(t.__name__ for t in accepted)
        raise DataError(
            f"metric {metric.name!r} is a {metric.type} metric: arm {arm!r} needs a {names}, "
            f"got {type(stat).__name__}",
            field=metric.name,
        )
    if isinstance(stat, RegressionAdjusted) and not metric.cuped:
        if metric.type == "proportion":
            return Proportion(stat.n, int(round(stat.post_sum)))
        return stat.post
    return stat  # type: ignore[return-value]  # narrowed by the isinstance checks above


def _check_inputs(
    arms: Mapping[str, Mapping[str, object]], config: ExperimentConfig
) -> dict[str, dict[str, Statistic]]:
    expected = set(config.arm_names)
    given = set(arms)
    if given != expected:
        missing = ", ".join(sorted(expected - given)) or "none"
        extra = ", ".join(sorted(given - expected)) or "none"
        raise DataError(
            f"statistics must cover exactly the arms of {config.name!r}: "
            f"missing {missing}; not in the config {extra}"
        )
    metric_names = {m.name for m in config.metrics}
    checked: dict[str, dict[str, Statistic]] = {}
    for arm in config.arm_names:
        stats = arms[arm]
        unknown = set(stats) - metric_names
        if unknown:
            raise DataError(
                f"arm {arm!r} has statistics for metrics not in the config: "
                f"{', '.join(sorted(unknown))}"
            )
        checked[arm] = {}
        for metric in config.metrics:
            if metric.name not in stats:
                raise DataError(f"arm {arm!r} has no statistic for metric {metric.name!r}")
            checked[arm][metric.name] = _statistic(metric, arm, stats[metric.name])
    return checked


def _users(
    stats: Mapping[str, Mapping[str, Statistic]], users: Mapping[str, int] | None
) -> dict[str, int]:
    if users is not None:
        if set(users) != set(stats):
            raise DataError(f"users must name every arm: {sorted(stats)}, got {sorted(users)}")
        return {arm: int(users[arm]) for arm in stats}
    counts: dict[str, int] = {}
    for arm, metrics in stats.items():
        ns = {stat.n for stat in metrics.values()}
        if len(ns) != 1:
            raise DataError(
                f"arm {arm!r}'s metrics count different users ({sorted(ns)}): "
                "pass users= with the number of users assigned to each arm"
            )
        counts[arm] = ns.pop()
    return counts


# --------------------------------------------------------------------------- per metric


def _interval(
    diff: Difference, settings: AnalysisSettings, prior: GaussianPrior, metric: Metric
) -> tuple[LiftResult | None, BayesResult]:
    bayes = gaussian_posterior(
        diff, prior=prior, alpha=settings.alpha, higher_is_better=metric.higher_is_better
    )
    if settings.engine == "frequentist":
        return frequentist_test(diff, alpha=settings.alpha), bayes
    if settings.engine == "sequential":
        return sequential_test(diff, alpha=settings.alpha, tuning=settings.sequential_tuning), bayes
    return None, bayes


def _compare(
    metric: Metric,
    arm: str,
    control: Statistic,
    treatment: Statistic,
    settings: AnalysisSettings,
    prior: GaussianPrior,
) -> tuple[MetricResult, LiftResult | None, BayesResult]:
    relative = settings.difference == "relative"
    diff = difference(control, treatment, relative=relative)
    note = ""
    if diff.status == "zero_baseline":
        diff = difference(control, treatment, relative=False)
        note = "control mean is 0: absolute difference shown"
    test, bayes = _interval(diff, settings, prior, metric)
    if settings.engine == "bayesian":
        low, high = bayes.ci_low, bayes.ci_high
    else:
        assert test is not None
        low, high = test.ci_low, test.ci_high
    identical = (
        diff.status == "zero_variance"
        and diff.estimate == 0
        and diff.control_mean == diff.treatment_mean
    )
    if identical:
        note = "the same constant value in both arms: no difference"
    elif diff.status != "ok":
        note = STATUS_MESSAGES[diff.status]
    if metric.cuped and diff.theta == 0 and diff.status == "ok":
        note = "pre-period has no variance: CUPED made no adjustment"
    row = MetricResult(
        metric=metric.name,
        arm=arm,
        role=metric.role,
        direction=metric.direction,
        type=metric.type,
        difference="relative" if diff.relative else "absolute",
        status="ok" if identical else diff.status,
        outcome="inconclusive" if identical or diff.status == "ok" else "not_analysable",
        n_control=control.n,
        n_treatment=treatment.n,
        control_mean=control.mean if control.n else None,
        treatment_mean=treatment.mean if treatment.n else None,
        estimate=diff.estimate if diff.status in ("ok", "zero_variance") else None,
        ci_low=low,
        ci_high=high,
        p_value=test.p_value if test is not None else None,
        p_value_adjusted=None,
        chance_to_win=bayes.chance_to_win,
        expected_loss=bayes.expected_loss,
        theta=diff.theta,
        note=note,
    )
    return row, test, bayes


def _outcome(row: MetricResult, p_value: float | None, settings: AnalysisSettings) -> Outcome:
    if row.outcome == "not_analysable" or row.estimate is None:
        return row.outcome
    good = row.estimate > 0 if row.direction == "increase" else row.estimate < 0
    bad = row.estimate < 0 if row.direction == "increase" else row.estimate > 0
    if settings.engine == "bayesian":
        if row.chance_to_win is None:
            return "inconclusive"
        if row.chance_to_win >= settings.win_probability:
            return "better"
        if row.chance_to_win <= 1 - settings.win_probability:
            return "worse"
        return "inconclusive"
    if p_value is None or p_value >= settings.alpha:
        return "inconclusive"
    return "better" if good else "worse" if bad else "inconclusive"


# --------------------------------------------------------------------------- wording


def _percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


def _number(value: float) -> str:
    return f"{value:+.4g}"


def _lift_text(row: MetricResult, difference: str) -> str:
    """The row's lift and interval; marked when it is not the analysis' ``difference``
    (a relative lift over a control mean of 0 falls back to the absolute one)."""
    if row.estimate is None:
        return "n/a"
    fmt = _percent if row.difference == "relative" else _number
    text = fmt(row.estimate)
    if row.ci_low is not None and row.ci_high is not None:
        text += f" [{fmt(row.ci_low)}, {fmt(row.ci_high)}]"
    return text if row.difference == difference else f"{text} ({row.difference})"


def _p_text(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}" if p < 0.01 else f"p = {p:.3f}"


def _evidence(row: MetricResult, settings: AnalysisSettings) -> str:
    if settings.engine == "bayesian":
        if row.chance_to_win is None:
            return ""
        return f"chance to beat control {row.chance_to_win:.1%}"
    p = row.p_value_adjusted if row.p_value_adjusted is not None else row.p_value
    if p is None:
        return ""
    adjusted = row.role != "guardrail" and settings.correction != "none"
    return _p_text(p) + (f", {settings.correction}-adjusted" if adjusted else "")


def _describe(row: MetricResult, settings: AnalysisSettings) -> str:
    evidence = _evidence(row, settings)
    return f"{row.metric} {_lift_text(row, settings.difference)}" + (
        f" ({evidence})" if evidence else ""
    )


def _arm_verdict(arm: str, rows: list[MetricResult], settings: AnalysisSettings) -> ArmVerdict:
    primary = [r for r in rows if r.role == "primary"]
    guardrails = [r for r in rows if r.role == "guardrail"]
    worse = [r for r in primary if r.outcome == "worse"]
    better = [r for r in primary if r.outcome == "better"]
    failed = [r for r in guardrails if r.outcome == "worse"]
    unknown = [r for r in primary + guardrails if r.outcome == "not_analysable"]
    if worse:
        return ArmVerdict(
            arm, "do_not_ship",
            f"{arm} is worse on " + "; ".join(_describe(r, settings) for r in worse),
        )  # fmt: skip
    if failed:
        wins = (
            (" — it wins on " + "; ".join(_describe(r, settings) for r in better)) if better else ""
        )
        return ArmVerdict(
            arm, "do_not_ship",
            f"guardrail failed for {arm}: "
            + "; ".join(_describe(r, settings) for r in failed) + wins,
        )  # fmt: skip
    if unknown:
        return ArmVerdict(
            arm, "cannot_decide",
            "; ".join(f"{r.metric} cannot be analysed for {arm} ({r.note})" for r in unknown),
        )  # fmt: skip
    if better:
        return ArmVerdict(
            arm, "ship",
            "; ".join(_describe(r, settings) for r in better)
            + (", no guardrail failed" if guardrails else ""),
        )  # fmt: skip
    shown = "; ".join(_describe(r, settings) for r in primary)
    return ArmVerdict(arm, "no_difference", f"{arm}: no detectable difference, {shown}")


def _overall(
    verdicts: list[ArmVerdict], rows: list[MetricResult], config: ExperimentConfig
) -> tuple[Verdict, str]:
    settings = config.analysis
    ship = [v for v in verdicts if v.decision == "ship"]
    others = "".join(f". {v.reason}" for v in verdicts if v.decision != "ship")
    if ship:
        first = next(m.name for m in config.metrics if m.role == "primary")

        def rank(v: ArmVerdict) -> tuple[int, float]:
            arm_rows = [r for r in rows if r.arm == v.arm]
            wins = sum(r.role == "primary" and r.outcome == "better" for r in arm_rows)
            lead = next(r for r in arm_rows if r.metric == first)
            sign = 1.0 if lead.direction == "increase" else -1.0
            return wins, sign * (lead.estimate or 0.0)

        best = max(ship, key=rank)
        rest = "".join(f". {v.arm} also wins: {v.reason}" for v in ship if v is not best)
        return "ship", f"ship {best.arm}: {best.reason}{rest}{others}"
    blocked = [v for v in verdicts if v.decision == "do_not_ship"]
    if blocked:
        text = "do not ship: " + ". ".join(v.reason for v in blocked)
        text += "".join(f". {v.reason}" for v in verdicts if v.decision != "do_not_ship")
        return "do_not_ship", text
    undecided = [v for v in verdicts if v.decision == "cannot_decide"]
    if undecided:
        return "cannot_decide", "cannot decide: " + ". ".join(v.reason for v in undecided)
    if settings.engine == "sequential":
        tail = "keep collecting: the sequential test stays valid at every look"
    elif settings.engine == "bayesian":
        best_chance = max((r.chance_to_win or 0.0 for r in rows if r.role == "primary"), default=0)
        tail = (
            f"best chance to beat control is {best_chance:.1%}, "
            f"{settings.win_probability:.1%} is needed; keep the control"
        )
    else:
        tail = "keep the control"
    details = ". ".join(v.reason for v in verdicts)
    return "no_difference", f"no detectable difference on the primary metrics, {tail}. {details}"


# --------------------------------------------------------------------------- analyze


def analyze(
    arms: Mapping[str, Mapping[str, Statistic]],
    config: ExperimentConfig,
    *,
    users: Mapping[str, int] | None = None,
) -> ExperimentResult:
    """Analyse one experiment from per-arm, per-metric sufficient statistics.

    ``arms`` maps every arm of ``config`` to ``{metric name: statistic}`` for every
    configured metric. ``users`` is the number of users assigned to each arm, for the SRM
    check; it defaults to the statistics' common ``n`` (a ``DataError`` asks for it when
    metrics count different users). Mismatched arms or metrics, or a statistic of the
    wrong kind, raise a ``DataError`` naming them.
    """
    settings = config.analysis
    stats = _check_inputs(arms, config)
    counts = _users(stats, users)
    total = sum(counts.values())
    srm = srm_check(counts, config.weights, threshold=settings.srm_threshold)
    summaries = tuple(
        ArmSummary(a.name, counts[a.name], a.weight, counts[a.name] / total if total else None)
        for a in config.arms
    )
    prior = GaussianPrior(settings.prior_mean, settings.prior_sd)
    rows: list[MetricResult] = []
    for metric in config.metrics:
        for arm in config.arm_names:
            if arm == config.control:
                continue
            row, _, _ = _compare(
                metric, arm, stats[config.control][metric.name], stats[arm][metric.name],
                settings, prior,
            )  # fmt: skip
            rows.append(row)

    # One family: primary and secondary metrics across treatment arms.
    family = [i for i, r in enumerate(rows) if r.role != "guardrail" and r.p_value is not None]
    adjusted = adjust_p_values([rows[i].p_value or 0.0 for i in family], settings.correction)
    corrected: dict[int, float] = dict(zip(family, adjusted, strict=True))
    final: list[MetricResult] = []
    for i, row in enumerate(rows):
        p_adj = corrected.get(i) if row.role != "guardrail" else row.p_value
        decided = _replace(row, p_value_adjusted=p_adj)
        final.append(_replace(decided, outcome=_outcome(decided, p_adj, settings)))

    empty = [a for a in config.arm_names if counts[a] == 0]
    treatments = [a for a in config.arm_names if a != config.control]
    verdicts = [
        _arm_verdict(arm, [r for r in final if r.arm == arm], settings) for arm in treatments
    ]
    verdict: Verdict
    if empty or total == 0:
        verdict = "no_data"
        summary = (
            f"no data: {', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no users, "
            "nothing to analyse yet"
        )
    elif srm.flagged:
        verdict = "srm"
        observed = " / ".join(f"{counts[a]:,}" for a in config.arm_names)
        expected = " / ".join(f"{config.weights[a]:.0%}" for a in config.arm_names)
        summary = (
            f"SRM: do not trust this result. Users split {observed} where {expected} was "
            f"expected (chi-square p = {srm.p_value:.2g} < {srm.threshold:g}). Find the cause "
            "(assignment, logging, bots, redirects, a mid-test weight change) before reading "
            "any metric."
        )
    else:
        verdict, summary = _overall(verdicts, final, config)
    return ExperimentResult(
        experiment=config.name,
        control=config.control,
        analysis=settings,
        arms=summaries,
        srm=srm,
        metrics=tuple(final),
        arm_verdicts=tuple(verdicts),
        verdict=verdict,
        summary=summary,
    )


def _replace(row: MetricResult, **changes: Any) -> MetricResult:
    values = {name: getattr(row, name) for name in MetricResult.__dataclass_fields__}
    values.update(changes)
    return MetricResult(**values)


# --------------------------------------------------------------------------- text


def format_result(result: ExperimentResult) -> str:
    """A plain-text report: arms and SRM, one line per metric and arm, the verdict."""
    settings = result.analysis
    interval = {
        "frequentist": "CI",
        "sequential": "confidence sequence",
        "bayesian": "credible interval",
    }[settings.engine]
    level = f"{1 - settings.alpha:.0%}"
    correction = (
        ""
        if settings.correction == "none" or settings.engine == "bayesian"
        else (f", {settings.correction}-corrected p-values")
    )
    lines = [
        f"Experiment {result.experiment}: {settings.engine}, {settings.difference} lift, "
        f"{level} {interval}{correction}",
        "Users: "
        + " · ".join(
            f"{a.name} {a.users:,} ("
            + (f"{a.observed_share:.1%}" if a.observed_share is not None else "-")
            + f", expected {a.expected_share:.1%})"
            for a in result.arms
        ),
        f"SRM: {'MISMATCH' if result.srm.flagged else 'ok'} "
        f"(chi-square {result.srm.chi_square:.3g}, p = {result.srm.p_value:.3g}, "
        f"flag below {result.srm.threshold:g})",
        "",
    ]
    header = ("metric", "arm", "role", "control", "treatment", "lift [interval]", "p (adj.)",
              "P(win)", "outcome")  # fmt: skip
    table = [header]
    for row in result.metrics:
        p = row.p_value_adjusted if row.p_value_adjusted is not None else row.p_value
        table.append(
            (
                row.metric + ("*" if row.theta is not None else ""),
                row.arm,
                row.role,
                f"{row.control_mean:.4g}" if row.control_mean is not None else "-",
                f"{row.treatment_mean:.4g}" if row.treatment_mean is not None else "-",
                _lift_text(row, settings.difference),
                "-" if p is None else f"{p:.3g}" if p > 0 else "< 1e-300",
                f"{row.chance_to_win:.1%}" if row.chance_to_win is not None else "-",
                row.outcome + (f" ({row.note})" if row.note else ""),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])]
        lines.append("  ".join(cells + [r[-1]]).rstrip())
    if any(row.theta is not None for row in result.metrics):
        lines += [
            "* CUPED: the lift and its interval compare means adjusted by each user's pre-period;",
            "  control and treatment show the observed means",
        ]
    lines += ["", f"Verdict: {result.summary}"]
    return "\n".join(lines)
