"""The durable turn log: `Turn` and `Feedback` events appended to day-partitioned Parquet.

Layout under the log directory::

    turns/date=2026-11-25/part-<uuid>.parquet
    feedback/date=2026-11-25/part-<uuid>.parquet

Events are buffered in memory and written by a background thread once the oldest buffered
event has waited half of ``flush_interval`` (so it is on disk within ``flush_interval`` as
long as one flush takes less than the other half: it takes milliseconds), or at once when
``flush_rows`` events are buffered. Every file is written under a hidden temporary name,
fsynced, atomically renamed and its directory fsynced: a reader sees whole files or
nothing, and a hard crash loses at most the events still buffered.

With ``prepare_turns`` (the server passes its redactor), turns wait in the buffer as they were
answered and are prepared in batches on the flushing thread just before they become rows:
redaction then costs a request nothing, and a turn the preparation refuses, or a batch it
fails on, is never written (it is counted in ``turns_refused``). Unprepared turns live only in
memory, exactly as long as any buffered row. Preparing costs the writer's thread CPU (the
MiniLM detector about 1 ms per turn): when turns arrive faster than it can prepare them, the
buffer grows, and past ``max_buffered`` rows (default: 10,000, or twice ``flush_rows`` if
that is more) `backlogged` turns true — the server then refuses new requests (503) until the
writer catches up, rather than hold more turns that a crash would lose.

Each file carries its schema version twice: a ``schema_version`` column and the file
metadata key ``voxloop.schema_version``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from voxloop import __version__
from voxloop.errors import DataError
from voxloop.nlu.base import span_to_dict
from voxloop.schema import Feedback, Turn

__all__ = [
    "FEEDBACK_SCHEMA",
    "SCHEMA_VERSION",
    "TURN_SCHEMA",
    "LogWriter",
    "feedback_row",
    "read_log",
    "rescue_directories",
    "turn_row",
]

SCHEMA_VERSION = 1
_log = logging.getLogger(__name__)
_RESCUED = ".rescued-"  # a rescue directory is named LOG.rescued-<time>-<id>, beside LOG

_SLOT = pa.struct(
    [
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("label", pa.string()),
        ("value", pa.string()),
        ("confidence", pa.float64()),
    ]
)
_SCORE = pa.struct([("intent", pa.string()), ("confidence", pa.float64())])
_TS = pa.timestamp("us", tz="UTC")


def _schema(fields: Sequence[pa.Field], kind: str) -> pa.Schema:
    return pa.schema(
        fields,
        metadata={
            "voxloop.schema_version": str(SCHEMA_VERSION),
            "voxloop.kind": kind,
            "voxloop.produced_by": f"voxloop {__version__}",
        },
    )


TURN_SCHEMA = _schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("turn_id", pa.string(), nullable=False),
        pa.field("ts", _TS, nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("locale", pa.string()),
        pa.field("intent", pa.string()),  # null: not recognized
        pa.field("confidence", pa.float64()),
        pa.field("top_intent", pa.string()),  # the best guess, even when not recognized
        pa.field("ranking", pa.list_(_SCORE)),
        pa.field("second_intent", pa.string()),  # the runner-up of the ranking, flat
        pa.field("slots", pa.list_(_SLOT)),
        pa.field("domain", pa.string()),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("experiment", pa.string()),
        pa.field("arm", pa.string()),
        pa.field("action", pa.string()),
        pa.field("propensity", pa.float64()),
        pa.field("candidates", pa.list_(pa.string())),  # the actions a policy chose among
        pa.field("latency_ms", pa.float64()),
        pa.field("parse_ms", pa.float64()),
        pa.field("channel", pa.string()),
    ],
    "turns",
)

FEEDBACK_SCHEMA = _schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("turn_id", pa.string(), nullable=False),
        pa.field("ts", _TS, nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("user_id", pa.string()),
    ],
    "feedback",
)


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no timezone; log times are UTC")
    return ts.astimezone(UTC)


def turn_row(turn: Turn) -> dict[str, Any]:
    """One row of the turns table (the column names of `TURN_SCHEMA`)."""
    p = turn.parse
    top = p.ranking[0].intent if p.ranking else p.intent
    return {
        "schema_version": SCHEMA_VERSION,
        "turn_id": turn.turn_id,
        "ts": _utc(turn.timestamp),
        "user_id": turn.user_id,
        "session_id": turn.session_id,
        "text": turn.text,
        "locale": turn.locale,
        "intent": p.intent,
        "confidence": p.confidence,
        "top_intent": top,
        "ranking": [{"intent": s.intent, "confidence": s.confidence} for s in p.ranking],
        "second_intent": p.ranking[1].intent if len(p.ranking) > 1 else None,
        "slots": [span_to_dict(s) for s in p.slots],
        "domain": p.domain,
        "model_version": turn.model_version,
        "experiment": turn.experiment,
        "arm": turn.arm,
        "action": turn.action,
        "propensity": turn.propensity,
        "candidates": list(turn.candidates) if turn.candidates else None,
        "latency_ms": turn.latency_ms,
        "parse_ms": turn.parse_ms,
        "channel": turn.channel,
    }


def feedback_row(feedback: Feedback) -> dict[str, Any]:
    """One row of the feedback table (the column names of `FEEDBACK_SCHEMA`)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "turn_id": feedback.turn_id,
        "ts": _utc(feedback.timestamp),
        "kind": feedback.kind,
        "value": feedback.value,
        "user_id": feedback.user_id,
    }


class _Buffer:
    """Rows of one table waiting to be written, turns still to be prepared (`LogWriter`'s
    ``prepare_turns``), and when the oldest of them arrived."""

    def __init__(self, name: str, schema: pa.Schema) -> None:
        self.name = name
        self.schema = schema
        self.rows: list[dict[str, Any]] = []
        self.unprepared: list[Turn] = []
        self.oldest: float | None = None

    def __len__(self) -> int:
        return len(self.rows) + len(self.unprepared)

    def take(self) -> tuple[list[dict[str, Any]], list[Turn]]:
        taken = self.rows, self.unprepared
        self.rows, self.unprepared, self.oldest = [], [], None
        return taken


class LogWriter:
    """Append turns and feedback; they reach disk by size, by time, and on `close`.

    ``clock`` (monotonic seconds) decides when buffered rows are due; tests pass a fake one
    and call `flush_if_due` instead of starting the background thread.
    ``prepare_turns`` (see the module docstring) maps a batch of turns to the turns to
    write; it runs on the flushing thread and may drop turns it refuses.
    Raises `DataError` naming ``directory`` when it cannot be made a directory (say, it is
    a file).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        flush_interval: float = 1.0,
        flush_rows: int = 2000,
        clock: Callable[[], float] = time.monotonic,
        prepare_turns: Callable[[list[Turn]], list[Turn]] | None = None,
        max_buffered: int | None = None,
    ) -> None:
        if flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if flush_rows < 1:
            raise ValueError("flush_rows must be at least 1")
        if max_buffered is None:
            max_buffered = max(10_000, 2 * flush_rows)
        if max_buffered < flush_rows:
            raise ValueError("max_buffered must be at least flush_rows")
        self.directory = Path(directory)
        self.flush_interval = flush_interval
        self.flush_rows = flush_rows
        self.clock = clock
        self.prepare_turns = prepare_turns
        self.max_buffered = max_buffered
        self._turns = _Buffer("turns", TURN_SCHEMA)
        self._feedback = _Buffer("feedback", FEEDBACK_SCHEMA)
        self._lock = threading.Lock()  # guards the buffers
        self._flush_lock = threading.Lock()  # one flush at a time, in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.rows_written = 0
        self.files_written = 0
        self.flush_errors = 0
        self.rows_dropped = 0
        self.rows_rescued = 0
        self.turns_refused = 0
        self.failing: str | None = None
        """Why the last flush failed (None: it succeeded); rows stay buffered meanwhile."""
        self._in_flight = 0  # rows taken by the flush in progress, not yet written
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            problem = (
                "is not a directory; give a directory for the turn log"
                if self.directory.exists()
                else f"cannot be created as the turn log directory ({e.strerror or e})"
            )
            raise DataError(problem, file=self.directory) from None
        self._remove_leftovers()

    # --- appending ------------------------------------------------------------------
    def append_turn(self, turn: Turn) -> None:
        """Buffer one turn (cheap; never touches the disk on the caller's thread when
        the background thread runs)."""
        self.append_turns([turn])

    def append_turns(self, turns: Sequence[Turn]) -> None:
        """Buffer several turns."""
        if self.prepare_turns is None:
            self._append(self._turns, rows=[turn_row(t) for t in turns])
        else:
            for t in turns:
                _utc(t.timestamp)  # a bad timestamp fails here, on the caller's thread
            self._append(self._turns, unprepared=list(turns))

    def append_feedback(self, feedback: Feedback) -> None:
        """Buffer one feedback event."""
        self._append(self._feedback, rows=[feedback_row(feedback)])

    def _append(
        self, buffer: _Buffer, rows: Sequence[dict[str, Any]] = (), unprepared: Sequence[Turn] = ()
    ) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the log writer is closed")
            if buffer.oldest is None:
                buffer.oldest = self.clock()
            buffer.rows.extend(rows)
            buffer.unprepared.extend(unprepared)
            full = len(buffer) >= self.flush_rows
        if full:
            if self._thread is not None:
                self._wake.set()
            else:
                self.flush()

    @property
    def buffered(self) -> int:
        """Rows waiting in memory (what a hard crash now would lose)."""
        with self._lock:
            return len(self._turns) + len(self._feedback)

    @property
    def backlogged(self) -> bool:
        """More than ``max_buffered`` rows wait, buffered or being written (the writer is
        behind: take no more turns until it catches up)."""
        with self._lock:
            waiting = len(self._turns) + len(self._feedback) + self._in_flight
        return waiting > self.max_buffered

    # --- flushing -------------------------------------------------------------------
    def due_in(self) -> float | None:
        """Seconds until the next flush is due (0: now), or None when nothing is buffered."""
        with self._lock:
            oldest = [b.oldest for b in (self._turns, self._feedback) if b.oldest is not None]
            full = any(len(b) >= self.flush_rows for b in (self._turns, self._feedback))
        if full:
            return 0.0
        if not oldest:
            return None
        return max(0.0, min(oldest) + self.flush_interval / 2 - self.clock())

    def flush_if_due(self) -> int:
        """Flush when the oldest buffered row has waited half the flush interval or a
        buffer is full; returns the number of rows written."""
        due = self.due_in()
        return self.flush() if due is not None and due <= 0 else 0

    def flush(self) -> int:
        """Write everything buffered now; returns the number of rows written.

        Unprepared turns are prepared first. If writing fails, the rows not yet on disk go
        back to the front of the buffer (prepared) and the error propagates (the background
        thread logs it and tries again).
        """
        with self._flush_lock:
            with self._lock:
                taken = [(b, b.take()) for b in (self._turns, self._feedback)]
                self._in_flight = sum(len(r) + len(u) for _, (r, u) in taken)
            try:
                written = self._write_batches(
                    [(b, rows + self._prepared(unprepared)) for b, (rows, unprepared) in taken]
                )
            except Exception as e:
                self.failing = f"{type(e).__name__}: {e}"
                raise
            finally:
                with self._lock:
                    self._in_flight = 0
            self.failing = None
            return written

    def _write_batches(self, batches: list[tuple[_Buffer, list[dict[str, Any]]]]) -> int:
        """Write each buffer's rows, day by day; what fails to reach disk goes back to its
        buffer, and the first failure is raised once every buffer was tried (turns that
        cannot be written do not hold back the feedback)."""
        written = 0
        failure: BaseException | None = None
        for buffer, rows in batches:
            pending = list(_by_day(rows))
            try:
                while pending:
                    day, day_rows = pending[0]
                    written += self._write(buffer, day, day_rows)
                    pending.pop(0)
            except BaseException as e:
                self._restore(buffer, [r for _, d in pending for r in d])
                if not isinstance(e, Exception):  # an interrupt stops here
                    raise
                failure = failure or e
        if failure is not None:
            raise failure
        return written

    def _prepared(self, turns: list[Turn]) -> list[dict[str, Any]]:
        """Rows of the turns ``prepare_turns`` keeps; none when it fails (fail closed)."""
        if not turns:
            return []
        assert self.prepare_turns is not None
        try:
            kept = self.prepare_turns(turns)
        except Exception as e:
            self.turns_refused += len(turns)
            _log.error("preparing %d turns for the log failed (%s): none of them is written",
                       len(turns), type(e).__name__)  # fmt: skip
            return []
        self.turns_refused += len(turns) - len(kept)
        return [turn_row(t) for t in kept]

    def _restore(self, buffer: _Buffer, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with self._lock:
            buffer.rows[:0] = rows
            if buffer.oldest is None:
                buffer.oldest = self.clock()

    def _table(self, buffer: _Buffer, rows: list[dict[str, Any]]) -> pa.Table:
        """Rows → table; a row that cannot be stored (say, text with an unpaired surrogate)
        is dropped and counted instead of blocking every row after it."""
        try:
            return pa.Table.from_pylist(rows, schema=buffer.schema)
        except (pa.ArrowException, UnicodeError, TypeError, ValueError):
            good = []
            for row in rows:
                try:
                    pa.Table.from_pylist([row], schema=buffer.schema)
                except (pa.ArrowException, UnicodeError, TypeError, ValueError) as e:
                    self.rows_dropped += 1
                    _log.error(
                        "dropping a %s row that cannot be stored (%s): %r",
                        buffer.name,
                        e,
                        row.get("turn_id"),
                    )
                else:
                    good.append(row)
            return pa.Table.from_pylist(good, schema=buffer.schema)

    def _write(
        self, buffer: _Buffer, day: str, rows: list[dict[str, Any]], root: Path | None = None
    ) -> int:
        table = self._table(buffer, rows)
        if table.num_rows == 0:
            return 0
        folder = (root or self.directory) / buffer.name / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4().hex}.parquet"
        tmp = folder / f".{name}.tmp"
        try:
            with open(tmp, "wb") as f:
                pq.write_table(table, f, compression="zstd")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, folder / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(folder)
        if root is None:
            self.rows_written += table.num_rows
            self.files_written += 1
        return int(table.num_rows)

    # --- background thread and shutdown ---------------------------------------------
    def start(self) -> LogWriter:
        """Start the background thread that flushes by time and by size."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="voxloop-log", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        streak_logged: float | None = None  # when the current run of failures was last logged
        while not self._stop.is_set():
            due = self.due_in()
            wait = self.flush_interval / 2 if due is None else due
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()
            try:
                self.flush_if_due()
            except Exception:
                self.flush_errors += 1
                now = time.monotonic()
                if streak_logged is None:  # the first failure: its traceback
                    _log.exception("writing the turn log failed; the rows stay buffered")
                    streak_logged = now
                elif now - streak_logged >= 30:  # then a line every 30 s, not a flood
                    _log.error("the turn log still cannot be written (%s); %d rows buffered",
                               self.failing, self.buffered)  # fmt: skip
                    streak_logged = now
                self._stop.wait(min(1.0, self.flush_interval / 2))
            else:
                if streak_logged is not None and self.failing is None:
                    _log.warning("the turn log is written again")
                    streak_logged = None

    def close(self, attempts: int = 3, pause: float = 0.5) -> int:
        """Stop the background thread and flush what is left; returns rows written.

        A flush that keeps failing (``attempts`` tries, ``pause`` seconds apart) does not
        lose the buffer silently: the rows are written, in the log's own layout, to a
        rescue directory beside the log (or in the temporary directory), and a `DataError`
        says how many and where — copy its ``turns`` and ``feedback`` folders into the log.
        """
        with self._lock:
            self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for attempt in range(attempts):
            try:
                return self.flush()
            except Exception:
                if attempt + 1 < attempts:
                    time.sleep(pause)
        rows, rescue = self._rescue()
        where = (
            f"saved to {rescue}: copy its folders into the log directory"
            if rescue is not None
            else "lost: no rescue directory could be written either"
        )
        raise DataError(
            f"the turn log could not be written ({self.failing}); {rows} buffered rows {where}",
            file=self.directory,
        )

    def _rescue(self) -> tuple[int, Path | None]:
        """Write every buffered row under a new rescue directory; (rows, its path)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"{self.directory.resolve().name}{_RESCUED}{stamp}-{uuid.uuid4().hex[:6]}"
        with self._lock:
            taken = [(b, b.take()) for b in (self._turns, self._feedback)]
        # turns not yet prepared are prepared (redacted) first, as for the log itself
        buffers = [(b, rows + self._prepared(unprepared)) for b, (rows, unprepared) in taken]
        rows = sum(len(r) for _, r in buffers)
        for root in (self.directory.resolve().parent / name, Path(tempfile.gettempdir()) / name):
            try:
                for buffer, buffer_rows in buffers:
                    for day, day_rows in _by_day(buffer_rows):
                        self._write(buffer, day, day_rows, root=root)
            except Exception as e:
                _log.error("could not write the rescue directory %s: %s", root, e)
                continue
            self.rows_rescued += rows
            return rows, root
        return rows, None

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _remove_leftovers(self) -> None:
        """Delete temporary files a crash left half-written (readers never saw them)."""
        for tmp in self.directory.glob("*/date=*/.part-*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _by_day(rows: list[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    days: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        days.setdefault(row["ts"].date().isoformat(), []).append(row)
    yield from days.items()


def rescue_directories(directory: str | Path) -> list[Path]:
    """The rescue directories `LogWriter.close` left beside the log ``directory``, in order
    of their names (the oldest first)."""
    log = Path(directory).resolve()
    return sorted(p for p in log.parent.glob(f"{log.name}{_RESCUED}*") if p.is_dir())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_log(directory: str | Path, table: str = "turns") -> pa.Table:
    """Every row of one table (tests and quick looks; analytics reads with SQL)."""
    files = sorted((Path(directory) / table).glob("date=*/part-*.parquet"))
    schema = TURN_SCHEMA if table == "turns" else FEEDBACK_SCHEMA
    if not files:
        return schema.empty_table()
    return pa.concat_tables([pq.read_table(f, schema=schema) for f in files])
