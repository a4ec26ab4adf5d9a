"""The inline [type : value] annotation: parsing, its inverse, and carrying spans over."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxloop.data.annotation import format_annotation, parse_annotation, reconcile
from voxloop.errors import DataError
from voxloop.schema import Span


def test_parse_returns_text_and_character_spans() -> None:
    text, spans = parse_annotation("wake me up at [time : five am] [date : this week]")
    assert text == "wake me up at five am this week"
    assert spans == (Span(14, 21, "time", "five am"), Span(22, 31, "date", "this week"))
    assert all(text[s.start : s.end] == s.value for s in spans)


def test_parse_of_text_without_slots_is_the_text() -> None:
    assert parse_annotation("what time is it") == ("what time is it", ())


@pytest.mark.parametrize(
    "annotated",
    ["set [date:today]", "set [date :today]", "set [ date : today ]", "set [date  :  today ]"],
)
def test_parse_tolerates_any_spacing_around_the_colon(annotated: str) -> None:
    assert parse_annotation(annotated) == ("set today", (Span(4, 9, "date", "today"),))


def test_value_keeps_colons_after_the_first() -> None:
    text, spans = parse_annotation("wake me at [time : 10:30]")
    assert text == "wake me at 10:30"
    assert spans == (Span(11, 16, "time", "10:30"),)


@pytest.mark.parametrize(
    ("annotated", "problem"),
    [
        ("set [date : today", "'[' at column 5 is never closed"),
        ("set date : today]", "']' at column 17 closes no '['"),
        ("set [date : [time : today]]", "'[' at column 13 is nested"),
        ("set [today]", "slot at column 5 has no ':'"),
        ("set [ : today]", "slot at column 5 has an empty type"),
        ("set [date : ]", "slot at column 5 has an empty value"),
        ("set [the date : today]", "has a type with spaces"),
    ],
)
def test_parse_rejects_malformed_annotation_naming_file_line_field_and_column(
    annotated: str, problem: str
) -> None:
    with pytest.raises(DataError) as caught:
        parse_annotation(annotated, file="corpus.jsonl", line=7, field="annot_utt")
    message = str(caught.value)
    assert message.startswith("corpus.jsonl:7 [annot_utt]: ")
    assert problem in message
    assert caught.value.line == 7 and caught.value.field == "annot_utt"


def test_reconcile_moves_spans_onto_text_without_the_annotations_spaces() -> None:
    # MASSIVE ja-JP: the annotation spaces the brackets, utt has no spaces.
    text, spans = parse_annotation("[date : 今週] は [time : 午前五時] に起こして")
    moved = reconcile(text, spans, "今週は午前五時に起こして")
    assert moved == (
        "今週は午前五時に起こして",
        (Span(0, 2, "date", "今週"), Span(3, 7, "time", "午前五時")),
    )


def test_reconcile_takes_values_from_the_plain_texts_case() -> None:
    text, spans = parse_annotation("is it [date : Friday]")
    assert reconcile(text, spans, "is it friday") == (
        "is it friday",
        (Span(6, 12, "date", "friday"),),
    )


def test_reconcile_gives_none_when_the_words_differ() -> None:
    text, spans = parse_annotation("tell me about [artist_name : rihana]")
    assert reconcile(text, spans, "tell me about rihanna") is None


_label = st.from_regex(r"[a-z_]{1,12}", fullmatch=True)
_word = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), blacklist_characters="[]"
    ),
    min_size=1,
    max_size=8,
)


@st.composite
def _annotated(draw: st.DrawFn) -> tuple[str, tuple[Span, ...]]:
    pieces = draw(st.lists(st.tuples(st.lists(_word, max_size=3), st.none() | _label), max_size=6))
    text, spans = "", []
    for words, label in pieces:
        chunk = " ".join(words)
        if label is not None and chunk:
            spans.append(Span(len(text), len(text) + len(chunk), label, chunk))
        text += chunk + " "
    return text, tuple(spans)


@given(_annotated())
def test_parse_inverts_format_for_any_annotated_text(example: tuple[str, tuple[Span, ...]]) -> None:
    text, spans = example
    assert parse_annotation(format_annotation(text, spans)) == (text, spans)
