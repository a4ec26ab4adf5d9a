"""From a parse and the session state, the candidate responses of a turn.

The rules, in order:

1. **Continue or start.** A request in progress (``state.intent`` with a question pending)
   continues when the new parse has the same intent, or, while a slot is being elicited,
   when it fills a slot of the group asked for (an answer like "fifty percent" may be
   parsed under any intent). Its slots are merged, newest first. Otherwise the parse starts
   a new request.
2. **Fallback.** No intent, or one the catalog does not know: the fallback prompts.
3. **Confirm.** A new request parsed with confidence below its intent's ``confirm_below``:
   the confirmation prompts (a continued request is never re-confirmed).
4. **Elicit.** A required slot (or group) without a value: the prompts of the first one.
5. **Respond.** Otherwise the intent's responses.

Only variants whose fields all have values are candidates (slot values from the parse;
``results`` from fulfilment, e.g. the temperature for a weather answer); the catalog's
checks guarantee at least one. When the same question would be asked more than
``max_attempts`` times in a row, the dialog gives up with the fallback prompts. Each
`Candidate` carries a stable action id for the bandit and the log, and the session state
to keep if it is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from voxloop.dialog.responses import Catalog, IntentSpec, Template, load_catalog
from voxloop.dialog.state import CONFIRMATION, SessionState
from voxloop.errors import ConfigError, DataError
from voxloop.schema import Parse, Span

__all__ = ["KINDS", "Candidate", "action_id", "candidates", "default_catalog"]

#: Candidate kinds.
KINDS = ("respond", "elicit", "confirm", "fallback")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One thing the assistant could say this turn.

    ``action`` is the stable id a policy chooses by and the log keeps
    (``HassGetWeather/respond/brief``, ``HassLightSet/elicit.brightness/ask``,
    ``HassTurnOn/confirm/plain``, ``fallback/sorry``); ``next_state`` is the session state
    to keep if this candidate is said.
    """

    action: str
    kind: str
    text: str
    intent: str | None
    slot: str | None
    next_state: SessionState


def action_id(kind: str, intent: str | None, template_id: str, slot: str | None = None) -> str:
    """The action id of a template of ``kind`` (see `Candidate`)."""
    if kind == "fallback":
        return f"fallback/{template_id}"
    if kind == "elicit":
        return f"{intent}/elicit.{slot}/{template_id}"
    return f"{intent}/{kind}/{template_id}"


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The packaged domain files (loaded once)."""
    return load_catalog()


def candidates(
    parse: Parse,
    state: SessionState | None = None,
    catalog: Catalog | None = None,
    *,
    results: Mapping[str, str] | None = None,
    max_attempts: int = 2,
) -> list[Candidate]:
    """The candidate responses for this turn (never empty; see the module docstring)."""
    if not isinstance(parse, Parse):
        raise DataError(f"expected a Parse, got {type(parse).__name__}", field="parse")
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ConfigError(f"must be a positive integer, got {max_attempts!r}", key="max_attempts")
    state = state if state is not None else SessionState()
    catalog = catalog if catalog is not None else default_catalog()

    pending = catalog.intents.get(state.intent) if state.intent is not None else None
    continuing = False
    if pending is not None and state.awaiting is not None:
        if parse.intent == pending.name:
            continuing = True
        elif state.awaiting != CONFIRMATION and state.awaiting in pending.elicit:
            group = pending.group_of(state.awaiting)
            continuing = any(span.label in group for span in parse.slots)
    if continuing and pending is not None:
        spec: IntentSpec | None = pending
        slots = _merge(state.slots, parse.slots)
    else:
        spec = catalog.intents.get(parse.intent) if parse.intent is not None else None
        slots = parse.slots
    if spec is None:
        return _fallback(catalog)

    values = _values(slots)
    for name in spec.results:
        if results is not None and name in results:
            values[name] = str(results[name])

    if not continuing and parse.confidence < spec.confirm_below:
        kind, slot, templates, awaiting = "confirm", None, spec.confirm, CONFIRMATION
    else:
        missing = next((g for g in spec.required if not any(s in values for s in g)), None)
        if missing is None:
            return _render(spec, "respond", None, spec.responses, values, SessionState())
        slot = spec.group_key(missing)
        kind, templates, awaiting = "elicit", spec.elicit[slot], slot
    same_question = state.intent == spec.name and state.awaiting == awaiting
    attempts = state.attempts + 1 if same_question else 1
    if attempts > max_attempts:
        return _fallback(catalog)
    next_state = SessionState(spec.name, slots, awaiting, attempts)
    return _render(spec, kind, slot, templates, values, next_state)


def _render(
    spec: IntentSpec,
    kind: str,
    slot: str | None,
    templates: tuple[Template, ...],
    values: Mapping[str, str],
    next_state: SessionState,
) -> list[Candidate]:
    out = []
    for template in templates:
        text = template.render(values)
        if text is not None:
            action = action_id(kind, spec.name, template.id, slot)
            out.append(Candidate(action, kind, text, spec.name, slot, next_state))
    return out


def _fallback(catalog: Catalog) -> list[Candidate]:
    return [
        Candidate(
            action_id("fallback", None, t.id),
            "fallback",
            t.text.format(),
            None,
            None,
            SessionState(),
        )
        for t in catalog.fallback
    ]


def _merge(old: tuple[Span, ...], new: tuple[Span, ...]) -> tuple[Span, ...]:
    """Slots of a continued request: the new turn's spans replace old ones of their label."""
    labels = {span.label for span in new}
    return tuple(span for span in old if span.label not in labels) + tuple(new)


def _values(slots: tuple[Span, ...]) -> dict[str, str]:
    """Slot label -> value ("a and b" when a label has several spans)."""
    grouped: dict[str, list[str]] = {}
    for span in slots:
        grouped.setdefault(span.label, []).append(span.value)
    return {label: " and ".join(values) for label, values in grouped.items()}
