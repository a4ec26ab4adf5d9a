"""The turn log writer: what reaches disk, when, and in what shape."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from voxloop.errors import DataError
from voxloop.log.writer import (
    FEEDBACK_SCHEMA,
    SCHEMA_VERSION,
    TURN_SCHEMA,
    LogWriter,
    read_log,
)
from voxloop.schema import Feedback, IntentScore, Parse, Span, Turn

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def turn(i: int = 0, *, when: datetime = NOON, text: str = "turn on the kitchen light") -> Turn:
    recognized = i % 2 == 0
    return Turn(
        turn_id=f"t{i}",
        timestamp=when,
        text=text,
        parse=Parse(
            text=text,
            intent="HassTurnOn" if recognized else None,
            confidence=0.9 if recognized else 0.1,
            ranking=(IntentScore("HassTurnOn", 0.9), IntentScore("HassTurnOff", 0.05)),
            slots=(Span(12, 19, "area", "kitchen", 0.99),),
            domain="devices",
        ),
        model_version="v1",
        user_id="u1",
        latency_ms=3.5,
        parse_ms=1.25,
    )


def parts(directory: Path, table: str = "turns") -> list[Path]:
    return sorted((directory / table).glob("date=*/part-*.parquet"))


def test_turns_round_trip_as_flat_typed_columns(tmp_path: Path) -> None:
    with LogWriter(tmp_path) as writer:
        writer.append_turns([turn(0), turn(1)])
    (file,) = parts(tmp_path)
    assert file.parent.name == "date=2026-11-25"
    table = pq.read_table(file)
    assert table.schema.equals(TURN_SCHEMA, check_metadata=False)
    rows = table.to_pylist()
    assert [r["turn_id"] for r in rows] == ["t0", "t1"]
    assert rows[0]["intent"] == "HassTurnOn" and rows[1]["intent"] is None
    assert rows[1]["top_intent"] == "HassTurnOn"  # the guess survives a not-recognized turn
    assert rows[0]["ts"] == NOON
    assert rows[0]["slots"] == [
        {"start": 12, "end": 19, "label": "area", "value": "kitchen", "confidence": 0.99}
    ]
    assert rows[0]["ranking"][0] == {"intent": "HassTurnOn", "confidence": 0.9}
    assert rows[0]["channel"] == "http" and rows[0]["latency_ms"] == 3.5


def test_every_file_carries_its_schema_version(tmp_path: Path) -> None:
    with LogWriter(tmp_path) as writer:
        writer.append_turn(turn())
        writer.append_feedback(Feedback("t0", NOON, "rating", 4.0))
    for file in parts(tmp_path) + parts(tmp_path, "feedback"):
        metadata = pq.read_schema(file).metadata
        assert metadata[b"voxloop.schema_version"] == str(SCHEMA_VERSION).encode()
        assert set(pq.read_table(file, columns=["schema_version"]).column(0).to_pylist()) == {
            SCHEMA_VERSION
        }


def test_feedback_is_its_own_table(tmp_path: Path) -> None:
    with LogWriter(tmp_path) as writer:
        writer.append_feedback(Feedback("t0", NOON, "barge_in", 1.0, user_id="u1"))
    table = read_log(tmp_path, "feedback")
    assert table.schema.equals(FEEDBACK_SCHEMA, check_metadata=False)
    assert table.to_pylist() == [
        {
            "schema_version": 1,
            "turn_id": "t0",
            "ts": NOON,
            "kind": "barge_in",
            "value": 1.0,
            "user_id": "u1",
        }
    ]
    assert read_log(tmp_path, "turns").num_rows == 0


def test_partitions_by_utc_day(tmp_path: Path) -> None:
    # 23:30 in New York on the 25th is the 26th in UTC.
    new_york = timezone(timedelta(hours=-5))
    with LogWriter(tmp_path) as writer:
        writer.append_turn(turn(0, when=NOON))
        writer.append_turn(turn(1, when=datetime(2026, 11, 25, 23, 30, tzinfo=new_york)))
    assert [p.parent.name for p in parts(tmp_path)] == ["date=2026-11-25", "date=2026-11-26"]


def test_flushes_when_the_buffer_is_full(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, flush_rows=3, clock=FakeClock())
    writer.append_turns([turn(0), turn(1)])
    assert parts(tmp_path) == [] and writer.buffered == 2
    writer.append_turn(turn(2))
    assert read_log(tmp_path).num_rows == 3 and writer.buffered == 0


def test_flushes_by_time_on_the_clock_it_is_given(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = LogWriter(tmp_path, flush_interval=2.0, clock=clock)
    assert writer.due_in() is None
    writer.append_turn(turn(0))
    clock.now += 0.9
    writer.append_turn(turn(1))
    assert writer.flush_if_due() == 0 and parts(tmp_path) == []
    clock.now += 0.1  # the oldest row has waited half the interval: write now
    assert writer.flush_if_due() == 2
    assert read_log(tmp_path).num_rows == 2


def test_background_thread_gets_rows_to_disk_within_the_interval(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, flush_interval=0.3).start()
    try:
        writer.append_turn(turn(0))
        appended = time.monotonic()
        while not parts(tmp_path) and time.monotonic() - appended < 2:
            time.sleep(0.01)
        assert time.monotonic() - appended < 0.3
        assert read_log(tmp_path).num_rows == 1
    finally:
        writer.close()


def test_close_writes_what_is_buffered_and_refuses_more(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, flush_interval=3600).start()
    writer.append_turns([turn(i) for i in range(5)])
    assert writer.close() == 5
    assert read_log(tmp_path).num_rows == 5
    with pytest.raises(RuntimeError, match="closed"):
        writer.append_turn(turn(6))


def test_a_failed_write_keeps_the_rows_for_the_next_flush(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, clock=FakeClock())
    writer.append_turns([turn(0), turn(1)])
    blocker = tmp_path / "turns"
    blocker.write_text("not a directory")  # the partition folder cannot be made
    with pytest.raises(OSError):
        writer.flush()
    assert writer.buffered == 2
    blocker.unlink()
    assert writer.flush() == 2
    assert read_log(tmp_path).column("turn_id").to_pylist() == ["t0", "t1"]


def test_turns_that_cannot_be_written_do_not_hold_back_the_feedback(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, clock=FakeClock())
    writer.append_turns([turn(0), turn(1)])
    writer.append_feedback(Feedback("t0", NOON, "barge_in"))
    (tmp_path / "turns").write_text("not a directory")
    with pytest.raises(OSError):
        writer.flush()
    assert writer.failing is not None and "NotADirectoryError" in writer.failing
    assert read_log(tmp_path, "feedback").num_rows == 1  # written all the same
    assert writer.buffered == 2  # the turns wait for the next flush
    (tmp_path / "turns").unlink()
    assert writer.flush() == 2 and writer.failing is None


def test_close_saves_rows_it_cannot_write_to_a_rescue_directory(tmp_path: Path) -> None:
    log = tmp_path / "log"
    writer = LogWriter(log, clock=FakeClock())
    writer.append_turns([turn(0), turn(1, when=NOON + timedelta(days=1))])
    writer.append_feedback(Feedback("t0", NOON, "rating", 0.0))
    (log / "turns").write_text("not a directory")
    with pytest.raises(DataError, match=r"2 buffered rows saved to .*log\.rescued-") as caught:
        writer.close(pause=0)
    rescue = Path(str(caught.value).split("saved to ")[1].split(": copy")[0])
    assert rescue.parent == tmp_path
    # the rescue has the log's layout: read as a log, it holds every row
    assert sorted(read_log(rescue).column("turn_id").to_pylist()) == ["t0", "t1"]
    assert not (rescue / "feedback").exists()  # the feedback reached the log itself
    assert read_log(log, "feedback").num_rows == 1
    assert writer.rows_rescued == 2 and writer.rows_written == 1


def test_a_row_that_cannot_be_stored_does_not_block_the_others(tmp_path: Path) -> None:
    with LogWriter(tmp_path) as writer:
        writer.append_turns([turn(0), turn(1, text="bad \ud800 text"), turn(2)])
    assert read_log(tmp_path).column("turn_id").to_pylist() == ["t0", "t2"]
    assert writer.rows_dropped == 1


def test_files_appear_whole_and_leftover_temp_files_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "turns" / "date=2026-11-25"
    folder.mkdir(parents=True)
    leftover = folder / ".part-dead.parquet.tmp"
    leftover.write_bytes(b"half a file")
    with LogWriter(tmp_path) as writer:
        writer.append_turn(turn())
    assert not leftover.exists()
    assert [p.name.startswith("part-") for p in folder.iterdir()] == [True]


def test_naive_timestamps_are_refused(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    with pytest.raises(ValueError, match="timezone"):
        writer.append_turn(turn(when=datetime(2026, 11, 25, 12, 0)))


def test_a_log_directory_that_is_a_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text("not a folder\n", encoding="utf-8")
    with pytest.raises(DataError, match="is not a directory") as e:
        LogWriter(path)
    assert str(path) in str(e.value)
    assert path.read_text(encoding="utf-8") == "not a folder\n"
    with pytest.raises(DataError, match="cannot be created") as e:
        LogWriter(path / "below")
    assert str(path / "below") in str(e.value)


class Upper:
    """A ``prepare_turns`` that upper-cases the text, refuses "drop me" turns, records its
    batches, and fails while ``broken`` is set."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.broken = False

    def __call__(self, turns: list[Turn]) -> list[Turn]:
        self.batches.append([t.turn_id for t in turns])
        if self.broken:
            raise RuntimeError("boom")
        return [replace(t, text=t.text.upper()) for t in turns if t.text != "drop me"]


def test_turns_are_prepared_in_one_batch_at_flush_time(tmp_path: Path) -> None:
    prepare = Upper()
    writer = LogWriter(tmp_path, clock=FakeClock(), prepare_turns=prepare)
    writer.append_turns([turn(0), turn(1, text="drop me")])
    writer.append_turn(turn(2))
    assert prepare.batches == [] and writer.buffered == 3  # nothing prepared on append
    assert writer.flush() == 2
    assert prepare.batches == [["t0", "t1", "t2"]]
    assert read_log(tmp_path).column("text").to_pylist() == ["TURN ON THE KITCHEN LIGHT"] * 2
    assert writer.turns_refused == 1


def test_a_failing_preparation_writes_none_of_its_batch(tmp_path: Path) -> None:
    prepare = Upper()
    writer = LogWriter(tmp_path, clock=FakeClock(), prepare_turns=prepare)
    writer.append_turns([turn(0), turn(1)])
    prepare.broken = True
    assert writer.flush() == 0 and writer.turns_refused == 2 and writer.buffered == 0
    prepare.broken = False
    writer.append_turn(turn(2))
    assert writer.flush() == 1
    assert read_log(tmp_path).column("turn_id").to_pylist() == ["t2"]


def test_prepared_rows_are_kept_not_prepared_again_after_a_failed_write(tmp_path: Path) -> None:
    prepare = Upper()
    writer = LogWriter(tmp_path, clock=FakeClock(), prepare_turns=prepare)
    writer.append_turns([turn(0), turn(1)])
    blocker = tmp_path / "turns"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        writer.flush()
    blocker.unlink()
    assert writer.buffered == 2 and writer.flush() == 2
    assert prepare.batches == [["t0", "t1"]]
    assert read_log(tmp_path).column("text").to_pylist() == ["TURN ON THE KITCHEN LIGHT"] * 2


def test_naive_timestamps_are_refused_on_append_with_a_preparation_too(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, prepare_turns=Upper())
    with pytest.raises(ValueError, match="timezone"):
        writer.append_turn(turn(when=datetime(2026, 11, 25, 12, 0)))


def test_a_writer_behind_on_preparing_says_it_is_backlogged(tmp_path: Path) -> None:
    import threading

    release = threading.Event()

    def slow(turns: list[Turn]) -> list[Turn]:
        release.wait(10)
        return turns

    writer = LogWriter(tmp_path, clock=FakeClock(), flush_rows=5, max_buffered=5,
                       prepare_turns=slow)  # fmt: skip
    writer.append_turns([turn(i) for i in range(4)])
    assert not writer.backlogged
    flushing = threading.Thread(target=writer.flush)
    flushing.start()  # the four turns are taken and prepared, slowly
    while writer.buffered:
        time.sleep(0.01)
    writer.append_turns([turn(4), turn(5)])
    assert writer.backlogged  # 4 in flight + 2 buffered > 5
    release.set()
    flushing.join()
    assert not writer.backlogged and writer.flush() == 2
    assert read_log(tmp_path).num_rows == 6
