"""N-best rescoring: pick the hypothesis the recognizer, the domain LM and the NLU agree on.

``combined = asr_score + lm_weight * (domain LM log-prob per word) + nlu_weight * log(NLU
confidence)``. With both weights 0 the recognizer's own best is kept. `tune_weights` picks
the weights on a development set by intent accuracy (ties: lower weights).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from voxloop.schema import Parse
from voxloop.speech.bias import DomainLM
from voxloop.speech.recognizers import Hypothesis

__all__ = ["RescoreWeights", "combined_scores", "pick", "tune_weights"]


@dataclass(frozen=True)
class RescoreWeights:
    """Weights of the domain LM and of the NLU confidence against the ASR score."""

    lm: float = 0.0
    nlu: float = 0.0


def combined_scores(
    hyps: Sequence[Hypothesis],
    parses: Sequence[Parse],
    lm: DomainLM | None,
    weights: RescoreWeights,
) -> list[float]:
    """The combined score of each hypothesis (same order)."""
    out = []
    for h, p in zip(hyps, parses, strict=True):
        score = h.score
        if lm is not None and weights.lm:
            score += weights.lm * lm.logprob(h.text) / (len(h.text.split()) + 1)
        if weights.nlu:
            confidence = p.confidence if p.intent is not None else p.confidence / 2
            score += weights.nlu * math.log(max(confidence, 1e-6))
        out.append(score)
    return out


def pick(
    hyps: Sequence[Hypothesis],
    parses: Sequence[Parse],
    lm: DomainLM | None,
    weights: RescoreWeights,
) -> int:
    """Index of the best hypothesis by combined score (0 for an empty or single list)."""
    if len(hyps) <= 1:
        return 0
    scores = combined_scores(hyps, parses, lm, weights)
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def tune_weights(
    nbests: Sequence[Sequence[Hypothesis]],
    parses: Sequence[Sequence[Parse]],
    gold_intents: Sequence[str | None],
    lm: DomainLM | None,
    grid: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.4),
) -> tuple[RescoreWeights, float]:
    """The grid weights with the highest intent accuracy of the picked parses, and that
    accuracy."""
    best, best_acc = RescoreWeights(), -1.0
    for lm_w, nlu_w in itertools.product(grid, grid):
        w = RescoreWeights(lm_w if lm is not None else 0.0, nlu_w)
        right = 0
        for hyps, ps, gold in zip(nbests, parses, gold_intents, strict=True):
            if hyps:
                right += ps[pick(hyps, ps, lm, w)].intent == gold
        acc = right / max(1, len(nbests))
        if acc > best_acc + 1e-12:
            best, best_acc = w, acc
    return best, best_acc
