"""Specification of `voxloop.dialog.policy`: the candidate responses of a turn."""

from __future__ import annotations

import pytest

from voxloop.dialog import (
    CONFIRMATION,
    Candidate,
    SessionState,
    candidates,
    default_catalog,
)
from voxloop.errors import ConfigError, DataError
from voxloop.schema import IntentScore, Parse, Span


def parse(text: str, intent: str | None, confidence: float = 0.95, **slots: str) -> Parse:
    spans = []
    for label, value in slots.items():
        start = text.index(value)
        spans.append(Span(start, start + len(value), label, value))
    ranking = (IntentScore(intent, confidence),) if intent else ()
    return Parse(text, intent, confidence, ranking, tuple(spans))


def kinds(found: list[Candidate]) -> set[str]:
    return {c.kind for c in found}


def test_a_complete_request_gets_its_response_variants() -> None:
    found = candidates(parse("turn on the kitchen light", "HassTurnOn", name="kitchen light"))
    assert kinds(found) == {"respond"}
    assert {c.action for c in found} == {"HassTurnOn/respond/done", "HassTurnOn/respond/named"}
    assert "Turned on kitchen light." in {c.text for c in found}
    assert all(c.next_state == SessionState() for c in found)


def test_variants_needing_a_missing_slot_or_result_are_left_out() -> None:
    weather = parse("what's the weather", "HassGetWeather")
    assert [c.action for c in candidates(weather)] == ["HassGetWeather/respond/plain"]
    found = candidates(weather, results={"temperature": "21 °C", "condition": "sunny"})
    assert {c.action.rsplit("/", 1)[1] for c in found} == {
        "plain",
        "short",
        "detailed",
        "follow_up",
    }
    assert "Right now it's 21 °C and sunny." in {c.text for c in found}


def test_results_cannot_overwrite_slots() -> None:
    found = candidates(
        parse("turn on the lamp", "HassTurnOn", name="lamp"), results={"name": "the oven"}
    )
    assert "Turned on lamp." in {c.text for c in found}


def test_a_missing_required_slot_is_elicited_and_the_answer_completes_the_request() -> None:
    first = candidates(parse("play something", "HassMediaSearchAndPlay"))
    assert kinds(first) == {"elicit"} and len(first) == 2
    assert {c.slot for c in first} == {"search_query"}
    state = first[0].next_state
    assert state == SessionState("HassMediaSearchAndPlay", (), "search_query", 1)
    # the answer may come back under another intent: the awaited slot decides
    answer = parse("daft punk", "play_music", 0.4, search_query="daft punk")
    second = candidates(answer, state)
    assert kinds(second) == {"respond"}
    assert "Playing daft punk." in {c.text for c in second}


def test_one_slot_of_a_required_group_is_enough() -> None:
    found = candidates(parse("set a timer for 30 seconds", "HassStartTimer", seconds="30"))
    assert kinds(found) == {"respond"}
    assert "Timer set for 30 seconds." in {c.text for c in found}
    elicit = candidates(parse("start a timer", "HassStartTimer"))
    assert {c.action for c in elicit} == {"HassStartTimer/elicit.minutes/how_long"}
    answer = candidates(parse("two hours", None, 0.0, hours="two"), elicit[0].next_state)
    assert "Timer set for two hours." in {c.text for c in answer}


def test_slots_gathered_over_turns_are_merged_newest_first() -> None:
    state = SessionState(
        "HassLightSet", (Span(0, 7, "name", "kitchen"), Span(0, 3, "color", "red")), "brightness"
    )
    found = candidates(parse("blue", "HassLightSet", color="blue"), state)
    assert "The lights are now blue." in {c.text for c in found}
    assert "Set kitchen to" not in " ".join(c.text for c in found)


def test_low_confidence_asks_for_confirmation_first() -> None:
    found = candidates(parse("turn on the lamp", "HassTurnOn", 0.3, name="lamp"))
    assert kinds(found) == {"confirm"}
    assert "Do you want me to turn on lamp?" in {c.text for c in found}
    state = found[0].next_state
    assert state.awaiting == CONFIRMATION and state.intent == "HassTurnOn"
    # repeating the same intent confirms it, even at low confidence
    again = candidates(parse("yes turn on the lamp", "HassTurnOn", 0.35), state)
    assert kinds(again) == {"respond"}
    assert "Turned on lamp." in {c.text for c in again}


def test_each_intent_has_its_own_threshold() -> None:
    # HassNevermind confirms only below 0.3
    assert kinds(candidates(parse("never mind", "HassNevermind", 0.35))) == {"respond"}
    assert kinds(candidates(parse("never mind", "HassNevermind", 0.25))) == {"confirm"}


def test_a_confident_new_request_abandons_the_pending_one() -> None:
    state = SessionState("HassMediaSearchAndPlay", (), "search_query", 1)
    found = candidates(parse("what's the time", "HassGetCurrentTime"), state)
    assert {c.intent for c in found} == {"HassGetCurrentTime"}


@pytest.mark.parametrize(
    "turn", [parse("blah", None, 0.0), parse("order a pizza", "order_pizza", 0.99)]
)
def test_no_intent_or_an_unknown_one_gets_the_fallback(turn: Parse) -> None:
    found = candidates(turn)
    assert kinds(found) == {"fallback"} and len(found) >= 2
    assert all(c.action.startswith("fallback/") and c.intent is None for c in found)


def test_the_dialog_gives_up_after_asking_the_same_question_too_often() -> None:
    state = SessionState()
    for _ in range(2):
        found = candidates(parse("play", "HassMediaSearchAndPlay"), state)
        assert kinds(found) == {"elicit"}
        state = found[0].next_state
    assert state.attempts == 2
    assert kinds(candidates(parse("play", "HassMediaSearchAndPlay"), state)) == {"fallback"}
    assert kinds(candidates(parse("play", "HassMediaSearchAndPlay"), state, max_attempts=3)) == {
        "elicit"
    }


def test_every_candidate_action_is_in_the_catalog_action_ids() -> None:
    ids = set(default_catalog().action_ids())
    turns = [
        parse("turn on the lamp", "HassTurnOn", 0.2, name="lamp"),
        parse("play", "HassMediaSearchAndPlay"),
        parse("blah", None, 0.0),
        parse("weather in paris", "weather_query", place_name="paris"),
    ]
    for turn in turns:
        for candidate in candidates(
            turn, results={"temperature": "3", "condition": "x", "forecast": "y"}
        ):
            assert candidate.action in ids


def test_every_packaged_intent_always_has_a_candidate() -> None:
    catalog = default_catalog()
    for intent in catalog.intents:
        for confidence in (0.01, 0.99):
            assert candidates(parse("x", intent, confidence)), intent


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(DataError, match="Parse"):
        candidates("turn on the lamp")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_attempts"):
        candidates(parse("x", None), max_attempts=0)
