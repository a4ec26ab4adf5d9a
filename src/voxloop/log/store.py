"""Reading the turn log: every day partition of a log directory as one logical table.

A log directory (what `LogWriter` writes) holds two tables, each split into day folders::

    turns/date=YYYY-MM-DD/part-*.parquet
    feedback/date=YYYY-MM-DD/part-*.parquet

`LogStore` finds the files of a day range (``since``/``until``, both inclusive, on the
day partition), checks that each one is a turn log (its ``voxloop.kind`` and
``voxloop.schema_version`` metadata and the columns that version has, or else the required
columns; each known column of the schema's type — reading only each file's footer) and
names the first that is not, and knows the union of their columns: files written by a
newer writer with an extra column and older files without it read as one table (the old
files give NULL), and a column of `TURN_SCHEMA` that no file has yet reads as NULL too, so
queries written against today's schema run on any log.

The SQL engines (`voxloop.log.engines`) expose three views over a store:

``turns``
    one row per turn: the columns of `TURN_SCHEMA` (plus any newer ones), ``day`` (the
    partition's date) and ``ts_us`` (the timestamp as integer microseconds since the
    epoch); ``second_intent`` (the runner-up of the ranking) comes from the ``ranking`` list
    in files written before it was a column of its own.
``feedback``
    one row per feedback event.
``turns_with_feedback``
    ``turns`` with each turn's feedback folded into columns (``barge_in``, ``abandoned``,
    ``rephrase_reported``, ``negative_feedback``, ``rating``, ``task_success``,
    ``feedback_events``) — still one row per turn. Feedback is read through one day past
    ``until``, so a late signal about the last day's turns is not lost.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from voxloop.errors import ConfigError, DataError
from voxloop.log.writer import FEEDBACK_SCHEMA, SCHEMA_VERSION, TURN_SCHEMA

if TYPE_CHECKING:
    from voxloop.log.engines import DuckDBEngine

__all__ = ["TABLES", "LogStore", "open_log", "parse_day"]

TABLES = ("turns", "feedback")
SCHEMAS = {"turns": TURN_SCHEMA, "feedback": FEEDBACK_SCHEMA}
# What a Parquet file without voxloop metadata must have to be read as a table of the log.
REQUIRED = {
    "turns": ("turn_id", "ts", "text", "model_version"),
    "feedback": ("turn_id", "ts", "kind"),
}
# The columns a file of each schema version must have. A column added to the schema later
# may be missing (it reads as NULL): ``candidates`` and ``second_intent`` joined version 1
# after files of it were written, so a version-1 file may lack them.
VERSION_COLUMNS: dict[str, dict[int, frozenset[str]]] = {
    "turns": {1: frozenset(TURN_SCHEMA.names) - {"candidates", "second_intent"}},
    "feedback": {1: frozenset(FEEDBACK_SCHEMA.names)},
}
_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def parse_day(value: date | datetime | str | None, *, key: str = "since") -> date | None:
    """A day bound: a `date`, a `datetime` (its date) or ``YYYY-MM-DD``; None: unbounded."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{value!r} is not a day (YYYY-MM-DD)", key=key) from None


@dataclass(frozen=True, slots=True)
class _Part:
    path: Path
    day: date


class LogStore:
    """The turn log under ``directory``, restricted to the days ``since``..``until``.

    Raises `DataError` when the directory holds no turn log, or when a file under it is
    not a turn log (the message names the file).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        since: date | datetime | str | None = None,
        until: date | datetime | str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.since = parse_day(since, key="since")
        self.until = parse_day(until, key="until")
        if self.since and self.until and self.since > self.until:
            raise ConfigError(f"since {self.since} is after until {self.until}", key="since")
        if not self.directory.is_dir():
            raise DataError("no such log directory", file=self.directory)
        self._parts = {table: self._find(table) for table in TABLES}
        if not self._parts["turns"]:
            raise DataError(
                "no turn log here (expected turns/date=YYYY-MM-DD/part-*.parquet, "
                "as `voxloop serve --log-dir` writes)",
                file=self.directory,
            )
        self._names: dict[Path, frozenset[str]] = {}
        self._columns = {table: self._read_columns(table) for table in TABLES}

    # --- files ----------------------------------------------------------------------
    def _find(self, table: str) -> list[_Part]:
        root = self.directory / table
        if not root.is_dir():
            return []
        parts: list[_Part] = []
        for folder in sorted(root.iterdir()):
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            match = _PARTITION.match(folder.name)
            if not match:
                raise DataError(
                    "not a day partition of the turn log (expected date=YYYY-MM-DD)", file=folder
                )
            try:
                day = date.fromisoformat(match.group(1))
            except ValueError:
                raise DataError("not a valid date in a partition name", file=folder) from None
            parts.extend(_Part(f, day) for f in sorted(folder.glob("part-*.parquet")))
        return parts

    def days(self, table: str = "turns", *, extra_days: int = 0) -> list[date]:
        """The days with files of ``table`` inside the range (``until`` moved ``extra_days``
        later)."""
        return sorted({p.day for p in self._parts[table] if self._in_range(p.day, extra_days)})

    def _in_range(self, day: date, extra_days: int = 0) -> bool:
        if self.since is not None and day < self.since:
            return False
        return not (self.until is not None and day > self.until + timedelta(days=extra_days))

    def files(self, table: str = "turns", *, extra_days: int = 0) -> list[Path]:
        """The Parquet files of ``table`` in the day range (``until`` moved ``extra_days``
        later: the feedback the ``turns_with_feedback`` view joins reads one more day)."""
        if table not in SCHEMAS:
            raise ConfigError(f"unknown table {table!r}; the log has {', '.join(TABLES)}")
        return [p.path for p in self._parts[table] if self._in_range(p.day, extra_days)]

    def root(self, table: str) -> Path:
        """The folder holding ``table``'s day partitions."""
        return self.directory / table

    # --- schema ---------------------------------------------------------------------
    def _read_columns(self, table: str) -> dict[str, pa.DataType]:
        """The union of the columns of every file (the schema's order first, then newer
        columns in the order they appear), checking each file."""
        columns: dict[str, pa.DataType] = {f.name: f.type for f in SCHEMAS[table]}
        footers: dict[bytes, Path] = {}
        for part in self._parts[table]:
            schema = _check_file(part.path, table)
            seen = footers.setdefault(_footer_digest(part.path), part.path)
            if seen != part.path:  # every row of it would count twice
                raise DataError(
                    f"holds the same rows as {seen} (a copied file?); remove one of them",
                    file=part.path,
                )
            self._names[part.path] = frozenset(schema.names)
            for field in schema:
                if field.name not in columns and field.name != "date":
                    columns[field.name] = field.type
        return columns

    def columns(self, table: str = "turns") -> dict[str, pa.DataType]:
        """Column name → Arrow type of ``table`` as the engines expose it (before the derived
        columns ``day`` and ``ts_us``)."""
        return dict(self._columns[table])

    def present(self, files: Iterable[Path]) -> set[str]:
        """The columns at least one of ``files`` has (the others must read as NULL)."""
        names: set[str] = set()
        for path in files:
            names.update(self._names[path])
        return names

    def everywhere(self, files: Iterable[Path]) -> set[str]:
        """The columns every one of ``files`` has."""
        sets = [self._names[path] for path in files]
        return set(frozenset.intersection(*sets)) if sets else set()

    # --- querying (DuckDB) ----------------------------------------------------------
    def engine(self) -> DuckDBEngine:
        """A DuckDB engine with the views ``turns``, ``feedback``, ``turns_with_feedback``."""
        from voxloop.log.engines import DuckDBEngine

        return DuckDBEngine(self)

    def sql(self, query: str) -> pa.Table:
        """Run one query on DuckDB over this log; the result as an Arrow table."""
        engine = self.engine()
        try:
            return engine.sql(query)
        finally:
            engine.close()

    def describe(self) -> dict[str, Any]:
        """Files, days and columns of the range (for ``voxloop log`` messages and tests)."""
        return {
            "directory": str(self.directory),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "turn_files": len(self.files("turns")),
            "feedback_files": len(self.files("feedback")),
            "days": [d.isoformat() for d in self.days("turns")],
            "columns": list(self._columns["turns"]),
        }

    def __repr__(self) -> str:
        files = len(self.files("turns"))
        return (
            f"LogStore({str(self.directory)!r}, since={self.since}, until={self.until}, "
            f"{files} turn file{'' if files == 1 else 's'})"
        )


def _footer_digest(path: Path) -> bytes:
    """A digest of a Parquet file's footer (its row groups, sizes and column statistics):
    equal only for copies of one file."""
    with open(path, "rb") as f:
        f.seek(-8, os.SEEK_END)
        length = int.from_bytes(f.read(4), "little")
        f.seek(-8 - length, os.SEEK_END)
        return hashlib.blake2b(f.read(length), digest_size=16).digest()


def _check_file(path: Path, table: str) -> pa.Schema:
    """The schema of one file, after checking it belongs to ``table`` of a turn log."""
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"not a Parquet file ({e})", file=path) from None
    metadata = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    kind = metadata.get("voxloop.kind")
    if kind is not None and kind != table:
        raise DataError(f"a voxloop {kind!r} file among the {table} of the log", file=path)
    version = metadata.get("voxloop.schema_version")
    if version is not None:
        try:
            number = int(version)
        except ValueError:
            raise DataError(f"unreadable schema version {version!r}", file=path) from None
        if number > SCHEMA_VERSION:
            raise DataError(
                f"turn log schema version {number}, newer than this voxloop reads "
                f"({SCHEMA_VERSION}); upgrade voxloop",
                file=path,
            )
        if number not in VERSION_COLUMNS[table]:
            raise DataError(f"unknown turn log schema version {number}", file=path)
    missing = [c for c in REQUIRED[table] if c not in schema.names]
    if missing:
        what = "a turn log" if table == "turns" else "a feedback log"
        raise DataError(f"not {what}: no column {', '.join(missing)}", file=path)
    if version is not None:
        needed = VERSION_COLUMNS[table][number]
        lacking = [c for c in SCHEMAS[table].names if c in needed and c not in schema.names]
        if lacking:
            raise DataError(
                f"no column {', '.join(lacking)}, which its schema version {number} has",
                file=path,
            )
    for name in schema.names:
        if name in SCHEMAS[table].names:
            actual, expected = schema.field(name).type, SCHEMAS[table].field(name).type
            if not _readable_as(actual, expected):
                raise DataError(f"column {name} is {actual}, expected {expected}", file=path)
    return schema


def _type_class(t: pa.DataType) -> str:
    """What a SQL engine makes of a type: any integer or float is a number, a timestamp to
    the microsecond (nanoseconds are not: DuckDB's ``epoch_us`` and Spark refuse them) a
    timestamp, a dictionary its values; lists and structs by their parts."""
    if pa.types.is_dictionary(t):
        return _type_class(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_timestamp(t) and t.unit != "ns":
        return "timestamp"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{_type_class(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ", ".join(f"{f.name}: {_type_class(f.type)}" for f in t) + ">"
    return str(t)


def _readable_as(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Whether a file's column of type ``actual`` reads as the schema's ``expected`` (a
    column of nulls only reads as anything)."""
    return pa.types.is_null(actual) or _type_class(actual) == _type_class(expected)


def open_log(
    directory: str | Path,
    *,
    since: date | datetime | str | None = None,
    until: date | datetime | str | None = None,
) -> LogStore:
    """Open a log directory for reading (see `LogStore`)."""
    return LogStore(directory, since=since, until=until)
