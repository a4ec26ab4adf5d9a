"""Specification of `voxloop.personalize.reward`: feedback signals become one reward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voxloop.errors import DataError
from voxloop.personalize.reward import reward_from_feedback
from voxloop.schema import Feedback

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def signal(kind: str, value: float = 1.0, after: int = 0) -> Feedback:
    return Feedback("turn-1", T0 + timedelta(seconds=after), kind, value)


@pytest.mark.parametrize(
    ("signals", "reward"),
    [
        ([signal("task_success", 1.0)], 1.0),
        ([signal("task_success", 0.0)], 0.0),
        ([signal("task_success", 1.0), signal("barge_in")], 0.0),
        ([signal("rephrase"), signal("rating", 5.0)], 0.0),
        ([signal("abandonment")], 0.0),
        ([signal("rating", 0.8)], 0.8),
        ([signal("rating", 1.0, after=0), signal("rating", 0.2, after=5)], 0.2),
        ([signal("rating", 0.1), signal("task_success", 1.0)], 1.0),
        ([signal("task_success", 3.0)], 1.0),
        ([signal("custom_signal", 7.0)], None),
        ([], None),
    ],
)
def test_reward_follows_the_documented_rule(signals: list[Feedback], reward: float | None) -> None:
    assert reward_from_feedback(signals) == reward


def test_a_turn_without_signal_gets_the_default_the_caller_gives() -> None:
    assert reward_from_feedback([], default=1.0) == 1.0
    assert reward_from_feedback([signal("rephrase")], default=1.0) == 0.0


def test_bad_signals_are_rejected() -> None:
    with pytest.raises(DataError, match="rating"):
        reward_from_feedback([signal("rating", 7.0)])
    with pytest.raises(DataError, match=r"rating is in \[0, 1\], got 4.0"):
        reward_from_feedback([signal("rating", 4.0)])  # a 1-5 score is sent as (4 - 1) / 4
    with pytest.raises(DataError, match="finite"):
        reward_from_feedback([signal("task_success", float("nan"))])
    with pytest.raises(DataError, match="Feedback"):
        reward_from_feedback([{"kind": "rating"}])  # type: ignore[list-item]
