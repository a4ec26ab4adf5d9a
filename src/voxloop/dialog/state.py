"""The little a dialog remembers between turns of one session."""

from __future__ import annotations

from dataclasses import dataclass

from voxloop.schema import Span

__all__ = ["CONFIRMATION", "SessionState"]

#: ``SessionState.awaiting`` while the assistant waits for a confirmation.
CONFIRMATION = "<confirmation>"


@dataclass(frozen=True, slots=True)
class SessionState:
    """Where a session stands after a turn.

    ``intent`` and ``slots`` are the request in progress (slots gathered so far, from any
    turn); ``awaiting`` is the slot the last prompt asked for, `CONFIRMATION`, or None;
    ``attempts`` counts how many times in a row that same question was asked. The empty
    state (the default) means no request is in progress.
    """

    intent: str | None = None
    slots: tuple[Span, ...] = ()
    awaiting: str | None = None
    attempts: int = 0
