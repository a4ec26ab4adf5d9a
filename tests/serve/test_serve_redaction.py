"""`voxloop serve --redact`: what reaches the turn log on disk has no personal value."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from servers import API_KEY, Models, start_server

from voxloop.log.writer import LogWriter, read_log
from voxloop.privacy import Redactor, parse_redaction_config
from voxloop.serve.payloads import FeedbackRequest, ParseRequest
from voxloop.serve.service import QueueFull, ServeConfig, Service

SALT = "a-test-salt-that-is-long-enough"
CONFIG = """
version = 1
slot_types = ["area", "name"]
[fields]
text = "redact"
slots = "redact"
user_id = "hash"
session_id = "drop"
"""
TEXTS = [
    "turn off the kitchen light and call me at 555-867-5309",
    "turn on the bedroom lamp, my email is jane.doe@example.com",
    "set the living room thermostat, my card is 4111 1111 1111 1111",
]


def _strings(log_dir: Path) -> list[str]:
    """Every string value in every Parquet file under the log directory."""
    out: list[str] = []
    for file in log_dir.rglob("*.parquet"):
        for row in pq.read_table(file).to_pylist():
            stack: list[object] = list(row.values())
            while stack:
                v = stack.pop()
                if isinstance(v, str):
                    out.append(v)
                elif isinstance(v, dict):
                    stack.extend(v.values())
                elif isinstance(v, list):
                    stack.extend(v)
    return out


def test_a_running_servers_log_holds_no_personal_value(
    models: Models, serve: list, tmp_path: Path
) -> None:
    config = tmp_path / "redact.toml"
    config.write_text(CONFIG)
    os.environ["VOXLOOP_PRIVACY_SALT"] = SALT  # start_server copies the environment
    try:
        server = start_server(models.v1, tmp_path, "--redact", str(config),
                              "--log-flush-interval", "0.2")  # fmt: skip
    finally:
        del os.environ["VOXLOOP_PRIVACY_SALT"]
    serve.append(server)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    personal = {"555-867-5309", "jane.doe@example.com", "4111 1111 1111 1111", "alice-42",
                "session-7"}  # fmt: skip
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        for text in TEXTS:
            r = client.post("/v1/parse", json={"text": text, "user_id": "alice-42",
                                               "session_id": "session-7"})  # fmt: skip
            assert r.status_code == 200, r.text
            answer = r.json()
            # (a slot the model tags on punctuation alone, say ",", holds nothing personal)
            tagged = [s["value"] for s in answer["slots"] if s["label"] in ("area", "name")]
            personal |= {v for v in tagged if re.search(r"\w", v)}
            r = client.post("/v1/feedback", json={"turn_id": answer["turn_id"],
                            "kind": "task_success", "value": 1, "user_id": "alice-42"})  # fmt: skip
            assert r.status_code in (200, 202), r.text
    assert server.stop() == 0
    strings = _strings(server.log_dir)
    turns = read_log(server.log_dir).to_pylist()
    assert len(turns) == len(TEXTS) and len(read_log(server.log_dir, "feedback")) == len(TEXTS)
    assert any("[phone_number]" in t["text"] for t in turns)
    assert any("[email]" in t["text"] for t in turns)
    assert any("[card_number]" in t["text"] for t in turns)
    # A placeholder may contain a word the model tagged (it once tagged "card" in "my
    # card is ..." as a name): look for each value as a word outside the placeholders.
    bare = [re.sub(r"\[[a-z_]+\]", " ", s) for s in strings]
    leaked = [v for v in personal
              if any(re.search(rf"(?<!\w){re.escape(v)}(?!\w)", s) for s in bare)]  # fmt: skip
    assert not leaked, leaked
    assert len({t["user_id"] for t in turns}) == 1 and turns[0]["session_id"] is None


def test_an_unknown_slot_type_stops_the_server_with_one_line(
    models: Models, tmp_path: Path
) -> None:
    config = tmp_path / "redact.toml"
    config.write_text('slot_types = ["areaa"]\n[fields]\nuser_id = "keep"\nsession_id = "keep"\n')
    done = subprocess.run([sys.executable, "-m", "voxloop", "serve", "--model", str(models.v1),
                           "--redact", str(config), "--port", "1", "--log-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "slot_types[0]" in done.stderr and "'area'" in done.stderr
    assert "Traceback" not in done.stderr


class _Broken(Redactor):
    def turn(self, turn):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    def feedback(self, feedback):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")


def test_a_failing_redactor_logs_nothing(models: Models, tmp_path: Path) -> None:
    redactor = _Broken(parse_redaction_config({}, environ={"VOXLOOP_PRIVACY_SALT": SALT}))
    writer = LogWriter(tmp_path / "log")
    service = Service(ServeConfig(model=models.v1), writer=writer, redactor=redactor,
                      now=lambda: datetime(2026, 11, 1, tzinfo=UTC))  # fmt: skip

    async def go() -> None:
        await service.start()
        await service.load_initial()
        answers = await service.parse(ParseRequest([TEXTS[0]], batch=False, user_id="alice"),
                                      channel="http")  # fmt: skip
        assert answers[0].parse.text == TEXTS[0]  # the user is still answered
        service.feedback(FeedbackRequest(answers[0].turn_id, "rating", 1.0, user_id="alice"))
        await service.stop()

    asyncio.run(go())
    assert writer.rows_written == 0 and not list((tmp_path / "log").rglob("*.parquet"))
    assert service.metrics.rejected.value(reason="redaction_failed") == 2


class _FailsOnCards(Redactor):
    """Refuses turns that mention a card; records the threads it redacted turns on."""

    threads: set[str] = set()

    def turn(self, turn, detected=None):  # type: ignore[no-untyped-def]
        self.threads.add(threading.current_thread().name)
        if "card" in turn.text:
            raise RuntimeError("boom")
        return super().turn(turn, detected)


def test_turns_are_redacted_off_the_request_path_and_one_failure_costs_one_turn(
    models: Models, tmp_path: Path
) -> None:
    redactor = _FailsOnCards(parse_redaction_config({}, environ={"VOXLOOP_PRIVACY_SALT": SALT}))
    writer = LogWriter(tmp_path / "log", flush_interval=2.0)
    service = Service(ServeConfig(model=models.v1), writer=writer, redactor=redactor,
                      now=lambda: datetime(2026, 11, 1, tzinfo=UTC))  # fmt: skip

    async def go() -> None:
        await service.start()
        await service.load_initial()
        await service.parse(ParseRequest(TEXTS, batch=True, user_id="alice"), channel="http")
        assert redactor.threads == set()  # answered; nothing redacted on the way
        for _ in range(100):  # the writer's thread flushes within the flush interval
            if writer.rows_written:
                break
            await asyncio.sleep(0.1)
        await service.stop()

    asyncio.run(go())
    assert redactor.threads == {"voxloop-log"}
    texts = read_log(tmp_path / "log").column("text").to_pylist()
    assert len(texts) == 2 and all("[phone_number]" in t or "[email]" in t for t in texts)
    assert service.metrics.rejected.value(reason="redaction_failed") == 1


class _Behind(LogWriter):
    backlogged = True  # type: ignore[assignment]


def test_a_backlogged_log_writer_makes_the_server_refuse_with_503(
    models: Models, tmp_path: Path
) -> None:
    service = Service(ServeConfig(model=models.v1), writer=_Behind(tmp_path / "log"))

    async def go() -> None:
        await service.start()
        await service.load_initial()
        with pytest.raises(QueueFull, match="log is behind"):
            await service.parse(ParseRequest([TEXTS[0]], batch=False), channel="http")
        await service.stop()

    asyncio.run(go())
    assert service.metrics.rejected.value(reason="log_backlog") == 1
