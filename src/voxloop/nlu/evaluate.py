"""How well a parser understood a test set, reported the way the field reports it.

``evaluate(gold, predicted)`` compares each gold `Utterance` with the `Parse` a model gave
for the same text and returns an `Evaluation`:

- **intent accuracy** — the fraction of utterances whose predicted intent equals the gold
  intent. A parse that declines to answer (``Parse.intent is None``, "not recognized") is
  wrong, unless the gold intent is also ``None``.
- **slot precision, recall, F1** — micro-averaged over exact ``(label, start, end)``
  matches of character spans, pooled over the whole test set. When the tokens are
  whitespace-separated words and the spans are their BIO chunks, this is exactly the
  CoNLL ``conlleval`` chunk score (``seqeval.metrics.f1_score`` in its default mode).
- **intent accuracy of the best guess** — the same, with a declined parse counted by its
  top-ranked intent: what papers report, whose models cannot decline.
- **exact match** (sentence accuracy) — intent right *and* the set of
  ``(label, start, end)`` slots identical to the gold set.
- **exact match of the best guess** — the same with the best guess's intent: the sentence
  accuracy papers report.
- **ECE** — expected calibration error of the intent confidence (`calibration_bins`).
- breakdowns **per domain** and **per locale** (of the *gold* utterance), **per slot
  label**, and the most frequent **intent confusions**.

Conventions (chosen to match seqeval / scikit-learn, so numbers compare with papers):

- A ratio whose denominator is zero is ``0.0``, never NaN: precision with no predicted
  slots, recall with no gold slots, and F1 when both are zero — so a test set with no
  slots at all, gold or predicted, has slot F1 ``0.0`` (seqeval's ``zero_division``
  default). `GroupMetrics` and `Evaluation` carry the slot counts so a reader can tell
  "0 % because wrong" from "0 % because there was nothing to find".
- A span is compared by ``(label, start, end)`` only; its ``value`` and ``confidence``
  do not matter. A span listed twice in one utterance counts once (seqeval works on sets).
- Utterances whose gold domain is ``None`` are grouped under `NO_DOMAIN` in
  ``per_domain``; when every gold domain is ``None``, ``per_domain`` is empty.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from voxloop.errors import ConfigError, DataError
from voxloop.schema import Parse, Span, Utterance

__all__ = [
    "NO_DOMAIN",
    "CalibrationBin",
    "Confusion",
    "Evaluation",
    "GroupMetrics",
    "SlotScore",
    "calibration_bins",
    "evaluate",
    "expected_calibration_error",
    "format_report",
    "unknown_intents",
]

NO_DOMAIN = "(none)"
"""The ``per_domain`` key of utterances whose gold domain is ``None``."""

NOT_RECOGNIZED = "(not recognized)"

# A confidence this far outside [0, 1] is a bug in the parser, not rounding.
_CONFIDENCE_TOLERANCE = 1e-6


class SlotScore(NamedTuple):
    """Precision, recall and F1 of one slot label; ``support`` is its number of gold spans."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Confusion:
    """``count`` utterances of intent ``gold`` were given intent ``predicted``.

    ``predicted`` is ``None`` for a parse that was not recognized.
    """

    gold: str | None
    predicted: str | None
    count: int


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    """One equal-width confidence bin ``[lower, upper)`` (the last bin includes 1.0).

    ``accuracy`` and ``confidence`` are the mean correctness and mean confidence of the
    ``count`` predictions in the bin; both are ``0.0`` for an empty bin.
    """

    lower: float
    upper: float
    count: int
    accuracy: float
    confidence: float


@dataclass(frozen=True, slots=True)
class GroupMetrics:
    """The headline metrics of one slice of the test set (a domain or a locale)."""

    n: int
    intent_accuracy: float
    slot_precision: float
    slot_recall: float
    slot_f1: float
    exact_match: float
    gold_slots: int
    """Number of gold slot spans in the slice (the support of ``slot_recall``)."""
    predicted_slots: int
    """Number of predicted slot spans in the slice (the support of ``slot_precision``)."""


@dataclass(frozen=True)
class Evaluation:
    """Everything `evaluate` measured. Metrics are fractions in ``[0, 1]``, never NaN."""

    n: int
    """Number of utterances evaluated."""
    intent_accuracy: float
    slot_precision: float
    slot_recall: float
    slot_f1: float
    exact_match: float
    """Sentence accuracy: intent right and the slot set identical."""
    ece: float
    """Expected calibration error of the top intent's confidence."""
    not_recognized: float
    """Fraction of parses that declined to answer (``Parse.intent is None``)."""
    top_intent_accuracy: float
    """Intent accuracy of the best guess, a declined parse counted by its top-ranked intent:
    the figure papers report (their models have no "not recognized" answer)."""
    top_exact_match: float
    """Exact match of the best guess: its top-ranked intent right and the slot set identical
    (the sentence accuracy papers report, beside `top_intent_accuracy`)."""
    gold_slots: int
    predicted_slots: int
    correct_slots: int
    per_domain: Mapping[str, GroupMetrics] = field(default_factory=dict)
    """By gold domain (empty when no gold utterance has a domain), sorted by name."""
    per_locale: Mapping[str, GroupMetrics] = field(default_factory=dict)
    """By gold locale, sorted by name."""
    per_slot: Mapping[str, SlotScore] = field(default_factory=dict)
    """By slot label (gold or predicted), sorted by name."""
    confusions: tuple[Confusion, ...] = ()
    """The most frequent ``gold != predicted`` intent pairs, most frequent first."""
    calibration: tuple[CalibrationBin, ...] = ()
    """The bins ``ece`` was computed from (for a reliability diagram)."""

    def to_json(self) -> dict[str, Any]:
        """A plain dict that `json.dumps` accepts (``None`` intents become ``null``)."""
        return {
            "n": self.n,
            "intent_accuracy": self.intent_accuracy,
            "slot_precision": self.slot_precision,
            "slot_recall": self.slot_recall,
            "slot_f1": self.slot_f1,
            "exact_match": self.exact_match,
            "ece": self.ece,
            "not_recognized": self.not_recognized,
            "top_intent_accuracy": self.top_intent_accuracy,
            "top_exact_match": self.top_exact_match,
            "gold_slots": self.gold_slots,
            "predicted_slots": self.predicted_slots,
            "correct_slots": self.correct_slots,
            "per_domain": {k: _group_json(v) for k, v in self.per_domain.items()},
            "per_locale": {k: _group_json(v) for k, v in self.per_locale.items()},
            "per_slot": {k: v._asdict() for k, v in self.per_slot.items()},
            "confusions": [
                {"gold": c.gold, "predicted": c.predicted, "count": c.count}
                for c in self.confusions
            ],
            "calibration": [
                {
                    "lower": b.lower,
                    "upper": b.upper,
                    "count": b.count,
                    "accuracy": b.accuracy,
                    "confidence": b.confidence,
                }
                for b in self.calibration
            ],
        }


def _group_json(g: GroupMetrics) -> dict[str, Any]:
    return {
        "n": g.n,
        "intent_accuracy": g.intent_accuracy,
        "slot_precision": g.slot_precision,
        "slot_recall": g.slot_recall,
        "slot_f1": g.slot_f1,
        "exact_match": g.exact_match,
        "gold_slots": g.gold_slots,
        "predicted_slots": g.predicted_slots,
    }


# --------------------------------------------------------------------------- calibration


def calibration_bins(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, *, n_bins: int = 15
) -> tuple[CalibrationBin, ...]:
    """Group predictions into ``n_bins`` equal-width confidence bins over ``[0, 1]``.

    Bin ``i`` holds confidences in ``[i / n_bins, (i + 1) / n_bins)``; the last bin also
    holds ``1.0``. Every bin is returned, empty ones with ``count == 0``.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    hit = np.asarray(correct, dtype=np.float64).ravel()
    if conf.shape != hit.shape:
        raise ValueError(f"confidence and correct differ in length ({conf.size} != {hit.size})")
    if conf.size and not (np.isfinite(conf).all() and conf.min() >= 0 and conf.max() <= 1):
        raise ValueError("confidences must be finite and in [0, 1]")
    index = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=conf, minlength=n_bins)
    hit_sum = np.bincount(index, weights=hit, minlength=n_bins)
    safe = np.maximum(counts, 1)
    return tuple(
        CalibrationBin(
            lower=i / n_bins,
            upper=(i + 1) / n_bins,
            count=int(counts[i]),
            accuracy=float(hit_sum[i] / safe[i]),
            confidence=float(conf_sum[i] / safe[i]),
        )
        for i in range(n_bins)
    )


def expected_calibration_error(bins: Iterable[CalibrationBin]) -> float:
    """ECE: ``sum_b (count_b / n) * |accuracy_b - confidence_b|`` (``0.0`` when ``n == 0``)."""
    bins = tuple(bins)
    total = sum(b.count for b in bins)
    if total == 0:
        return 0.0
    return float(sum(b.count * abs(b.accuracy - b.confidence) for b in bins) / total)


# --------------------------------------------------------------------------- evaluate


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def _prf(correct: int, gold: int, predicted: int) -> tuple[float, float, float]:
    precision = _ratio(correct, predicted)
    recall = _ratio(correct, gold)
    # 2PR/(P+R) == 2*correct/(gold+predicted) whenever P+R > 0, and 0 otherwise.
    return precision, recall, _ratio(2 * correct, gold + predicted)


def _span_keys(spans: Iterable[Span]) -> frozenset[tuple[str, int, int]]:
    return frozenset((s.label, s.start, s.end) for s in spans)


def _top_guess(parse: Parse, index: int) -> tuple[str | None, float]:
    """The intent and confidence calibration is judged on."""
    guess: str | None
    if parse.intent is None and parse.ranking:
        guess, confidence = parse.ranking[0].intent, parse.ranking[0].confidence
    else:
        guess, confidence = parse.intent, parse.confidence
    if not (
        math.isfinite(confidence)
        and -_CONFIDENCE_TOLERANCE <= confidence <= 1 + _CONFIDENCE_TOLERANCE
    ):
        raise DataError(
            f"prediction {index}: confidence {confidence!r} is not a probability in [0, 1]"
        )
    return guess, min(max(confidence, 0.0), 1.0)


def _groups(
    keys: Sequence[str],
    intent_ok: npt.NDArray[np.bool_],
    exact: npt.NDArray[np.bool_],
    n_gold: npt.NDArray[np.int64],
    n_pred: npt.NDArray[np.int64],
    n_correct: npt.NDArray[np.int64],
) -> dict[str, GroupMetrics]:
    names, inverse = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    k = len(names)
    sizes = np.bincount(inverse, minlength=k)
    intent_sums = np.bincount(inverse, weights=intent_ok, minlength=k)
    exact_sums = np.bincount(inverse, weights=exact, minlength=k)
    gold_sums = np.bincount(inverse, weights=n_gold, minlength=k).astype(np.int64)
    pred_sums = np.bincount(inverse, weights=n_pred, minlength=k).astype(np.int64)
    correct_sums = np.bincount(inverse, weights=n_correct, minlength=k).astype(np.int64)
    out: dict[str, GroupMetrics] = {}
    for i, name in enumerate(names):
        p, r, f = _prf(int(correct_sums[i]), int(gold_sums[i]), int(pred_sums[i]))
        out[str(name)] = GroupMetrics(
            n=int(sizes[i]),
            intent_accuracy=_ratio(intent_sums[i], sizes[i]),
            slot_precision=p,
            slot_recall=r,
            slot_f1=f,
            exact_match=_ratio(exact_sums[i], sizes[i]),
            gold_slots=int(gold_sums[i]),
            predicted_slots=int(pred_sums[i]),
        )
    return out


def _sort_name(name: str | None) -> tuple[bool, str]:
    return (name is None, name or "")


def evaluate(
    gold: Sequence[Utterance],
    predicted: Sequence[Parse],
    *,
    n_bins: int = 15,
    top_confusions: int = 10,
) -> Evaluation:
    """Score ``predicted[i]`` against ``gold[i]`` for every ``i`` (see the module docs).

    Raises `DataError` when the sequences differ in length, are empty, when a parse is of
    a different text than its gold utterance, or when a confidence is not a probability;
    `ConfigError` when ``n_bins < 1``.
    """
    if len(gold) != len(predicted):
        raise DataError(
            f"{len(gold)} gold utterances but {len(predicted)} predictions; "
            "evaluate needs one Parse per utterance, in the same order"
        )
    if not gold:
        raise DataError("nothing to evaluate: no gold utterances")
    if n_bins < 1:
        raise ConfigError(f"must be at least 1, got {n_bins}", key="n_bins")

    n = len(gold)
    intent_ok = np.zeros(n, dtype=bool)
    exact = np.zeros(n, dtype=bool)
    top_ok = np.zeros(n, dtype=bool)
    top_exact = np.zeros(n, dtype=bool)
    top_conf = np.zeros(n, dtype=np.float64)
    n_gold = np.zeros(n, dtype=np.int64)
    n_pred = np.zeros(n, dtype=np.int64)
    n_correct = np.zeros(n, dtype=np.int64)
    gold_by_label: Counter[str] = Counter()
    pred_by_label: Counter[str] = Counter()
    correct_by_label: Counter[str] = Counter()
    confusions: Counter[tuple[str | None, str | None]] = Counter()
    not_recognized = 0

    for i, (utt, parse) in enumerate(zip(gold, predicted, strict=True)):
        if parse.text != utt.text:
            raise DataError(
                f"prediction {i} is for text {parse.text!r} but gold utterance {i} is "
                f"{utt.text!r}; predictions must be in the same order as the gold data"
            )
        guess, confidence = _top_guess(parse, i)
        top_conf[i] = confidence
        top_ok[i] = guess == utt.intent
        ok = parse.intent == utt.intent
        intent_ok[i] = ok
        if parse.intent is None:
            not_recognized += 1
        if not ok:
            confusions[(utt.intent, parse.intent)] += 1

        g = _span_keys(utt.slots)
        p = _span_keys(parse.slots)
        both = g & p
        n_gold[i], n_pred[i], n_correct[i] = len(g), len(p), len(both)
        exact[i] = ok and g == p
        top_exact[i] = top_ok[i] and g == p
        gold_by_label.update(label for label, _, _ in g)
        pred_by_label.update(label for label, _, _ in p)
        correct_by_label.update(label for label, _, _ in both)

    total_gold, total_pred = int(n_gold.sum()), int(n_pred.sum())
    total_correct = int(n_correct.sum())
    precision, recall, f1 = _prf(total_correct, total_gold, total_pred)

    per_slot: dict[str, SlotScore] = {}
    for label in sorted(gold_by_label.keys() | pred_by_label.keys()):
        p_, r_, f_ = _prf(correct_by_label[label], gold_by_label[label], pred_by_label[label])
        per_slot[label] = SlotScore(p_, r_, f_, gold_by_label[label])

    domains = [u.domain for u in gold]
    per_domain: dict[str, GroupMetrics] = {}
    if any(d is not None for d in domains):
        keys = [NO_DOMAIN if d is None else d for d in domains]
        per_domain = _groups(keys, intent_ok, exact, n_gold, n_pred, n_correct)
    per_locale = _groups([u.locale for u in gold], intent_ok, exact, n_gold, n_pred, n_correct)

    ranked = sorted(
        confusions.items(),
        key=lambda item: (-item[1], _sort_name(item[0][0]), _sort_name(item[0][1])),
    )
    bins = calibration_bins(top_conf, top_ok, n_bins=n_bins)

    return Evaluation(
        n=n,
        intent_accuracy=float(intent_ok.mean()),
        slot_precision=precision,
        slot_recall=recall,
        slot_f1=f1,
        exact_match=float(exact.mean()),
        ece=expected_calibration_error(bins),
        not_recognized=not_recognized / n,
        top_intent_accuracy=float(top_ok.mean()),
        top_exact_match=float(top_exact.mean()),
        gold_slots=total_gold,
        predicted_slots=total_pred,
        correct_slots=total_correct,
        per_domain=per_domain,
        per_locale=per_locale,
        per_slot=per_slot,
        confusions=tuple(Confusion(g, p, c) for (g, p), c in ranked[: max(top_confusions, 0)]),
        calibration=bins,
    )


# --------------------------------------------------------------------------- report


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, text_columns: int = 1
) -> list[str]:
    """Aligned plain-text columns: the first ``text_columns`` left-aligned, numbers right."""
    widths = [max(len(row[j]) for row in (header, *rows)) for j in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.ljust(widths[j]) if j < text_columns else cell.rjust(widths[j])
            for j, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _group_table(title: str, groups: Mapping[str, GroupMetrics]) -> list[str]:
    rows = [
        [
            name,
            str(g.n),
            _pct(g.intent_accuracy),
            _pct(g.slot_f1) if g.gold_slots + g.predicted_slots else "-",
            _pct(g.exact_match),
        ]
        for name, g in groups.items()
    ]
    return ["", title, *_table([title.split()[-1], "n", "intent", "slot F1", "exact"], rows)]


def _intent_name(intent: str | None) -> str:
    return NOT_RECOGNIZED if intent is None else intent


def format_report(
    evaluation: Evaluation, *, title: str | None = None, worst_slots: int = 10
) -> str:
    """A plain-text report: headline percentages, then the breakdowns worth reading.

    Slot F1 of a slice with no gold and no predicted slots is shown as ``-``.
    """
    e = evaluation
    lines: list[str] = []
    if title:
        lines += [title, "=" * len(title)]
    headline = [
        ["utterances", str(e.n)],
        ["intent accuracy", _pct(e.intent_accuracy)],
        ["slot precision", _pct(e.slot_precision)],
        ["slot recall", _pct(e.slot_recall)],
        ["slot F1", _pct(e.slot_f1)],
        ["exact match", _pct(e.exact_match)],
        [f"intent ECE ({len(e.calibration)} bins)", _pct(e.ece)],
        ["not recognized", _pct(e.not_recognized)],
        ["intent accuracy of the best guess", _pct(e.top_intent_accuracy)],
        ["exact match of the best guess", _pct(e.top_exact_match)],
        ["gold slots", str(e.gold_slots)],
        ["predicted slots", str(e.predicted_slots)],
        ["correct slots", str(e.correct_slots)],
    ]
    lines += _table(["metric", "value"], headline)
    if e.per_domain:
        lines += _group_table("per domain", e.per_domain)
    if len(e.per_locale) > 1:
        lines += _group_table("per locale", e.per_locale)
    if e.confusions:
        rows = [
            [_intent_name(c.gold), _intent_name(c.predicted), str(c.count)] for c in e.confusions
        ]
        lines += [
            "",
            "top intent confusions",
            *_table(["gold", "predicted", "count"], rows, text_columns=2),
        ]
    if e.per_slot and worst_slots > 0:
        worst = sorted(e.per_slot.items(), key=lambda kv: (kv[1].f1, -kv[1].support, kv[0]))
        rows = [
            [label, _pct(s.precision), _pct(s.recall), _pct(s.f1), str(s.support)]
            for label, s in worst[:worst_slots]
        ]
        lines += [
            "",
            f"worst slot labels by F1 ({min(worst_slots, len(worst))} of {len(worst)})",
            *_table(["slot", "precision", "recall", "F1", "support"], rows),
        ]
    return "\n".join(lines) + "\n"


def unknown_intents(known: Sequence[str] | None, utterances: Sequence[Utterance]) -> str | None:
    """How many ``utterances`` have intents outside ``known`` (a model's), in words, naming
    the commonest — or None when there are none (or ``known`` is unknown)."""
    if not known:
        return None
    unknown = Counter(
        u.intent for u in utterances if u.intent is not None and u.intent not in known
    )
    if not unknown:
        return None
    n = sum(unknown.values())
    names = ", ".join(name for name, _ in unknown.most_common(5))
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    verb = "has an intent" if n == 1 else "have intents"
    return f"{n:,} of {len(utterances):,} utterances {verb} the model does not know ({names}{more})"
