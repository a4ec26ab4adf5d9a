"""Retention and deletion requests over the turn log.

- `retain` deletes whole day partitions (``turns/date=D``, ``feedback/date=D``) older than
  the window and touches nothing else.
- `forget` removes one user's turns and feedback (and feedback on those turns, which may lack
  a user id): every file is read first, then only files holding such rows are rewritten —
  each to a hidden temporary file in the same folder, fsynced, and once all are written
  `os.replace`d over the originals, so a reader sees the old file or the new one, never
  half of one, and an unreadable file stops the request before anything changed. A file
  left with no row is deleted.

Both cover the rescue directories beside the log too (``LOG.rescued-*``: rows a server could
not write to the log when it stopped, in the log's own layout, waiting to be copied in), so
neither a deletion request nor the retention window misses rows held there.

Both append a line to ``privacy_audit.jsonl`` in the log directory: what was asked, when,
and what was removed. The audit names a user only by the SHA-256 of the id as stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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
from voxloop.log.lock import exclusive
from voxloop.log.store import TABLES, _check_file
from voxloop.log.writer import _fsync_dir, rescue_directories

__all__ = [
    "AUDIT_FILE",
    "HASHED_ID",
    "ForgetResult",
    "RetainResult",
    "forget",
    "read_audit",
    "retain",
]

AUDIT_FILE = "privacy_audit.jsonl"
#: What a hashed id looks like in the log (`Redactor.hash_id`: HMAC-SHA256, 32 hex digits).
HASHED_ID = re.compile(r"[0-9a-f]{32}")


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


def _shown(path: Path, directory: Path) -> str:
    """``path`` relative to the log directory (a rescue directory's: from beside the log)."""
    if path.is_relative_to(directory):
        return str(path.relative_to(directory))
    return str(path.resolve().relative_to(directory.resolve().parent))


def _partitions(directory: Path, table: str) -> list[tuple[date, Path]]:
    """The day folders of ``table``, in the log and then in the rescue directories beside it
    (`voxloop.log.writer.rescue_directories`)."""
    out = []
    for root in (directory / table, *(r / table for r in rescue_directories(directory))):
        for folder in sorted(root.glob("date=*")) if root.is_dir() else []:
            try:
                out.append((date.fromisoformat(folder.name.removeprefix("date=")), folder))
            except ValueError:
                raise DataError(
                    "not a day partition (expected date=YYYY-MM-DD)", file=folder
                ) from None
    return out


def _unreadable(path: Path, error: Exception, nothing: str) -> DataError:
    """A clear error about a file of the log that cannot be read, saying what was not done."""
    problem = error.problem if isinstance(error, DataError) else f"cannot be read ({error})"
    return DataError(f"{problem}; {nothing}", file=path)


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
    """Delete the day partitions older than the last ``days`` days (today included), in the
    log and in the rescue directories beside it.

    ``today`` may be at most one day past the real date (UTC), so that a mistyped year does
    not delete the whole log. Every file to delete is counted before any is deleted: an
    unreadable one raises `DataError` naming it and nothing is deleted. Runs under the
    log's lock (`voxloop.log.lock`), one such command at a time.
    """
    if not isinstance(days, int) or days < 1:
        raise ConfigError(f"must be a whole number of days >= 1, got {days!r}", key="--days")
    directory = Path(directory)
    _check_log(directory)
    with exclusive(directory, "log retain"):
        real_today = now().date()
        if today is not None and today > real_today + timedelta(days=1):
            raise ConfigError(
                f"{today} is in the future (today is {real_today}, UTC); nothing was deleted",
                key="--today",
            )
        today = today or real_today
        cutoff = today - timedelta(days=days - 1)  # the oldest day kept
        doomed: list[Path] = []  # day folders
        files, rows = 0, 0
        for table in TABLES:
            for day, folder in _partitions(directory, table):
                if day >= cutoff:
                    continue
                for part in folder.glob("part-*.parquet"):
                    try:
                        rows += pq.ParquetFile(part).metadata.num_rows
                    except (pa.ArrowException, OSError) as e:
                        raise _unreadable(part, e, "nothing was deleted") from None
                    files += 1
                doomed.append(folder)
        removed = [_shown(folder, directory) for folder in doomed]
        if not dry_run:
            for folder in doomed:
                shutil.rmtree(folder)
            for parent in sorted({folder.parent for folder in doomed}):
                _fsync_dir(parent)
        result = RetainResult(cutoff.isoformat(), removed, files, rows)
        if not dry_run:
            _audit(directory, {"action": "retain", "days": days, **asdict(result)}, now())
        return result


def _write_tmp(path: Path, table: pa.Table) -> Path:
    """``table`` written and fsynced to a hidden temporary file beside ``path``."""
    tmp = path.parent / f".{path.stem}-{uuid.uuid4().hex[:8]}.parquet.tmp"
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def forget(
    directory: str | Path,
    user_id: str,
    *,
    check_hashed: bool = True,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ForgetResult:
    """Remove every turn and feedback event of ``user_id`` (as stored in the log: pass the
    hashed id when the log hashes ids) and the feedback on that user's turns, from the log
    and from the rescue directories beside it.

    Every file is read before any is changed: an unreadable one raises `DataError` naming it
    and the log is left as it was. With ``check_hashed``, an id that matches nothing and is
    not hashed while the log's ids are (`HASHED_ID`) raises `ConfigError`: it was most likely
    not hashed as the log stores it. Runs under the log's lock (`voxloop.log.lock`): two
    deletions at once would each rewrite a file without the other's removals.
    """
    directory = Path(directory)
    _check_log(directory)
    with exclusive(directory, "log forget"):
        if not user_id:
            raise ConfigError("give the user id to forget", key="--user")
        digest = hashlib.sha256(user_id.encode()).hexdigest()
        nothing = "nothing was removed"
        counts = {"turns": 0, "feedback": 0}
        hits: list[tuple[Path, pa.Array]] = []  # the files to change, and their rows to remove
        turn_ids: set[str] = set()
        hashed_ids = False
        for table in ("turns", "feedback"):  # turns first: their ids find id-less feedback
            for _, folder in _partitions(directory, table):
                for path in sorted(folder.glob("part-*.parquet")):
                    try:
                        names = _check_file(path, table).names
                        columns = [c for c in ("user_id", "turn_id") if c in names]
                        keys = pq.read_table(path, columns=columns)
                    except (DataError, pa.ArrowException, OSError) as e:
                        raise _unreadable(path, e, nothing) from None
                    users = (
                        keys["user_id"].cast(pa.string())
                        if "user_id" in names
                        else pa.nulls(len(keys), pa.string())
                    )
                    hit = pc.fill_null(pc.equal(users, user_id), False)
                    hashed_ids = hashed_ids or bool(
                        pc.any(pc.match_substring_regex(users, f"^{HASHED_ID.pattern}$")).as_py()
                    )
                    if table == "feedback" and turn_ids:
                        hit = pc.or_(hit, pc.is_in(keys["turn_id"], pa.array(sorted(turn_ids))))
                    n = pc.sum(hit).as_py() or 0
                    if not n:
                        continue
                    if table == "turns":
                        turn_ids.update(pc.filter(keys["turn_id"], hit).to_pylist())
                    counts[table] += n
                    hits.append((path, hit))
        if not hits and check_hashed and hashed_ids and not HASHED_ID.fullmatch(user_id):
            raise ConfigError(
                "matches no turn, and the log's user ids are hashed: pass the server's redaction "
                f"config (--redact CONFIG) so the id is hashed as the log stores it; {nothing}",
                key="--user",
            )
        # every file read; write the new versions aside, then swap them in
        swaps: list[tuple[Path, Path | None]] = []  # (file, its new version; None: delete it)
        try:
            for path, hit in hits:
                try:
                    kept = pq.read_table(path).filter(pc.invert(hit))
                except (pa.ArrowException, OSError) as e:
                    raise _unreadable(path, e, nothing) from None
                swaps.append((path, _write_tmp(path, kept) if kept.num_rows else None))
        except BaseException:
            for _, tmp in swaps:
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
            raise
        rewritten: list[str] = []
        deleted: list[str] = []
        for path, tmp in swaps:
            if tmp is None:
                path.unlink()
                deleted.append(_shown(path, directory))
            else:
                os.replace(tmp, path)
                rewritten.append(_shown(path, directory))
        for folder in sorted({path.parent for path, _ in swaps}):
            _fsync_dir(folder)
        result = ForgetResult(digest, counts["turns"], counts["feedback"], rewritten, deleted)
        _audit(directory, {"action": "forget", **asdict(result)}, now())
        return result
