"""The reward a policy learns from: one number per turn from its `Feedback` signals.

The rule, in order:

1. Any ``barge_in``, ``rephrase`` or ``abandonment`` signal: reward 0 (the answer was
   interrupted, not understood, or given up on).
2. Otherwise a ``task_success`` signal: its value, clipped to [0, 1] (the latest one wins).
3. Otherwise a ``rating``: its value, on `voxloop.schema.RATING_SCALE` ([0, 1]; a rating
   outside it is an error) (the latest one wins).
4. Otherwise ``default``: None (no update) unless the caller says that a turn closed
   without complaint is worth something (e.g. 1.0 once the next turn arrived with no
   rephrase). Signals of other kinds are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from voxloop.errors import DataError
from voxloop.schema import RATING_SCALE, Feedback

__all__ = ["NEGATIVE_SIGNALS", "reward_from_feedback"]

#: Feedback kinds that make a turn's reward 0.
NEGATIVE_SIGNALS = frozenset({"barge_in", "rephrase", "abandonment"})


def reward_from_feedback(
    signals: Iterable[Feedback], *, default: float | None = None
) -> float | None:
    """The reward of one turn from all its feedback signals (see the module docstring)."""
    success: Feedback | None = None
    rating: Feedback | None = None
    negative = False
    for signal in signals:
        if not isinstance(signal, Feedback):
            raise DataError(f"expected Feedback, got {type(signal).__name__}", field="feedback")
        if not math.isfinite(signal.value):
            raise DataError(f"feedback value must be finite, got {signal.value!r}", field="value")
        if signal.kind in NEGATIVE_SIGNALS:
            negative = True
        elif signal.kind == "task_success":
            success = _latest(success, signal)
        elif signal.kind == "rating":
            rating = _latest(rating, signal)
    if negative:
        return 0.0
    if success is not None:
        return min(max(success.value, 0.0), 1.0)
    if rating is not None:
        low, high = RATING_SCALE
        if low <= rating.value <= high:
            return rating.value
        raise DataError(f"a rating is in [{low:g}, {high:g}], got {rating.value!r}",
                        field="value")  # fmt: skip
    return default


def _latest(current: Feedback | None, new: Feedback) -> Feedback:
    return new if current is None or new.timestamp >= current.timestamp else current
