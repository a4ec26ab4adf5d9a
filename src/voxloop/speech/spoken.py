"""Spoken-language-understanding evaluation: how much understanding survives recognition.

For each gold utterance: synthesise it (`synth.speak`, voices and rates in turn),
recognise it, parse every n-best hypothesis, and compare with the gold text's own parse:
WER (normalised and not), intent accuracy, slot span F1 and SLU-F1 (`wer.slot_scores`).
With rescoring weights, the n-best pick by combined score is scored beside the 1-best.
Audio is made and dropped one utterance at a time, so memory does not grow with the set.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from voxloop.nlu.base import Parser
from voxloop.nlu.evaluate import Evaluation, evaluate
from voxloop.schema import Parse, Utterance
from voxloop.speech.bias import DomainLM
from voxloop.speech.recognizers import Recognition, Recognizer
from voxloop.speech.rescore import RescoreWeights, pick
from voxloop.speech.synth import RATES, VOICES, speak, voice_for
from voxloop.speech.wer import SlotScores, slot_scores, word_error_rate

__all__ = ["SpokenEvaluation", "SpokenItem", "Understanding", "evaluate_spoken", "recognize_set"]

AudioSource = Callable[[int, Utterance], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class SpokenItem:
    """One utterance: what was heard, and the parses of every hypothesis."""

    gold: Utterance
    recognition: Recognition
    parses: tuple[Parse, ...]
    voice: str = ""


@dataclass(frozen=True)
class Understanding:
    """Intent accuracy, slot scores and WER of one way of choosing the transcript."""

    intent_accuracy: float
    slots: SlotScores
    wer: float


@dataclass(frozen=True)
class SpokenEvaluation:
    """Everything `evaluate_spoken` measured; fractions in [0, 1]."""

    n: int
    recognizer: str
    gold_text: Evaluation
    """The usual text evaluation of the gold transcripts."""
    gold: Understanding
    """Gold text scored like the recognised text (slots as label/value pairs, WER 0)."""
    recognized: Understanding
    """The recognizer's 1-best transcript."""
    wer_unnormalized: float
    """WER with lower-casing and punctuation removal only (no number/contraction rules)."""
    picked: Understanding | None
    """The n-best pick by combined score (None without rescoring weights)."""
    weights: RescoreWeights | None
    audio_seconds: float
    recognize_seconds: float
    empty: int
    """Utterances where nothing was heard."""
    examples: list[dict[str, str]] = field(default_factory=list)

    @property
    def real_time_factor(self) -> float:
        return self.recognize_seconds / self.audio_seconds if self.audio_seconds else 0.0

    @property
    def relative_intent_accuracy(self) -> float:
        """Intent accuracy on recognised speech over that on gold text."""
        gold = self.gold.intent_accuracy
        return self.recognized.intent_accuracy / gold if gold else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "recognizer": self.recognizer,
            "wer": self.recognized.wer,
            "wer_unnormalized": self.wer_unnormalized,
            "gold": asdict(self.gold),
            "recognized": asdict(self.recognized),
            "picked": asdict(self.picked) if self.picked else None,
            "weights": asdict(self.weights) if self.weights else None,
            "relative_intent_accuracy": self.relative_intent_accuracy,
            "gold_text": {
                k: v for k, v in self.gold_text.to_json().items() if not isinstance(v, dict | list)
            },
            "audio_seconds": round(self.audio_seconds, 3),
            "recognize_seconds": round(self.recognize_seconds, 3),
            "real_time_factor": round(self.real_time_factor, 4),
            "empty": self.empty,
            "examples": self.examples,
        }


def synthesized(voices: Sequence[str] = VOICES, rates: Sequence[int] = RATES) -> AudioSource:
    """An `AudioSource` speaking each utterance with espeak-ng, voices and rates in turn."""

    def source(index: int, utterance: Utterance) -> npt.NDArray[np.float32]:
        voice, rate = voice_for(index, voices, rates)
        return speak(utterance.text, voice=voice, rate=rate)

    return source


def recognize_set(
    parser: Parser,
    recognizer: Recognizer,
    gold: Sequence[Utterance],
    audio: AudioSource,
    *,
    on_item: Callable[[SpokenItem], None] | None = None,
) -> list[SpokenItem]:
    """Recognise every utterance's audio and parse every hypothesis (one at a time)."""
    items = []
    for i, utterance in enumerate(gold):
        samples = audio(i, utterance)
        recognition = recognizer.recognize(samples)
        texts = [h.text for h in recognition.hypotheses]
        parses = tuple(parser.parse(texts)) if texts else ()
        item = SpokenItem(utterance, recognition, parses, "/".join(map(str, voice_for(i))))
        items.append(item)
        if on_item is not None:
            on_item(item)
    return items


def _pairs(slots: Sequence[Any]) -> list[tuple[str, str]]:
    return [(s.label, s.value) for s in slots]


def _understanding(
    gold: Sequence[Utterance], texts: Sequence[str], parses: Sequence[Parse | None]
) -> Understanding:
    right = sum(p is not None and p.intent == g.intent for g, p in zip(gold, parses, strict=True))
    slots = slot_scores(
        [_pairs(g.slots) for g in gold], [_pairs(p.slots) if p else [] for p in parses]
    )
    wer = word_error_rate([g.text for g in gold], texts)
    return Understanding(right / max(1, len(gold)), slots, wer)


def evaluate_spoken(
    parser: Parser,
    items: Sequence[SpokenItem],
    *,
    lm: DomainLM | None = None,
    weights: RescoreWeights | None = None,
    examples: int = 10,
) -> SpokenEvaluation:
    """Score recognised items (`recognize_set`) against their gold utterances."""
    if not items:
        from voxloop.errors import DataError

        raise DataError("no utterances to evaluate")
    gold = [it.gold for it in items]
    started = time.perf_counter()
    gold_parses = parser.parse([g.text for g in gold])
    _ = time.perf_counter() - started
    best_texts = [it.recognition.text for it in items]
    best_parses = [it.parses[0] if it.parses else None for it in items]
    picked = None
    if weights is not None:
        picks = [pick(it.recognition.hypotheses, it.parses, lm, weights) for it in items]
        picked = _understanding(
            gold,
            [
                it.recognition.hypotheses[k].text if it.parses else ""
                for it, k in zip(items, picks, strict=True)
            ],
            [it.parses[k] if it.parses else None for it, k in zip(items, picks, strict=True)],
        )
    shown = [
        {"gold": it.gold.text, "heard": it.recognition.text, "voice": it.voice}
        for it in items
        if it.recognition.text != it.gold.text
    ][:examples]
    return SpokenEvaluation(
        n=len(items),
        recognizer=items[0].recognition.recognizer,
        gold_text=evaluate(gold, gold_parses),
        gold=_understanding(gold, [g.text for g in gold], gold_parses),
        recognized=_understanding(gold, best_texts, best_parses),
        wer_unnormalized=word_error_rate(
            [g.text for g in gold],
            [it.recognition.hypotheses[0].raw if it.recognition.hypotheses else "" for it in items],
            normalize=False,
        ),
        picked=picked,
        weights=weights,
        audio_seconds=sum(it.recognition.audio_seconds for it in items),
        recognize_seconds=sum(it.recognition.seconds for it in items),
        empty=sum(not it.recognition.hypotheses for it in items),
        examples=shown,
    )


def format_spoken(result: SpokenEvaluation, title: str = "") -> str:
    """A plain-text report: gold text vs recognised (vs n-best pick)."""
    rows = [("gold text", result.gold), (f"{result.recognizer} 1-best", result.recognized)]
    if result.picked is not None:
        rows.append(("n-best pick", result.picked))
    lines = [title] if title else []
    lines.append(
        f"{result.n} utterances, {result.audio_seconds:.0f} s of audio, real-time factor "
        f"{result.real_time_factor:.3f}; nothing heard in {result.empty}"
    )
    lines.append(f"{'':<22}{'WER':>8}{'intent':>9}{'span F1':>9}{'SLU-F1':>9}")
    for name, u in rows:
        lines.append(
            f"{name:<22}{u.wer:>8.2%}{u.intent_accuracy:>9.2%}{u.slots.span_f1:>9.2%}{u.slots.slu_f1:>9.2%}"
        )
    lines.append(f"WER without normalisation: {result.wer_unnormalized:.2%}")
    lines.append(f"intent accuracy on speech / on gold text: {result.relative_intent_accuracy:.1%}")
    if result.weights is not None:
        lines.append(f"rescoring weights: lm {result.weights.lm:g}, nlu {result.weights.nlu:g}")
    g = result.gold_text
    lines.append(
        f"gold text (exact spans): intent {g.intent_accuracy:.2%}, slot F1 {g.slot_f1:.2%}, "
        f"exact match {g.exact_match:.2%}"
    )
    for ex in result.examples:
        lines.append(f"  [{ex['voice']}] {ex['gold']!r} -> {ex['heard']!r}")
    return "\n".join(lines)
