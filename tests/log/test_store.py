"""Reading the turn log: one logical table over day partitions, schema evolution, errors."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from voxloop.errors import ConfigError, DataError
from voxloop.log.engines import QueryError
from voxloop.log.store import LogStore, open_log
from voxloop.log.writer import SCHEMA_VERSION, TURN_SCHEMA, LogWriter, turn_row
from voxloop.schema import Feedback, IntentScore, Parse, Turn

DAY1 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def make_turn(i: int, when: datetime, *, text: str = "turn on the light") -> Turn:
    return Turn(
        turn_id=f"t{i}",
        timestamp=when,
        text=text,
        parse=Parse(
            text,
            "HassTurnOn",
            0.9,
            (IntentScore("HassTurnOn", 0.9), IntentScore("HassTurnOff", 0.1)),
            (),
        ),  # fmt: skip
        model_version="v1",
        user_id="u1",
        latency_ms=4.0,
    )


def three_days(tmp_path: Path) -> Path:
    """Turns t0..t5 over 2026-11-24..26 (two a day); feedback on t0, and on t5 a day later."""
    with LogWriter(tmp_path) as w:
        for i in range(6):
            w.append_turn(make_turn(i, DAY1 + timedelta(hours=12 * i)))
        w.append_feedback(Feedback("t0", DAY1 + timedelta(seconds=20), "barge_in"))
        w.append_feedback(Feedback("t0", DAY1 + timedelta(seconds=30), "rating", 0.0))
        w.append_feedback(Feedback("t5", DAY1 + timedelta(days=3), "abandonment"))
    return tmp_path


def test_every_day_partition_reads_as_one_turns_table(tmp_path: Path) -> None:
    store = open_log(three_days(tmp_path))
    assert store.days() == [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)]
    rows = store.sql("SELECT turn_id, day FROM turns ORDER BY turn_id").to_pylist()
    assert [r["turn_id"] for r in rows] == [f"t{i}" for i in range(6)]
    assert rows[0]["day"] == date(2026, 11, 24) and rows[5]["day"] == date(2026, 11, 26)


def test_since_and_until_select_day_partitions_inclusively(tmp_path: Path) -> None:
    store = LogStore(three_days(tmp_path), since="2026-11-25", until=date(2026, 11, 25))
    ids = store.sql("SELECT turn_id FROM turns ORDER BY turn_id").column(0).to_pylist()
    assert ids == ["t2", "t3"]
    assert len(store.files("turns")) == 1


def test_turns_with_feedback_is_one_row_per_turn_with_late_feedback_joined(
    tmp_path: Path,
) -> None:
    # the abandonment of t5 (2026-11-26) arrives on 2026-11-27, past --until
    store = LogStore(three_days(tmp_path), until="2026-11-26")
    rows = {r["turn_id"]: r for r in store.sql("SELECT * FROM turns_with_feedback").to_pylist()}
    assert len(rows) == 6
    assert rows["t0"]["barge_in"] == 1 and rows["t0"]["negative_feedback"] == 1
    assert rows["t0"]["rating"] == 0.0 and rows["t0"]["feedback_events"] == 2
    assert rows["t5"]["abandoned"] == 1
    assert rows["t3"]["feedback_events"] == 0 and rows["t3"]["rating"] is None
    # the feedback table itself keeps to the range
    assert store.sql("SELECT COUNT(*) FROM feedback").column(0).to_pylist() == [2]


def test_a_new_column_in_new_files_does_not_break_old_queries(tmp_path: Path) -> None:
    three_days(tmp_path)
    row = turn_row(make_turn(9, datetime(2026, 11, 27, 8, tzinfo=UTC)))
    schema = TURN_SCHEMA.append(pa.field("asr_confidence", pa.float64()))
    table = pa.Table.from_pylist([{**row, "asr_confidence": 0.7}], schema=schema)
    folder = tmp_path / "turns" / "date=2026-11-27"
    folder.mkdir()
    pq.write_table(table, folder / "part-new.parquet")
    store = open_log(tmp_path)
    assert store.sql("SELECT COUNT(*) FROM turns").column(0).to_pylist() == [7]
    new = store.sql("SELECT turn_id, asr_confidence FROM turns WHERE asr_confidence IS NOT NULL")
    assert new.to_pylist() == [{"turn_id": "t9", "asr_confidence": 0.7}]
    # and a range of only old files still has the column, as NULL
    old = LogStore(tmp_path, until="2026-11-25")
    assert old.sql("SELECT COUNT(asr_confidence) FROM turns").column(0).to_pylist() == [0]


def test_a_column_no_file_has_yet_reads_as_null(tmp_path: Path) -> None:
    row = turn_row(make_turn(1, DAY1))
    schema = pa.schema(
        [f for f in TURN_SCHEMA if f.name not in ("channel", "ranking", "second_intent")]
    )
    folder = tmp_path / "turns" / "date=2026-11-24"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([row], schema=schema), folder / "part-old.parquet")
    rows = open_log(tmp_path).sql("SELECT channel, second_intent FROM turns").to_pylist()
    assert rows == [{"channel": None, "second_intent": None}]


def test_files_from_before_the_second_intent_column_read_it_from_the_ranking(
    tmp_path: Path,
) -> None:
    three_days(tmp_path)  # today's files: second_intent is a column
    older = TURN_SCHEMA.remove(TURN_SCHEMA.get_field_index("second_intent"))
    row = turn_row(make_turn(9, datetime(2026, 11, 23, 8, tzinfo=UTC)))
    del row["second_intent"]
    folder = tmp_path / "turns" / "date=2026-11-23"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist([row], schema=older), folder / "part-old.parquet")
    for store in (open_log(tmp_path), LogStore(tmp_path, until="2026-11-23")):
        got = store.sql("SELECT DISTINCT second_intent FROM turns").column(0).to_pylist()
        assert got == ["HassTurnOff"]


def test_an_empty_directory_is_a_data_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no turn log") as e:
        open_log(tmp_path)
    assert str(tmp_path) in str(e.value)
    with pytest.raises(DataError, match="no such log directory"):
        open_log(tmp_path / "missing")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"not parquet at all"), "not a Parquet file"),
        (lambda p: pq.write_table(pa.table({"x": [1]}), p), "not a turn log: no column turn_id"),
        (
            lambda p: pq.write_table(
                pa.table({"turn_id": ["a"]}).replace_schema_metadata({"voxloop.kind": "feedback"}),
                p,
            ),
            "a voxloop 'feedback' file among the turns",
        ),
        (
            lambda p: pq.write_table(
                pa.table({"turn_id": ["a"]}).replace_schema_metadata(
                    {"voxloop.kind": "turns", "voxloop.schema_version": str(SCHEMA_VERSION + 1)}
                ),
                p,
            ),
            "newer than this voxloop reads",
        ),
    ],
)
def test_a_file_that_is_not_a_turn_log_is_named(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    three_days(tmp_path)
    bad = tmp_path / "turns" / "date=2026-11-25" / "part-zzz.parquet"
    make(bad)
    with pytest.raises(DataError, match=message) as e:
        open_log(tmp_path)
    assert str(bad) in str(e.value)


@pytest.mark.parametrize("table", ["turns", "feedback"])
def test_a_copied_file_is_named_not_counted_twice(tmp_path: Path, table: str) -> None:
    log = three_days(tmp_path)
    original = sorted((log / table).glob("date=*/part-*.parquet"))[0]
    copy = original.with_name("part-copy.parquet")
    shutil.copyfile(original, copy)
    with pytest.raises(DataError, match="holds the same rows as .*remove one") as caught:
        open_log(log).sql("SELECT COUNT(*) FROM turns")
    assert {str(original), str(copy)} <= set(str(caught.value).replace(":", " ").split())
    copy.unlink()
    assert open_log(log).sql("SELECT COUNT(*) AS n FROM turns").column("n").to_pylist() == [6]


def test_a_bad_partition_folder_and_bad_days_are_reported(tmp_path: Path) -> None:
    three_days(tmp_path)
    with pytest.raises(ConfigError, match="since"):
        open_log(tmp_path, since="yesterday")
    with pytest.raises(ConfigError, match="after until"):
        open_log(tmp_path, since="2026-11-26", until="2026-11-24")
    (tmp_path / "turns" / "day=1").mkdir()
    with pytest.raises(DataError, match="day=1"):
        open_log(tmp_path)


def test_a_range_with_no_files_is_an_empty_table_not_an_error(tmp_path: Path) -> None:
    store = LogStore(three_days(tmp_path), since="2027-01-01")
    assert store.sql("SELECT COUNT(*) FROM turns_with_feedback").column(0).to_pylist() == [0]


def test_a_bad_query_is_a_query_error(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="no_such_column"):
        open_log(three_days(tmp_path)).sql("SELECT no_such_column FROM turns")


def _rewrite_column(path: Path, column: str, to: pa.DataType | None) -> None:
    """Rewrite one file of the log with ``column`` cast to ``to`` (None: without it)."""
    table = pq.read_table(path)
    i = table.schema.get_field_index(column)
    if to is None:
        table = table.remove_column(i)
    else:
        table = table.set_column(i, pa.field(column, to), table[column].cast(to))
    pq.write_table(table, path)


@pytest.mark.parametrize(
    "table, column, to, message",
    [
        ("turns", "confidence", pa.string(), "column confidence is string, expected double"),
        ("turns", "ts", pa.string(), "column ts is string, expected timestamp[us, tz=UTC]"),
        ("turns", "ts", pa.timestamp("ns", tz="UTC"),
         "column ts is timestamp[ns, tz=UTC], expected timestamp[us, tz=UTC]"),
        ("feedback", "value", pa.string(), "column value is string, expected double"),
    ],
    ids=["confidence", "ts", "ts-ns", "feedback-value"],
)  # fmt: skip
def test_a_column_of_the_wrong_type_is_named_with_the_expected_type(
    tmp_path: Path, table: str, column: str, to: pa.DataType, message: str
) -> None:
    three_days(tmp_path)
    bad = sorted((tmp_path / table).glob("date=*/part-*.parquet"))[-1]
    _rewrite_column(bad, column, to)
    with pytest.raises(DataError) as e:
        open_log(tmp_path)
    assert str(e.value) == f"{bad}: {message}"


def test_a_column_of_another_width_or_unit_still_reads(tmp_path: Path) -> None:
    three_days(tmp_path)
    path = sorted((tmp_path / "turns").glob("date=*/part-*.parquet"))[0]
    _rewrite_column(path, "latency_ms", pa.int64())
    _rewrite_column(path, "ts", pa.timestamp("ms", tz="UTC"))
    got = open_log(tmp_path).sql("SELECT SUM(latency_ms) AS s, COUNT(ts_us) AS n FROM turns")
    assert got.to_pylist() == [{"s": 24.0, "n": 6}]


def test_a_file_without_a_column_its_schema_version_has_is_named(tmp_path: Path) -> None:
    three_days(tmp_path)
    bad = sorted((tmp_path / "turns").glob("date=*/part-*.parquet"))[1]
    _rewrite_column(bad, "user_id", None)
    _rewrite_column(bad, "latency_ms", None)
    with pytest.raises(DataError) as e:  # not read as NULLs, which would change the KPIs
        open_log(tmp_path)
    assert str(e.value) == (
        f"{bad}: no column user_id, latency_ms, which its schema version {SCHEMA_VERSION} has"
    )
