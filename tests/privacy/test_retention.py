"""Retention (whole day partitions) and deletion requests (one user's rows, atomically)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from voxloop.errors import ConfigError, DataError
from voxloop.log.lock import LOCK_FILE
from voxloop.log.store import LogStore
from voxloop.log.writer import LogWriter, read_log
from voxloop.privacy.retention import AUDIT_FILE, forget, read_audit, retain
from voxloop.schema import Feedback, IntentScore, Parse, Turn

START = date(2026, 11, 1)


def _write_log(directory: Path, days: int = 5, users: tuple[str, ...] = ("ann", "bob")) -> None:
    with LogWriter(directory) as writer:
        for d in range(days):
            for hour, user in enumerate(users):
                ts = datetime(2026, 11, 1 + d, 9 + hour, tzinfo=UTC)
                tid = f"{user}-{d}"
                parse = Parse(f"hello {d}", "greet", 0.9, (IntentScore("greet", 0.9),), ())
                writer.append_turn(Turn(tid, ts, parse.text, parse, "v1", user_id=user))
                writer.append_feedback(Feedback(tid, ts + timedelta(seconds=5), "rating", 1.0,
                                                user_id=user if d % 2 else None))  # fmt: skip
            writer.flush()  # one file per day and table holding both users


def _mtimes(directory: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in directory.rglob("part-*.parquet")}


def test_retain_deletes_only_whole_partitions_past_the_window(tmp_path: Path) -> None:
    _write_log(tmp_path)
    before = _mtimes(tmp_path)
    result = retain(tmp_path, 3, today=START + timedelta(days=4))
    assert result.cutoff == "2026-11-03" and result.rows == 8 and len(result.partitions) == 4
    assert sorted(p.name for p in (tmp_path / "turns").iterdir()) == [
        "date=2026-11-03", "date=2026-11-04", "date=2026-11-05"]  # fmt: skip
    after = _mtimes(tmp_path)
    assert all(before[p] == t for p, t in after.items())  # nothing else rewritten
    assert LogStore(tmp_path).sql("SELECT count(*) AS n FROM turns")["n"][0].as_py() == 6
    assert read_audit(tmp_path)[-1]["action"] == "retain"


def test_retain_refuses_a_bad_window_and_a_non_log(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--days"):
        retain(tmp_path, 0)
    with pytest.raises(DataError, match="no turn log"):
        retain(tmp_path, 3)


def test_two_deletions_at_once_both_take_effect(tmp_path: Path) -> None:
    """Each reads the files it will rewrite, then writes them: without the log's lock, the
    second rewrite of a shared file put back the user the first had removed."""
    _write_log(tmp_path / "a", users=("ann", "bob", "carl"))
    start = threading.Barrier(2)

    def remove(user: str) -> int:
        start.wait()
        return forget(tmp_path / "a", user).turns

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(remove, ["ann", "bob"])) == [5, 5]
    left = read_log(tmp_path / "a").column("user_id").to_pylist()
    assert sorted(set(left)) == ["carl"] and len(left) == 5


def test_forget_removes_one_users_rows_and_rewrites_only_their_files(tmp_path: Path) -> None:
    _write_log(tmp_path / "a", users=("ann", "bob"))
    _write_log(tmp_path / "a", days=2, users=("carl",))  # files without ann
    before = _mtimes(tmp_path)
    result = forget(tmp_path / "a", "ann")
    assert (result.turns, result.feedback) == (5, 5)  # id-less feedback found by turn id
    assert len(result.files_rewritten) == 10 and not result.files_deleted
    turns = read_log(tmp_path / "a").to_pylist()
    assert {t["user_id"] for t in turns} == {"bob", "carl"} and len(turns) == 7
    feedback = read_log(tmp_path / "a", "feedback").to_pylist()
    assert not any(f["turn_id"].startswith("ann") for f in feedback) and len(feedback) == 7
    after = _mtimes(tmp_path)
    changed = {p for p in after if before[p] != after[p]}
    assert len(changed) == 10 and all("carl" not in str(p) for p in changed)
    untouched = [p for p in after if p not in changed]
    assert len(untouched) == 4  # carl's own files
    assert not list((tmp_path / "a").rglob("*.tmp"))
    entry = read_audit(tmp_path / "a")[-1]
    assert entry["action"] == "forget" and "ann" not in json.dumps(entry)
    LogStore(tmp_path / "a").sql("SELECT * FROM turns_with_feedback")  # still a readable log


def test_forget_and_retain_cover_the_rescue_directories_beside_the_log(tmp_path: Path) -> None:
    """Rows a stopping server could not write wait in LOG.rescued-*, in the log's layout: a
    deletion request or the retention window that skipped them would leave them behind."""
    _write_log(tmp_path / "log", users=("ann", "bob"))
    rescue = tmp_path / "log.rescued-20261106T120000Z-abc123"
    _write_log(rescue, days=5, users=("ann", "carl"))
    _write_log(tmp_path / "other.rescued-20261106T120000Z-def456", days=1, users=("ann",))
    result = forget(tmp_path / "log", "ann")
    assert (result.turns, result.feedback) == (10, 10)
    assert any(f.startswith("log.rescued-20261106T120000Z-abc123/turns/date=") for f in
               result.files_rewritten)  # fmt: skip
    assert {t["user_id"] for t in read_log(rescue).to_pylist()} == {"carl"}
    assert {t["user_id"] for t in read_log(tmp_path / "log").to_pylist()} == {"bob"}
    other = tmp_path / "other.rescued-20261106T120000Z-def456"
    assert read_log(other).column("user_id").to_pylist() == ["ann"]  # another log's rescue
    kept = retain(tmp_path / "log", 2, today=START + timedelta(days=4))
    assert "log.rescued-20261106T120000Z-abc123/turns/date=2026-11-01" in kept.partitions
    assert sorted(p.name for p in (rescue / "turns").iterdir()) == [
        "date=2026-11-04", "date=2026-11-05"]  # fmt: skip


def test_forget_deletes_files_left_empty(tmp_path: Path) -> None:
    _write_log(tmp_path, days=2, users=("ann",))
    result = forget(tmp_path, "ann")
    assert len(result.files_deleted) == 4 and not list(tmp_path.rglob("part-*.parquet"))


def test_cli_retain_and_forget_with_a_hashed_log(tmp_path: Path) -> None:
    from voxloop.privacy import Redactor, parse_redaction_config

    env = {"VOXLOOP_PRIVACY_SALT": "salt-for-the-forget-test"}
    redactor = Redactor(parse_redaction_config({}, environ=env))
    _write_log(tmp_path, users=(redactor.hash_id("ann") or "", "bob"))
    config = tmp_path / "redact.toml"
    config.write_text("version = 1\n")
    cli = [sys.executable, "-m", "voxloop", "log"]
    done = subprocess.run(cli + ["forget", "--log", str(tmp_path), "--user", "ann", "--redact",
                                 str(config), "--json"], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["turns"] == 5
    done = subprocess.run(cli + ["retain", "--log", str(tmp_path), "--days", "0"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "--days" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / AUDIT_FILE).is_file()


def _snapshot(directory: Path) -> dict[Path, bytes]:
    """Every file's bytes, but the log's lock (an empty file the commands take turns on)."""
    return {p: p.read_bytes() for p in directory.rglob("*") if p.is_file() and p.name != LOCK_FILE}


def test_forget_reads_every_file_first_and_changes_nothing_when_one_is_unreadable(
    tmp_path: Path,
) -> None:
    _write_log(tmp_path)
    bad = next((tmp_path / "turns" / "date=2026-11-03").glob("part-*.parquet"))
    bad.write_bytes(b"garbage")  # ann's turns of 11-01 and 11-02 come before it
    before = _snapshot(tmp_path)
    with pytest.raises(DataError, match="nothing was removed") as e:
        forget(tmp_path, "ann")
    assert str(e.value).startswith(f"{bad}: not a Parquet file")
    assert _snapshot(tmp_path) == before  # no file rewritten, no temporary left, no audit


def test_retain_names_an_unreadable_file_and_deletes_nothing(tmp_path: Path) -> None:
    _write_log(tmp_path)
    bad = next((tmp_path / "feedback" / "date=2026-11-02").glob("part-*.parquet"))
    bad.write_bytes(b"garbage")
    before = _snapshot(tmp_path)
    for dry_run in (True, False):
        with pytest.raises(DataError, match="cannot be read") as e:
            retain(tmp_path, 1, today=START + timedelta(days=4), dry_run=dry_run)
        assert str(e.value).startswith(f"{bad}: ") and "nothing was deleted" in str(e.value)
    assert _snapshot(tmp_path) == before


def test_retain_refuses_a_today_in_the_future(tmp_path: Path) -> None:
    _write_log(tmp_path)
    before = _snapshot(tmp_path)
    now = datetime(2026, 11, 5, 23, tzinfo=UTC)
    with pytest.raises(ConfigError, match="2026-11-07 is in the future") as e:
        retain(tmp_path, 1, today=date(2026, 11, 7), now=lambda: now)
    assert e.value.key == "--today"
    assert _snapshot(tmp_path) == before
    # a day ahead is allowed (a clock or a time zone a little ahead of UTC)
    assert retain(tmp_path, 1, today=date(2026, 11, 6), now=lambda: now, dry_run=True).rows == 20


@pytest.mark.parametrize("today", ["2026-99-01", "26-11-02", "2026-02-30"])
def test_cli_retain_names_a_bad_today(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], today: str
) -> None:
    from voxloop.cli import main

    _write_log(tmp_path, days=1)
    assert main(["log", "retain", "--log", str(tmp_path), "--days", "1", "--today", today]) == 1
    err = capsys.readouterr().err
    assert err == f"voxloop: error: --today: {today!r} is not a day (YYYY-MM-DD)\n"


def test_cli_forget_says_when_nothing_matched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voxloop.cli import main

    _write_log(tmp_path, days=2)
    before = _snapshot(tmp_path / "turns")
    assert main(["log", "forget", "--log", str(tmp_path), "--user", "nobody"]) == 0
    captured = capsys.readouterr()
    assert "removed 0 turns" in captured.out
    assert "--user matches no turn or feedback event" in captured.err
    assert _snapshot(tmp_path / "turns") == before
    assert read_audit(tmp_path)[-1]["turns"] == 0  # the request itself is on record


def test_cli_counts_read_well_for_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from voxloop.cli import main

    parse = Parse("hello", "greet", 0.9, (IntentScore("greet", 0.9),), ())
    with LogWriter(tmp_path) as writer:  # turns only: ann on two days, bob on the second
        for day, users in ((1, ["ann"]), (2, ["ann", "bob"])):
            for user in users:
                ts = datetime(2026, 11, day, 9, tzinfo=UTC)
                writer.append_turn(Turn(f"{user}{day}", ts, "hello", parse, "v1", user_id=user))
            writer.flush()  # one file per day
    assert main(["log", "retain", "--log", str(tmp_path), "--days", "1", "--today",
                 "2026-11-02"]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith(
        "deleted 1 day partition before 2026-11-02 (1 file, 1 row)")  # fmt: skip
    assert main(["log", "forget", "--log", str(tmp_path), "--user", "ann"]) == 0
    assert capsys.readouterr().out.startswith(
        "removed 1 turn and 0 feedback events (rewrote 1 file, deleted 0)")  # fmt: skip


def test_forget_refuses_a_raw_id_on_a_log_of_hashed_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voxloop.cli import main
    from voxloop.privacy import Redactor, parse_redaction_config

    redactor = Redactor(parse_redaction_config({}, environ={"VOXLOOP_PRIVACY_SALT": "s" * 20}))
    _write_log(tmp_path, days=2, users=(redactor.hash_id("ann") or "", "bob"))
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match="ids are hashed: pass the server's redaction config"):
        forget(tmp_path, "ann")
    assert main(["log", "forget", "--log", str(tmp_path), "--user", "ann"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("voxloop: error: --user: ") and "--redact" in err
    assert _snapshot(tmp_path) == before  # nothing removed, nothing audited
    # a hashed id that matches nothing is a user without data, not a mistake
    assert forget(tmp_path, redactor.hash_id("carl") or "").turns == 0
