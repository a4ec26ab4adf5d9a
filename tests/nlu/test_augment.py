"""Slot-value substitution keeps each utterance's frame and gives exact new spans."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxloop.data import load_corpus
from voxloop.errors import ConfigError
from voxloop.nlu.augment import substitute_slot_values
from voxloop.schema import Span, Utterance


def _utterance(text: str, intent: str, *slots: tuple[str, str], locale: str = "en-US") -> Utterance:
    spans = []
    for value, label in slots:
        start = text.index(value)
        spans.append(Span(start, start + len(value), label, value))
    return Utterance(text, intent, tuple(spans), locale=locale)


def test_copies_keep_the_frame_and_give_exact_spans(datasets: Path) -> None:
    train = load_corpus(f"snips:{datasets / 'snips'}").split("train")[:2000]
    copies = substitute_slot_values(train, copies=2, seed=3)
    with_slots = [u for u in train if u.slots]
    assert len(copies) == 2 * len(with_slots)
    values: dict[str, set[str]] = {}
    for u in train:
        for s in u.slots:
            values.setdefault(s.label, set()).add(s.value)
    changed = 0
    for original, copy in zip(with_slots * 2, copies, strict=True):
        first, last = min(s.start for s in original.slots), max(s.end for s in original.slots)
        assert copy.intent == original.intent and copy.locale == original.locale
        assert [s.label for s in copy.slots] == [s.label for s in original.slots]
        for span in copy.slots:
            assert copy.text[span.start : span.end] == span.value
            assert span.value in values[span.label]
        # The words outside the slots are the original's, in order.
        outside = [copy.text[: copy.slots[0].start], copy.text[copy.slots[-1].end :]]
        assert outside == [original.text[:first], original.text[last:]]
        changed += any(a.value != b.value for a, b in zip(copy.slots, original.slots, strict=True))
    assert changed == len(copies)  # every label here has more than one value
    assert substitute_slot_values(train, copies=2, seed=3) == copies  # seeded


def test_values_stay_within_their_locale() -> None:
    train = [
        _utterance("play jazz", "play", ("jazz", "genre")),
        _utterance("play rock", "play", ("rock", "genre")),
        _utterance("spiele schlager", "play", ("schlager", "genre"), locale="de-DE"),
    ]
    copies = substitute_slot_values(train, copies=5)
    english = {u.text for u in copies if u.locale == "en-US"}
    assert english == {"play jazz", "play rock"}
    # The only German value: kept, since there is no other.
    assert {u.text for u in copies if u.locale == "de-DE"} == {"spiele schlager"}


def test_utterances_without_slots_are_not_copied_and_a_negative_count_is_refused() -> None:
    train = [Utterance("hello", "greet"), _utterance("play jazz", "play", ("jazz", "genre"))]
    assert [u.text for u in substitute_slot_values(train)] == ["play jazz"]
    assert substitute_slot_values(train, copies=0) == []
    with pytest.raises(ConfigError, match="substitute_slots: must be 0 or more, not -1"):
        substitute_slot_values(train, copies=-1)
