"""SLURP text annotations (JSON lines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from voxloop.data.slurp import read_slurp
from voxloop.errors import DataError
from voxloop.schema import Span


def row(**fields: Any) -> str:
    base: dict[str, Any] = {
        "slurp_id": 1,
        "sentence": "wake me at five am",
        "sentence_annotation": "wake me at [time : five am]",
        "intent": "alarm_set",
        "scenario": "alarm",
        "action": "set",
        "tokens": [],
        "recordings": [],
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


@pytest.fixture(scope="module")
def real(datasets: Path) -> Any:
    return read_slurp(datasets / "slurp")


def test_slurp_reads_devel_and_test_whole_with_exact_spans(real: Any) -> None:
    assert {name: len(rows) for name, rows in real.splits.items()} == {"dev": 2_033, "test": 2_974}
    everything = [u for rows in real.splits.values() for u in rows]
    assert len({u.intent for u in everything}) == 60
    assert len({u.domain for u in everything}) == 18
    assert len({u.id for u in everything}) == 5_007
    for u in everything:
        for s in u.slots:
            assert u.text[s.start : s.end] == s.value


def test_slurp_intent_is_scenario_action_even_where_the_intent_field_is_only_the_action(
    real: Any,
) -> None:
    u = real.split("dev")[26]  # devel.jsonl line 27: "intent": "music"
    assert (u.id, u.text, u.intent, u.domain) == ("2993", "play next song", "play_music", "play")


def test_slurp_text_is_the_lowercase_sentence_when_only_case_differs(real: Any) -> None:
    u = real.split("dev")[329]  # devel.jsonl line 330: "... for [date : Wednesday]"
    assert u.text == "turn off the six am alarm for wednesday"
    assert Span(30, 39, "date", "wednesday") in u.slots


def test_slurp_text_is_the_annotations_when_the_words_differ(real: Any) -> None:
    u = real.split("dev")[1867]  # devel.jsonl line 1868: sentence says "rihanna"
    assert u.text == "tell me about rihana"
    assert u.slots == (Span(14, 20, "artist_name", "rihana"),)


def test_slurp_reads_train_when_present(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text(row() + "\n", encoding="utf-8")
    (u,) = read_slurp(tmp_path).split("train")
    assert (u.text, u.intent, u.domain, u.id) == ("wake me at five am", "alarm_set", "alarm", "1")
    assert u.slots == (Span(11, 18, "time", "five am"),)


def test_slurp_falls_back_to_the_intent_field_without_scenario_and_action(tmp_path: Path) -> None:
    (tmp_path / "test.jsonl").write_text(row(scenario=..., action=...) + "\n", encoding="utf-8")
    u = read_slurp(tmp_path).split("test")[0]
    assert (u.intent, u.domain) == ("alarm_set", None)


def test_slurp_rejects_a_folder_without_slurp_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no SLURP files"):
        read_slurp(tmp_path)


def test_slurp_rejects_a_malformed_annotation_naming_file_line_and_field(tmp_path: Path) -> None:
    file = tmp_path / "devel.jsonl"
    file.write_text(row() + "\n" + row(sentence_annotation="wake me at [time : five am") + "\n")
    with pytest.raises(DataError) as caught:
        read_slurp(tmp_path)
    assert str(caught.value).startswith(f"{file}:2 [sentence_annotation]: '[' at column 12")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        (
            row(sentence_annotation=...),
            "[sentence_annotation]: missing field 'sentence_annotation'",
        ),
        (
            row(sentence_annotation=3),
            "[sentence_annotation]: 'sentence_annotation' must be a string",
        ),
        (
            row(sentence_annotation=" ", sentence=" "),
            "[sentence_annotation]: 'sentence_annotation' is empty",
        ),
        (row(scenario=..., intent=...), "[intent]: missing field 'intent'"),
        (row(slurp_id=[1]), "[slurp_id]: 'slurp_id' must be an integer or string"),
    ],
)
def test_slurp_rejects_a_bad_row_naming_the_line(tmp_path: Path, line: str, problem: str) -> None:
    file = tmp_path / "test.jsonl"
    file.write_text(row() + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_slurp(tmp_path)
    assert str(caught.value).startswith(f"{file}:3")
    assert problem in str(caught.value)


def test_slurp_lenient_read_lists_every_bad_row(tmp_path: Path) -> None:
    lines = [row(), "{", row(sentence_annotation="[x]"), row(slurp_id=4)]
    (tmp_path / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    corpus = read_slurp(tmp_path, strict=False)
    assert [u.id for u in corpus.split("test")] == ["1", "4"]
    assert [p.line for p in corpus.problems] == [2, 3]
