"""Retention and deletion requests over the turn log.

- `retain` deletes whole day partitions (``turns/date=D``, ``feedback/date=D``) older than
  the window and touches nothing else.
- `forget` removes one user's turns and feedback (and feedback on those turns, which may lack
  a user id): only files holding such rows are rewritten — to a hidden temporary file in the
  same folder, fsynced, then `os.replace`d over the original, so a reader sees the old file
  or the new one, never half of one. A file left with no row is deleted.

Both append a line to ``privacy_audit.jsonl`` in the log directory: what was asked, when,
and what was removed. The audit names a user only by the SHA-256 of the id as stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voxloop.errors import ConfigError, DataError
from voxloop.log.store import TABLES
from voxloop.log.writer import _fsync_dir

__all__ = ["AUDIT_FILE", "ForgetResult", "RetainResult", "forget", "read_audit", "retain"]

AUDIT_FILE = "privacy_audit.jsonl"


@dataclass(frozen=True)
class RetainResult:
    """What `retain` removed: partitions (``table/date=D``) and their row count."""

    cutoff: str
    partitions: list[str] = field(default_factory=list)
    files: int = 0
    rows: int = 0


@dataclass(frozen=True)
class ForgetResult:
    """What `forget` removed: rows per table and the files rewritten or deleted."""

    user_sha256: str
    turns: int = 0
    feedback: int = 0
    files_rewritten: list[str] = field(default_factory=list)
    files_deleted: list[str] = field(default_factory=list)


def _check_log(directory: Path) -> None:
    if not directory.is_dir() or not any((directory / t).is_dir() for t in TABLES):
        raise DataError("no turn log here (expected turns/date=YYYY-MM-DD/...)", file=directory)


def _partitions(directory: Path, table: str) -> list[tuple[date, Path]]:
    root = directory / table
    out = []
    for folder in sorted(root.glob("date=*")) if root.is_dir() else []:
        try:
            out.append((date.fromisoformat(folder.name.removeprefix("date=")), folder))
        except ValueError:
            raise DataError("not a day partition (expected date=YYYY-MM-DD)", file=folder) from None
    return out


def _audit(directory: Path, entry: dict[str, Any], now: datetime) -> None:
    line = json.dumps({"ts": now.isoformat(), **entry}, sort_keys=True) + "\n"
    with open(directory / AUDIT_FILE, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_audit(directory: str | Path) -> list[dict[str, Any]]:
    """The audit entries of a log directory, oldest first."""
    path = Path(directory) / AUDIT_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def retain(
    directory: str | Path,
    days: int,
    *,
    today: date | None = None,
    dry_run: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RetainResult:
    """Delete the day partitions older than the last ``days`` days (today included)."""
    if not isinstance(days, int) or days < 1:
        raise ConfigError(f"must be a whole number of days >= 1, got {days!r}", key="--days")
    directory = Path(directory)
    _check_log(directory)
    today = today or now().date()
    cutoff = today - timedelta(days=days - 1)  # the oldest day kept
    removed, files, rows = [], 0, 0
    for table in TABLES:
        for day, folder in _partitions(directory, table):
            if day >= cutoff:
                continue
            parts = list(folder.glob("part-*.parquet"))
            files += len(parts)
            rows += sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
            removed.append(f"{table}/{folder.name}")
            if not dry_run:
                shutil.rmtree(folder)
        if removed and not dry_run and (directory / table).is_dir():
            _fsync_dir(directory / table)
    result = RetainResult(cutoff.isoformat(), removed, files, rows)
    if not dry_run:
        _audit(directory, {"action": "retain", "days": days, **asdict(result)}, now())
    return result


def _rewrite(path: Path, table: pa.Table) -> None:
    """Replace ``path`` by ``table`` atomically (temporary file, fsync, rename, fsync dir)."""
    tmp = path.parent / f".{path.stem}-{uuid.uuid4().hex[:8]}.parquet.tmp"
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def forget(
    directory: str | Path,
    user_id: str,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ForgetResult:
    """Remove every turn and feedback event of ``user_id`` (as stored in the log: pass the
    hashed id when the log hashes ids) and the feedback on that user's turns."""
    if not user_id:
        raise ConfigError("give the user id to forget", key="--user")
    directory = Path(directory)
    _check_log(directory)
    digest = hashlib.sha256(user_id.encode()).hexdigest()
    counts = {"turns": 0, "feedback": 0}
    rewritten: list[str] = []
    deleted: list[str] = []
    turn_ids: set[str] = set()
    for table in ("turns", "feedback"):  # turns first: their ids find id-less feedback
        for _, folder in _partitions(directory, table):
            for path in sorted(folder.glob("part-*.parquet")):
                names = pq.read_schema(path).names
                columns = [c for c in ("user_id", "turn_id") if c in names]
                keys = pq.read_table(path, columns=columns)
                hit = pc.fill_null(pc.equal(keys["user_id"], user_id), False)
                if table == "feedback" and turn_ids:
                    hit = pc.or_(hit, pc.is_in(keys["turn_id"], pa.array(sorted(turn_ids))))
                n = pc.sum(hit).as_py() or 0
                if not n:
                    continue
                if table == "turns":
                    turn_ids.update(pc.filter(keys["turn_id"], hit).to_pylist())
                full = pq.read_table(path)
                kept = full.filter(pc.invert(hit))
                counts[table] += n
                rel = str(path.relative_to(directory))
                if kept.num_rows == 0:
                    path.unlink()
                    _fsync_dir(folder)
                    deleted.append(rel)
                else:
                    _rewrite(path, kept)
                    rewritten.append(rel)
    result = ForgetResult(digest, counts["turns"], counts["feedback"], rewritten, deleted)
    _audit(directory, {"action": "forget", **asdict(result)}, now())
    return result
