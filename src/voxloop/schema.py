"""The values every stage of the loop speaks: plain frozen dataclasses, no behaviour.

Slots are always character spans over the original text (``text[start:end] == value``),
never token indices: spans survive tokenizers, languages and speech recognition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "DEFAULT_LOCALE",
    "FEEDBACK_KINDS",
    "RATING_SCALE",
    "Feedback",
    "IntentScore",
    "Parse",
    "Span",
    "Turn",
    "Utterance",
]

DEFAULT_LOCALE = "en-US"
#: The one scale of a ``rating`` feedback value: 0.0 is the worst answer, 1.0 the best.
#: A client with 1-5 stars sends ``(stars - 1) / 4``; thumbs down/up send 0.0/1.0.
#: ``POST /v1/feedback`` refuses other values (422); the KPIs and rewards read it as is.
RATING_SCALE = (0.0, 1.0)


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


@dataclass(frozen=True, slots=True)
class Turn:
    """Everything the log keeps about one answered request.

    ``timestamp`` is timezone-aware UTC. Latencies are milliseconds: ``latency_ms`` is the
    whole request as the server saw it, ``parse_ms`` the model's share (batching included).
    ``action``/``propensity`` are the response a policy chose and the probability it had of
    choosing it, ``candidates`` the actions it chose among (for off-policy evaluation);
    ``experiment``/``arm`` the A/B assignment.
    """

    turn_id: str
    timestamp: datetime
    text: str
    parse: Parse
    model_version: str
    locale: str = DEFAULT_LOCALE
    user_id: str | None = None
    session_id: str | None = None
    experiment: str | None = None
    arm: str | None = None
    action: str | None = None
    propensity: float | None = None
    latency_ms: float | None = None
    parse_ms: float | None = None
    channel: str = "http"
    candidates: tuple[str, ...] = ()


FEEDBACK_KINDS = ("rating", "barge_in", "abandonment", "task_success", "rephrase")
"""The feedback kinds the KPIs read; any other lower-case name is logged as it is."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """A later signal about a turn, joined to it in the log by ``turn_id``.

    ``kind`` is one of ``rating`` (``value`` on `RATING_SCALE`, [0, 1]), ``barge_in``,
    ``abandonment``, ``task_success`` (``value`` 1 or 0), ``rephrase``, or a custom name.
    """

    turn_id: str
    timestamp: datetime
    kind: str
    value: float = 1.0
    user_id: str | None = None
