"""Training data augmentation: slot values swapped between utterances.

A model that has seen "add [entity_name: karma police] to my playlist" may learn the title
rather than the frame around it, and tag an unseen title by what it looks like (an artist's
name) instead of where it stands. Copies of the training utterances with each slot's text
replaced by another value the training set gives that label (in the same locale) show the
same frames with other fillers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from voxloop.errors import ConfigError
from voxloop.schema import Span, Utterance

__all__ = ["substitute_slot_values"]


def substitute_slot_values(
    utterances: Sequence[Utterance], copies: int = 1, seed: int = 0
) -> list[Utterance]:
    """``copies`` new utterances per utterance with slots: the same intent and words
    outside its slots, each slot's text replaced by a value drawn at random from the
    other values of that label among ``utterances`` of the same locale (the same value
    when it is the only one). Offsets are those of the new text."""
    if copies < 0:
        raise ConfigError(f"must be 0 or more, not {copies}", key="substitute_slots")
    values: dict[tuple[str, str], set[str]] = {}
    for u in utterances:
        for s in u.slots:
            values.setdefault((u.locale, s.label), set()).add(u.text[s.start : s.end])
    pools = {key: sorted(found) for key, found in values.items()}
    rng = random.Random(seed)
    out: list[Utterance] = []
    for _ in range(copies):
        for u in utterances:
            if u.slots:
                out.append(_substituted(u, pools, rng))
    return out


def _substituted(
    u: Utterance, pools: dict[tuple[str, str], list[str]], rng: random.Random
) -> Utterance:
    parts: list[str] = []
    slots: list[Span] = []
    at = length = 0
    for span in sorted(u.slots, key=lambda s: s.start):
        pool = pools[(u.locale, span.label)]
        original = u.text[span.start : span.end]
        value = rng.choice(pool)
        while value == original and len(pool) > 1:
            value = rng.choice(pool)
        before = u.text[at : span.start]
        parts += [before, value]
        start = length + len(before)
        slots.append(Span(start, start + len(value), span.label, value))
        length = start + len(value)
        at = span.end
    parts.append(u.text[at:])
    return Utterance("".join(parts), u.intent, tuple(slots), u.domain, u.locale)
