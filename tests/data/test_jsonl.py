"""voxloop's own JSON lines: what users write their data in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxloop.data.jsonl import read_jsonl, write_jsonl
from voxloop.errors import DataError
from voxloop.schema import Span, Utterance


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_jsonl_reads_a_row_with_only_text_into_split_all_with_defaults(tmp_path: Path) -> None:
    corpus = read_jsonl(write_lines(tmp_path / "u.jsonl", '{"text": "hello"}'))
    assert corpus.splits == {"all": [Utterance(text="hello")]}
    assert corpus.split("all")[0].locale == "en-US"


def test_jsonl_reads_every_field_and_sorts_slots(tmp_path: Path) -> None:
    row = {
        "text": "wake me at five tomorrow",
        "intent": "alarm_set",
        "domain": "alarm",
        "locale": "en-GB",
        "id": "a1",
        "split": "train",
        "slots": [
            {"start": 16, "end": 24, "label": "date"},
            {"start": 11, "end": 15, "label": "time", "value": "five"},
        ],
    }
    corpus = read_jsonl(write_lines(tmp_path / "u.jsonl", json.dumps(row), "", "  "))
    assert corpus.splits == {
        "train": [
            Utterance(
                text="wake me at five tomorrow",
                intent="alarm_set",
                slots=(Span(11, 15, "time", "five"), Span(16, 24, "date", "tomorrow")),
                domain="alarm",
                locale="en-GB",
                id="a1",
            )
        ]
    }


def test_jsonl_round_trips_real_massive_rows(datasets: Path, tmp_path: Path) -> None:
    from voxloop.data.massive import read_massive

    rows = list(read_massive(datasets / "massive" / "ja-JP.jsonl").split("dev"))
    write_jsonl(rows, tmp_path / "ja.jsonl", split="dev")
    assert read_jsonl(tmp_path / "ja.jsonl").splits == {"dev": rows}


_text = st.text(min_size=1, max_size=30).filter(lambda t: t.strip() != "")
_name = st.none() | st.text(min_size=1, max_size=10)


@st.composite
def _utterances(draw: st.DrawFn) -> Utterance:
    text = draw(_text)
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=6)))
    pairs = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if a < b]
    labels = draw(
        st.lists(
            st.text(min_size=1, max_size=8).filter(str.strip),
            min_size=len(pairs),
            max_size=len(pairs),
        )
    )
    spans = tuple(Span(a, b, lab, text[a:b]) for (a, b), lab in zip(pairs, labels, strict=True))
    locale = draw(st.sampled_from(["en-US", "ja-JP", "pl-PL"]))
    return Utterance(
        text=text,
        intent=draw(_name),
        slots=spans,
        domain=draw(_name),
        locale=locale,
        id=draw(_name),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(_utterances(), max_size=5))
def test_jsonl_read_of_write_gives_back_the_utterances(utterances: list[Utterance]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "u.jsonl"
        assert write_jsonl(utterances, path) == len(utterances)
        assert read_jsonl(path).splits == ({"all": utterances} if utterances else {})


BAD_ROWS = [
    ('{"text": "hi"', "not valid JSON"),
    ('["hi"]', "expected a JSON object, got list"),
    ('{"text": "hi", "intnet": "greet"}', "[intnet]: unknown key 'intnet'"),
    ('{"text": "hi", "text": "ho"}', "duplicate key 'text'"),
    ('{"intent": "greet"}', "[text]: missing 'text'"),
    ('{"text": 5}', "[text]: 'text' must be a string, got int"),
    ('{"text": ""}', "[text]: empty text"),
    ('{"text": " \\t "}', "[text]: empty text"),
    ('{"text": "hi", "intent": 3}', "[intent]: 'intent' must be a string or null, got int"),
    ('{"text": "hi", "locale": null}', "[locale]: 'locale' must be a non-empty string"),
    ('{"text": "hi", "locale": "xx_garbage!!"}', "must be a language tag like en-US, got"),
    ('{"text": "hi", "split": ""}', "[split]: 'split' must be a non-empty string"),
    ('{"text": "hi", "slots": {}}', "[slots]: 'slots' must be a list, got dict"),
    ('{"text": "hi", "slots": [3]}', "[slots[0]]: slots[0] must be an object"),
    ('{"text": "hi", "slots": [{"start": 0, "end": 1}]}', "slots[0] lacks 'label'"),
    (
        '{"text": "hi", "slots": [{"start": 0, "end": 1, "label": "x", "lable": "y"}]}',
        "[slots[0].lable]: unknown key 'lable' in slots[0]",
    ),
    (
        '{"text": "hi", "slots": [{"start": "0", "end": 1, "label": "x"}]}',
        "slots[0].start must be an integer, got str",
    ),
    (
        '{"text": "hi", "slots": [{"start": 0, "end": true, "label": "x"}]}',
        "slots[0].end must be an integer, got bool",
    ),
    (
        '{"text": "hi", "slots": [{"start": 0, "end": 1, "label": ""}]}',
        "slots[0].label must be a non-empty string",
    ),
    (
        '{"text": "hi", "slots": [{"start": 1, "end": 3, "label": "x"}]}',
        "slots[0] [1, 3) is not a non-empty range inside the text (length 2)",
    ),
    (
        '{"text": "hi", "slots": [{"start": 1, "end": 1, "label": "x"}]}',
        "slots[0] [1, 1) is not a non-empty range",
    ),
    (
        '{"text": "hi", "slots": [{"start": -1, "end": 1, "label": "x"}]}',
        "slots[0] [-1, 1) is not a non-empty range",
    ),
    (
        '{"text": "hi you", "slots": [{"start": 0, "end": 4, "label": "a"}, '
        '{"start": 3, "end": 6, "label": "b"}]}',
        "[slots]: slots overlap: a [0, 4) and b [3, 6)",
    ),
    (
        '{"text": "hi you", "slots": [{"start": 3, "end": 6, "label": "x", "value": "me"}]}',
        "[slots[0].value]: slots[0].value 'me' is not the text at [3, 6): 'you'",
    ),
]


@pytest.mark.parametrize(("line", "problem"), BAD_ROWS)
def test_jsonl_rejects_a_bad_row_naming_file_and_line(
    tmp_path: Path, line: str, problem: str
) -> None:
    file = write_lines(tmp_path / "u.jsonl", '{"text": "fine"}', line)
    with pytest.raises(DataError) as caught:
        read_jsonl(file)
    assert str(caught.value).startswith(f"{file}:2")
    assert problem in str(caught.value)


def test_jsonl_lenient_read_lists_every_bad_row(tmp_path: Path) -> None:
    lines = ['{"text": "one"}', *(line for line, _ in BAD_ROWS), '{"text": "two"}']
    corpus = read_jsonl(write_lines(tmp_path / "u.jsonl", *lines), strict=False)
    assert [u.text for u in corpus.split("all")] == ["one", "two"]
    assert [p.line for p in corpus.problems] == list(range(2, len(BAD_ROWS) + 2))


def test_jsonl_rejects_a_missing_file_and_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.jsonl: JSON-lines path does not exist"):
        read_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="expected a .jsonl file, got a directory"):
        read_jsonl(tmp_path)


def test_jsonl_rejects_a_file_that_is_not_utf8_naming_the_line(tmp_path: Path) -> None:
    file = tmp_path / "u.jsonl"
    file.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=f"{file}:2: not UTF-8 text"):
        read_jsonl(file)
