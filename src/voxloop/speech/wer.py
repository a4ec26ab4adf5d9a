"""Scores of recognised speech: word error rate, and slot scores that survive ASR.

Slot spans over a transcript cannot be compared by character offsets with the gold text,
so slots are compared as (label, value) pairs, as SLURP does:

- **span F1** — exact (label, normalised value) matches;
- **SLU-F1** (Bastianelli et al., EMNLP 2020) — for each predicted slot whose label is
  among the gold slots, the gold slot of that label with the lowest distance to it is a
  true positive and that distance is added to both false positives and false negatives;
  unmatched slots count whole. The word distance is the word edit distance over the gold
  value's length, the char distance the character edit distance (spaces ignored) over the
  gold value's length, both capped at 1; SLU-F1 pools the counts of both (SLURP's
  ``slu_f1``). Micro-averaged over all labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from voxloop.speech.normalize import normalize_for_wer

__all__ = ["SlotCounts", "SlotScores", "edit_distance", "slot_scores", "word_error_rate"]


def edit_distance(a: Sequence[object], b: Sequence[object]) -> int:
    """Levenshtein distance between two sequences (words or characters)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def word_error_rate(
    references: Sequence[str], hypotheses: Sequence[str], *, normalize: bool = True
) -> float:
    """Corpus WER (jiwer): total word edits over total reference words. With
    ``normalize`` both sides go through `normalize_for_wer`; without it only lower-casing
    and punctuation removal (jiwer's basic transform)."""
    import jiwer

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if normalize:
        refs = [normalize_for_wer(r) for r in references]
        hyps = [normalize_for_wer(h) for h in hypotheses]
        transform: Any = jiwer.ReduceToListOfListOfWords()
    else:
        refs, hyps = list(references), list(hypotheses)
        transform = jiwer.Compose(
            [
                jiwer.ToLowerCase(),
                jiwer.RemovePunctuation(),
                jiwer.RemoveMultipleSpaces(),
                jiwer.Strip(),
                jiwer.ReduceToListOfListOfWords(),
            ]
        )
    # jiwer refuses empty references; they contribute no reference words.
    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r.strip()]
    if not pairs:
        return 0.0
    out = jiwer.process_words(
        [r for r, _ in pairs],
        [h if h.strip() else "" for _, h in pairs],
        reference_transform=transform,
        hypothesis_transform=transform,
    )
    return float(out.wer)


@dataclass
class SlotCounts:
    """True positives, false positives and false negatives (fractional for distances)."""

    tp: float = 0.0
    fp: float = 0.0
    fn: float = 0.0

    def f1(self) -> float:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class SlotScores:
    """Slot scores over a test set, all in [0, 1]."""

    span_f1: float
    word_f1: float
    char_f1: float
    slu_f1: float


def _distance(gold: str, predicted: str, unit: str) -> float:
    g = gold.split() if unit == "word" else list(gold.replace(" ", ""))
    p = predicted.split() if unit == "word" else list(predicted.replace(" ", ""))
    return min(1.0, edit_distance(g, p) / max(1, len(g)))


def _add(
    counts: SlotCounts, gold: list[tuple[str, str]], pred: list[tuple[str, str]], unit: str
) -> None:
    remaining = list(gold)
    for label, value in pred:
        candidates = [(i, g) for i, g in enumerate(remaining) if g[0] == label]
        if not candidates:
            counts.fp += 1
            continue
        i, best = min(candidates, key=lambda c: _distance(c[1][1], value, unit))
        d = _distance(best[1], value, unit)
        counts.tp += 1
        counts.fp += d
        counts.fn += d
        remaining.pop(i)
    counts.fn += len(remaining)


def slot_scores(
    gold: Iterable[Sequence[tuple[str, str]]], predicted: Iterable[Sequence[tuple[str, str]]]
) -> SlotScores:
    """Span F1, word- and char-distance F1 and SLU-F1 over (label, value) slot lists;
    values are compared after `normalize_for_wer`."""
    exact, word, char = SlotCounts(), SlotCounts(), SlotCounts()
    for g_slots, p_slots in zip(gold, predicted, strict=True):
        g = [(label, normalize_for_wer(v)) for label, v in g_slots]
        p = [(label, normalize_for_wer(v)) for label, v in p_slots]
        remaining = list(g)
        for item in p:
            if item in remaining:
                exact.tp += 1
                remaining.remove(item)
            else:
                exact.fp += 1
        exact.fn += len(remaining)
        _add(word, g, p, "word")
        _add(char, g, p, "char")
    pooled = SlotCounts(word.tp + char.tp, word.fp + char.fp, word.fn + char.fn)
    return SlotScores(exact.f1(), word.f1(), char.f1(), pooled.f1())
