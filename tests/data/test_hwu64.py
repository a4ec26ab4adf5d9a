"""HWU64 fold CSVs: ';'-separated, slots inline in answer_annotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxloop.data.hwu64 import read_hwu64
from voxloop.errors import DataError
from voxloop.schema import Span

HEADER = "answerid;scenario;intent;answer_annotation;answer_from_anno;answer_from_user\n"


def write_fold(root: Path, train_rows: str, test_rows: str = "", header: str = HEADER) -> Path:
    (root / "kfold1_train.csv").write_text(header + train_rows, encoding="utf-8")
    (root / "kfold1_test.csv").write_text(header + test_rows, encoding="utf-8")
    return root / "kfold1_train.csv"


def test_hwu64_reads_fold_1_whole_with_exact_spans(datasets: Path) -> None:
    corpus = read_hwu64(datasets / "hwu64")
    assert {name: len(rows) for name, rows in corpus.splits.items()} == {
        "train": 9_960,
        "test": 1_076,
    }
    everything = [u for rows in corpus.splits.values() for u in rows]
    assert len({u.intent for u in everything}) == 64
    assert len({u.domain for u in everything}) == 18
    assert sum(len(u.slots) for u in everything) == 9_133
    for u in everything:
        assert u.intent is not None and u.domain is not None
        assert u.intent.startswith(u.domain + "_")
        for s in u.slots:
            assert u.text[s.start : s.end] == s.value


def test_hwu64_labels_scenario_intent_with_the_scenario_as_domain(datasets: Path) -> None:
    u = read_hwu64(datasets / "hwu64").split("train")[1]  # line 3 of kfold1_train.csv
    assert u.text == "checkout today alarm of meeting"
    assert (u.intent, u.domain, u.id) == ("alarm_query", "alarm", "7194")
    assert u.slots == (Span(9, 14, "date", "today"),)


def test_hwu64_keeps_repeated_answer_ids_and_turns_null_into_none(datasets: Path) -> None:
    train = read_hwu64(datasets / "hwu64").split("train")
    ids = [u.id for u in train]
    assert ids.count(None) == 38
    assert ids.count("562") == 4


def test_hwu64_reads_a_small_fold(tmp_path: Path) -> None:
    write_fold(
        tmp_path,
        '1;alarm;set;"wake me at [time : five am]";"wake me at five am";"Wake me at 5am."\n',
        "null;general;quirky;you rock;you rock;null\n",
    )
    corpus = read_hwu64(tmp_path)
    (u,) = corpus.split("train")
    assert (u.text, u.intent, u.domain, u.id) == ("wake me at five am", "alarm_set", "alarm", "1")
    assert u.slots == (Span(11, 18, "time", "five am"),)
    assert corpus.split("test")[0].id is None


def test_hwu64_rejects_a_malformed_annotation_naming_file_line_and_field(tmp_path: Path) -> None:
    train = write_fold(tmp_path, "1;alarm;set;hi;hi;hi\n2;alarm;set;wake [time five];wake five;x\n")
    with pytest.raises(DataError) as caught:
        read_hwu64(tmp_path)
    assert str(caught.value).startswith(
        f"{train}:3 [answer_annotation]: slot at column 6 has no ':'"
    )


def test_hwu64_rejects_answer_from_anno_that_disagrees_with_the_annotation(tmp_path: Path) -> None:
    train = write_fold(tmp_path, "1;alarm;set;wake me at [time : five];wake me at six;x\n")
    with pytest.raises(DataError) as caught:
        read_hwu64(tmp_path)
    assert str(caught.value).startswith(f"{train}:2 [answer_from_anno]: answer_from_anno 'wake me")


def test_hwu64_rejects_a_header_without_the_needed_columns(tmp_path: Path) -> None:
    train = write_fold(tmp_path, "1;alarm;hi\n", header="answerid;scenario;text\n")
    with pytest.raises(DataError) as caught:
        read_hwu64(tmp_path)
    assert str(caught.value).startswith(
        f"{train}:1: header lacks column(s) intent, answer_annotation"
    )


def test_hwu64_rejects_a_row_with_the_wrong_number_of_fields(tmp_path: Path) -> None:
    train = write_fold(tmp_path, "1;alarm;set;hi\n")
    with pytest.raises(DataError, match=f"{train}:2: 4 fields, expected 6"):
        read_hwu64(tmp_path)


def test_hwu64_counts_lines_of_quoted_fields_that_span_lines(tmp_path: Path) -> None:
    train = write_fold(tmp_path, '1;alarm;set;"two\nlines";two lines;x\n2;;set;hi;hi;x\n')
    with pytest.raises(DataError, match=f"{train}:4 \\[scenario\\]: empty scenario"):
        read_hwu64(tmp_path)


def test_hwu64_rejects_a_missing_fold_file(tmp_path: Path) -> None:
    write_fold(tmp_path, "1;alarm;set;hi;hi;hi\n")
    (tmp_path / "kfold1_test.csv").unlink()
    with pytest.raises(DataError, match="kfold1_test.csv: missing file"):
        read_hwu64(tmp_path)


def test_hwu64_lenient_read_lists_every_bad_row(tmp_path: Path) -> None:
    write_fold(
        tmp_path, "1;a;b;ok;ok;x\n2;a;b;[x : ;;x\n3;a;b;fine;fine;x\n4;a;b\n", "5;a;b;]; ;x\n"
    )
    corpus = read_hwu64(tmp_path, strict=False)
    assert [u.id for u in corpus.split("train")] == ["1", "3"]
    assert corpus.split("test") == []
    assert [(Path(str(p.file)).name, p.line) for p in corpus.problems] == [
        ("kfold1_train.csv", 3),
        ("kfold1_train.csv", 5),
        ("kfold1_test.csv", 2),
    ]
