"""The turn log's guarantee, tested on a real server process.

Hard crash (SIGKILL): every turn acknowledged more than ``--log-flush-interval`` before the
kill is in the log, and every Parquet file is readable. Graceful stop (SIGTERM/SIGINT):
every acknowledged turn and feedback event is in the log.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from servers import API_KEY, Models, Server, start_server

from voxloop.log.writer import LogWriter, read_log

FLUSH_INTERVAL = 0.5


def logged(log_dir: Path, table: str = "turns") -> list[str]:
    files = sorted((log_dir / table).glob("date=*/part-*.parquet"))
    ids: list[str] = []
    for file in files:  # every file must be whole and readable
        ids += pq.read_table(file, columns=["turn_id"]).column(0).to_pylist()
    return ids


async def load(
    server: Server,
    texts: list[str],
    seconds: float,
    users: int = 8,
    acked: dict[str, float] | None = None,
) -> tuple[dict[str, float], int]:
    """Send requests from ``users`` tasks for ``seconds`` (or until the server dies);
    turn id → ack time (monotonic), filled into ``acked`` as answers arrive."""
    acked = {} if acked is None else acked
    errors = 0
    stop = time.monotonic() + seconds

    async def user(k: int) -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=5) as c:
            i = k
            while time.monotonic() < stop:
                batch = i % 5 == 0
                body = (
                    {"texts": [texts[(i + j) % len(texts)] for j in range(3)]}
                    if batch
                    else {"text": texts[i % len(texts)]}
                )
                try:
                    r = await c.post("/v1/parse", json=body)
                except httpx.TransportError:
                    errors += 1
                    if server.process.poll() is not None:
                        return
                    continue
                now = time.monotonic()
                assert r.status_code == 200, r.text
                data = r.json()
                for result in data["results"] if batch else [data]:
                    acked[result["turn_id"]] = now
                i += users

    await asyncio.gather(*(user(k) for k in range(users)))
    return acked, errors


def test_sigkill_under_load_loses_only_turns_younger_than_the_flush_interval(
    models: Models, tmp_path: Path, serve: list[Server]
) -> None:
    server = start_server(models.v1, tmp_path, "--log-flush-interval", str(FLUSH_INTERVAL))
    serve.append(server)

    async def scenario() -> tuple[dict[str, float], float]:
        acked: dict[str, float] = {}

        async def killer() -> float:
            # Kill once 300 turns were acknowledged longer than the flush interval ago
            # (however slow a busy machine makes the load), and never before 2.5 s.
            started = time.monotonic()
            while len(acked) < 300 or time.monotonic() - started < 2.5:
                assert time.monotonic() - started < 90, "the server answered too little"
                await asyncio.sleep(0.05)
            await asyncio.sleep(FLUSH_INTERVAL + 0.5)
            killed = time.monotonic()
            os.kill(server.process.pid, signal.SIGKILL)
            return killed

        _, killed = await asyncio.gather(
            load(server, models.texts, seconds=120.0, acked=acked), killer()
        )
        return acked, killed

    acked, killed = asyncio.run(scenario())
    assert server.process.wait(10) == -signal.SIGKILL
    ids = logged(server.log_dir)
    assert len(ids) == len(set(ids)), "a turn was logged twice"
    in_log = set(ids)
    old = {t for t, at in acked.items() if at < killed - FLUSH_INTERVAL}
    young = {t for t, at in acked.items() if at >= killed - FLUSH_INTERVAL}
    assert len(old) > 200, f"too little load to test anything ({len(old)} turns)"
    lost = old - in_log
    assert not lost, (
        f"{len(lost)} of {len(old)} turns acknowledged > {FLUSH_INTERVAL} s "
        "before the kill are missing"
    )
    # (Ack times are taken when the client's loop gets to them: never earlier than the
    # real ack, so the split above errs on the safe side.)
    print(
        f"acknowledged {len(acked)}: {len(old)} older than the interval, all logged; "
        f"{len(young)} younger, {len(young - in_log)} of them lost"
    )
    # A new writer on the same directory removes what the crash left half-written.
    LogWriter(server.log_dir).close()
    assert not list(server.log_dir.rglob("*.tmp"))
    assert read_log(server.log_dir).num_rows == len(ids)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_stop_flushes_every_acknowledged_turn(
    models: Models, tmp_path: Path, serve: list[Server], sig: int
) -> None:
    # A flush interval far longer than the test: only the shutdown can write the log.
    server = start_server(models.v1, tmp_path, "--log-flush-interval", "600")
    serve.append(server)
    acked, errors = asyncio.run(load(server, models.texts, seconds=0.5, users=4))
    headers = {"Authorization": f"Bearer {API_KEY}"}
    some = sorted(acked)[:5]
    for turn_id in some:
        r = httpx.post(
            server.url + "/v1/feedback",
            headers=headers,
            json={"turn_id": turn_id, "kind": "task_success", "value": 1},
        )
        assert r.status_code == 202
    assert logged(server.log_dir) == []
    assert server.stop(sig) == 0
    assert errors == 0
    assert set(logged(server.log_dir)) == set(acked)
    assert sorted(logged(server.log_dir, "feedback")) == some


def test_a_stop_while_the_log_cannot_be_written_rescues_the_rows_and_fails(
    models: Models, tmp_path: Path, serve: list[Server]
) -> None:
    """The disk under today's partition fails: the server says it is not ready, keeps the
    answered turns buffered, and a graceful stop writes them to a rescue directory and
    exits 1 (not 0, which would tell a supervisor that everything was written)."""
    server = start_server(models.v1, tmp_path, "--log-flush-interval", "0.2")
    serve.append(server)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    (server.log_dir / "turns").mkdir(parents=True, exist_ok=True)
    (server.log_dir / "turns" / f"date={today}").write_text("a file where a folder goes")
    acked, errors = asyncio.run(load(server, models.texts, seconds=1.0, users=4))
    assert errors == 0 and len(acked) > 20
    deadline = time.monotonic() + 10
    while (ready := httpx.get(server.url + "/readyz")).status_code == 200:
        assert time.monotonic() < deadline, "/readyz stayed 200 while the log failed"
        time.sleep(0.1)
    assert ready.status_code == 503 and "turn log cannot be written" in ready.json()["error"]
    assert server.stop(signal.SIGTERM) == 1
    (rescue,) = tmp_path.glob("log.rescued-*")
    assert set(logged(rescue)) == set(acked)
    assert f"saved to {rescue}" in server.log_text()
