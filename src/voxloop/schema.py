"""The values every stage of the loop speaks: plain frozen dataclasses, no behaviour.

Slots are always character spans over the original text (``text[start:end] == value``),
never token indices: spans survive tokenizers, languages and speech recognition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_LOCALE", "IntentScore", "Parse", "Span", "Utterance"]

DEFAULT_LOCALE = "en-US"


@dataclass(frozen=True, slots=True)
class Span:
    """A slot: a labelled character span ``[start, end)`` of an utterance's text.

    ``confidence`` is set on predicted spans (it does not take part in equality, so a
    predicted span equals the gold span with the same label and offsets).
    """

    start: int
    end: int
    label: str
    value: str
    confidence: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Utterance:
    """One labelled (or unlabelled) utterance of a corpus."""

    text: str
    intent: str | None = None
    slots: tuple[Span, ...] = ()
    domain: str | None = None
    locale: str = DEFAULT_LOCALE
    id: str | None = None


@dataclass(frozen=True, slots=True)
class IntentScore:
    """One entry of an intent ranking."""

    intent: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Parse:
    """What a parser understood of one text.

    ``intent`` is ``None`` when the parser declines to answer (not recognized); the
    ``ranking`` still lists its best guesses, highest confidence first.
    """

    text: str
    intent: str | None
    confidence: float
    ranking: tuple[IntentScore, ...]
    slots: tuple[Span, ...]
    domain: str | None = None
    locale: str = DEFAULT_LOCALE
