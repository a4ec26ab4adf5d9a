"""MASSIVE official JSON lines: one file or a folder of locales."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from voxloop.data.massive import read_massive
from voxloop.errors import DataError
from voxloop.schema import Span

LOCALES = (
    "ar-SA de-DE en-US es-ES fr-FR hi-IN it-IT ja-JP ko-KR pl-PL ru-RU sw-KE tr-TR zh-CN".split()
)


def row(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "1",
        "locale": "en-US",
        "partition": "train",
        "scenario": "alarm",
        "intent": "alarm_set",
        "utt": "wake me up at five am this week",
        "annot_utt": "wake me up at [time : five am] [date : this week]",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def write(path: Path, *rows: dict[str, Any]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


@pytest.mark.parametrize("locale", LOCALES)
def test_massive_reads_every_real_locale_with_spans_exact_in_utt(
    datasets: Path, locale: str
) -> None:
    corpus = read_massive(datasets / "massive" / f"{locale}.jsonl")
    assert {name: len(rows) for name, rows in corpus.splits.items()} == {
        "train": 11_514,
        "dev": 2_033,
        "test": 2_974,
    }
    for rows in corpus.splits.values():
        for u in rows:
            assert u.locale == locale
            for s in u.slots:
                assert u.text[s.start : s.end] == s.value
                assert s.value == s.value.strip()


def test_massive_ja_jp_spans_sit_on_the_unspaced_utterance(datasets: Path) -> None:
    u = read_massive(datasets / "massive" / "ja-JP.jsonl").split("test")[0]  # id 0
    assert u.text == "今週は午前五時に起こして"
    assert u.slots == (Span(0, 2, "date", "今週"), Span(3, 7, "time", "午前五時"))


def test_massive_folder_with_a_locale_filter_reads_those_locales(datasets: Path) -> None:
    corpus = read_massive(datasets / "massive", locales=["de-DE", "sw-KE"])
    assert len(corpus.split("dev")) == 2 * 2_033
    assert {u.locale for u in corpus.split("dev")} == {"de-DE", "sw-KE"}


def test_massive_reads_a_row_with_the_official_extra_fields(tmp_path: Path) -> None:
    extra = {
        "worker_id": "8",
        "slot_method": [{"slot": "time", "method": "translation"}],
        "judgments": [{"worker_id": "27", "intent_score": 1}],
    }
    corpus = read_massive(write(tmp_path / "en-US.jsonl", row(**extra)))
    (u,) = corpus.split("train")
    assert (u.text, u.intent, u.domain, u.locale, u.id) == (
        "wake me up at five am this week",
        "alarm_set",
        "alarm",
        "en-US",
        "1",
    )
    assert u.slots == (Span(14, 21, "time", "five am"), Span(22, 31, "date", "this week"))


def test_massive_splits_follow_the_partition_field(tmp_path: Path) -> None:
    file = write(
        tmp_path / "x.jsonl",
        row(id="1", partition="test"),
        row(id="2", partition="train"),
        row(id="3", partition="dev"),
    )
    corpus = read_massive(file)
    assert list(corpus.splits) == ["train", "dev", "test"]
    assert [u.id for u in corpus.split("test")] == ["1"]


def test_massive_carries_spans_onto_an_utterance_without_spaces(tmp_path: Path) -> None:
    file = write(
        tmp_path / "zh-CN.jsonl",
        row(
            locale="zh-CN",
            utt="明天早上七点叫醒我",
            annot_utt="[date : 明天] [time : 早上七点] 叫醒我",
        ),
    )
    (u,) = read_massive(file).split("train")
    assert u.slots == (Span(0, 2, "date", "明天"), Span(2, 6, "time", "早上七点"))


def test_massive_folder_reads_every_locale_file(tmp_path: Path) -> None:
    write(tmp_path / "en-US.jsonl", row())
    write(tmp_path / "de-DE.jsonl", row(locale="de-DE", utt="hallo", annot_utt="hallo"))
    corpus = read_massive(tmp_path)
    assert sorted(u.locale for u in corpus.split("train")) == ["de-DE", "en-US"]
    assert [u.locale for u in read_massive(tmp_path, locales=["de-DE"]).split("train")] == ["de-DE"]


def test_massive_unknown_locale_lists_the_available_ones(tmp_path: Path) -> None:
    write(tmp_path / "en-US.jsonl", row())
    write(tmp_path / "de-DE.jsonl", row(locale="de-DE"))
    with pytest.raises(DataError, match=r"unknown locale\(s\) fr-FR \(available: de-DE, en-US\)"):
        read_massive(tmp_path, locales=["fr-FR"])


def test_massive_unknown_locale_in_one_multi_locale_file_lists_the_file_locales(
    tmp_path: Path,
) -> None:
    file = write(tmp_path / "all.jsonl", row(), row(locale="de-DE"))
    assert len(read_massive(file, locales=["de-DE"]).split("train")) == 1
    with pytest.raises(DataError, match=r"unknown locale\(s\) xx-XX \(available: de-DE, en-US\)"):
        read_massive(file, locales=["xx-XX"])


def test_massive_rejects_an_annotation_whose_words_differ_from_utt(tmp_path: Path) -> None:
    file = write(tmp_path / "en-US.jsonl", row(), row(utt="wake me up at six am this week"))
    with pytest.raises(DataError) as caught:
        read_massive(file)
    assert str(caught.value).startswith(f"{file}:2 [annot_utt]: annot_utt's text 'wake me up")


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (row(intent=...), "[intent]: missing field 'intent'"),
        (row(partition=None), "[partition]: null field 'partition'"),
        (row(partition="tset"), "[partition]: 'partition' must be train, dev or test, got 'tset'"),
        (row(utt=7), "[utt]: 'utt' must be a string, got int"),
        (row(utt="  ", annot_utt="  "), "[utt]: 'utt' is empty"),
        (row(annot_utt="wake me up at [time five am] this week"), "[annot_utt]: slot at column 15"),
    ],
)
def test_massive_rejects_a_bad_row_naming_file_line_and_field(
    tmp_path: Path, bad: dict[str, Any], problem: str
) -> None:
    file = write(tmp_path / "en-US.jsonl", row(), bad)
    with pytest.raises(DataError) as caught:
        read_massive(file)
    assert str(caught.value).startswith(f"{file}:2 ")
    assert problem in str(caught.value)


def test_massive_lenient_read_lists_every_bad_row(tmp_path: Path) -> None:
    file = write(
        tmp_path / "en-US.jsonl",
        row(id="1"),
        row(id="2", utt="x"),
        row(id="3"),
        row(id="4", scenario=...),
    )
    corpus = read_massive(file, strict=False)
    assert [u.id for u in corpus.split("train")] == ["1", "3"]
    assert [p.line for p in corpus.problems] == [2, 4]


def test_massive_rejects_a_missing_path_and_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.jsonl: corpus path does not exist"):
        read_massive(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="no \\*.jsonl files"):
        read_massive(tmp_path)
