"""Micro-batching: in-process checks of the batcher, then batches and back-pressure on a
real server."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from servers import API_KEY, Models, Server, start_server

from voxloop.schema import Parse
from voxloop.serve.batching import MicroBatcher, QueueFull


class Recorder:
    """A stand-in model that records the batches it is given."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.versions: list[str | None] = []
        self.delay = delay
        self.fail = fail
        self.calls = threading.Event()

    def __call__(self, texts: Sequence[str], version: str | None = None) -> tuple[list[Parse], str]:
        self.batches.append(list(texts))
        self.versions.append(version)
        self.calls.set()
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model broke")
        return [Parse(t, "Echo", 1.0, (), ()) for t in texts], version or "test"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_a_lone_text_waits_at_most_max_wait() -> None:
    model = Recorder()

    async def go() -> float:
        batcher = MicroBatcher(model, max_batch_size=32, max_wait=0.05)
        await batcher.start()
        started = time.perf_counter()
        (result,) = await batcher.submit(["hello"])
        elapsed = time.perf_counter() - started
        assert result.parse.text == "hello" and result.model_version == "test"
        await batcher.stop()
        return elapsed

    elapsed = run(go())
    assert 0.04 <= elapsed < 0.05 + 0.04
    assert model.batches == [["hello"]]


def test_concurrent_texts_share_one_model_call() -> None:
    model = Recorder()

    async def go() -> None:
        batcher = MicroBatcher(model, max_batch_size=32, max_wait=0.05)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit([f"t{i}"]) for i in range(10)))
        assert [r[0].parse.text for r in results] == [f"t{i}" for i in range(10)]
        assert all(r[0].batch_size == 10 for r in results)
        await batcher.stop()

    run(go())
    assert len(model.batches) == 1


def test_a_batch_holds_texts_for_one_model_version_only() -> None:
    model = Recorder()

    async def go() -> None:
        batcher = MicroBatcher(model, max_batch_size=32, max_wait=0.05)
        await batcher.start()
        asked = ["a", None, "a", "b", None]
        results = await asyncio.gather(
            *(batcher.submit([f"t{i}"], version) for i, version in enumerate(asked))
        )
        assert [r[0].model_version for r in results] == ["a", "test", "a", "b", "test"]
        await batcher.stop()

    run(go())
    assert sorted(map(str, model.versions)) == ["None", "a", "b"]  # one call per version
    by_version = dict(zip(model.versions, model.batches, strict=True))
    assert by_version["a"] == ["t0", "t2"] and by_version[None] == ["t1", "t4"]


def test_a_full_batch_goes_without_waiting() -> None:
    model = Recorder()

    async def go() -> float:
        batcher = MicroBatcher(model, max_batch_size=4, max_wait=10.0)
        await batcher.start()
        started = time.perf_counter()
        await asyncio.gather(*(batcher.submit([f"t{i}"]) for i in range(8)))
        await batcher.stop()
        return time.perf_counter() - started

    assert run(go()) < 1.0
    assert [len(b) for b in model.batches] == [4, 4]


def test_the_wait_bound_counts_from_arrival_so_texts_queued_during_a_call_go_next() -> None:
    model = Recorder(delay=0.5)

    async def go() -> float:
        batcher = MicroBatcher(model, max_batch_size=32, max_wait=0.3)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit(["a"] * 32))  # a full batch: goes now
        while not model.calls.is_set():
            await asyncio.sleep(0.001)
        started = time.perf_counter()
        await batcher.submit(["b"])  # waits out the running call (0.5 s > max_wait) ...
        await first
        await batcher.stop()
        return time.perf_counter() - started

    # ... then goes at once: 0.5 + 0.5, not 0.5 + another 0.3 of waiting + 0.5.
    assert run(go()) < 1.15
    assert model.batches[1] == ["b"]


def test_a_full_queue_refuses_at_once() -> None:
    async def go() -> None:
        batcher = MicroBatcher(Recorder(), max_batch_size=32, max_wait=0.2, max_queue=3)
        await batcher.start()
        waiting = asyncio.ensure_future(batcher.submit(["a", "b"]))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit(["c", "d"])
        assert len(await waiting) == 2
        await batcher.stop()

    run(go())


def test_texts_that_would_wait_past_the_delay_bound_are_refused() -> None:
    # 0.1 s per text, one text per call: with 0.25 s allowed, two texts may wait (one in
    # the model, one queued), a third would wait ~0.3 s and is refused at once.
    model = Recorder(delay=0.1)

    async def go() -> None:
        batcher = MicroBatcher(model, max_batch_size=1, max_wait=0.0, max_queue_delay=0.25)
        await batcher.start()
        await batcher.submit(["measures the pace"])
        assert batcher.seconds_per_text == pytest.approx(0.1, abs=0.05)
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(batcher.submit(["b"]))
        await asyncio.sleep(0)
        started = time.perf_counter()
        with pytest.raises(QueueFull, match="limit 0.25 s"):
            await batcher.submit(["c"])
        assert time.perf_counter() - started < 0.05  # refused, not queued
        assert [r.parse.text for r in await first + await second] == ["a", "b"]
        await batcher.stop()

    run(go())


def test_a_batch_alone_in_the_queue_is_parsed_however_slow_the_pace() -> None:
    # 0.1 s per text: four texts need ~0.4 s, over the 0.25 s bound, but nothing is ahead
    # of them, so refusing them (a retryable 503) could never end otherwise
    model = Recorder(delay=0.1)

    async def go() -> None:
        batcher = MicroBatcher(model, max_batch_size=4, max_wait=0.0, max_queue_delay=0.25)
        await batcher.start()
        await batcher.submit(["measures the pace"])
        results = await batcher.submit(["a", "b", "c", "d"])
        assert [r.parse.text for r in results] == ["a", "b", "c", "d"]
        await batcher.stop()

    run(go())


def test_a_model_failure_fails_its_batch_and_the_next_batch_works() -> None:
    model = Recorder(fail=True)

    async def go() -> None:
        batcher = MicroBatcher(model, max_batch_size=8, max_wait=0.0)
        await batcher.start()
        with pytest.raises(RuntimeError, match="model broke"):
            await batcher.submit(["x"])
        model.fail = False
        assert (await batcher.submit(["y"]))[0].parse.text == "y"
        await batcher.stop()

    run(go())


def test_a_request_that_times_out_gives_up_its_place() -> None:
    model = Recorder(delay=0.2)

    async def go() -> None:
        batcher = MicroBatcher(model, max_batch_size=1, max_wait=0.0)
        await batcher.start()
        slow = asyncio.ensure_future(batcher.submit(["first"]))
        await asyncio.sleep(0.01)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await batcher.submit(["abandoned"])
        await slow
        assert (await batcher.submit(["next"]))[0].parse.text == "next"
        await batcher.stop()

    run(go())
    assert ["abandoned"] not in model.batches


# --- on a real server -------------------------------------------------------------------


def metric(text: str, name: str) -> float:
    """The value of one sample (name with labels, as printed)."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def concurrent_parses(url: str, texts: list[str]) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        return await asyncio.gather(*(client.post("/v1/parse", json={"text": t}) for t in texts))


def test_concurrent_requests_share_batches(server: Server, models: Models) -> None:
    before = httpx.get(server.url + "/metrics").text
    responses = asyncio.run(concurrent_parses(server.url, models.texts[:100]))
    assert all(r.status_code == 200 for r in responses)
    after = httpx.get(server.url + "/metrics").text
    texts = metric(after, "voxloop_batch_size_sum") - metric(before, "voxloop_batch_size_sum")
    batches = metric(after, "voxloop_batch_size_count") - metric(before, "voxloop_batch_size_count")
    assert texts == 100
    assert batches < 50, f"100 concurrent requests took {batches} model calls"
    singles = metric(after, 'voxloop_batch_size_bucket{le="1"}') - metric(
        before, 'voxloop_batch_size_bucket{le="1"}'
    )
    assert singles < batches


def test_a_full_queue_answers_503_with_retry_after(
    models: Models, tmp_path: Path, serve: list[Server]
) -> None:
    # A batch waits 300 ms to fill and the queue holds 4 texts: of 12 concurrent
    # requests some must be refused, at once, while the others are answered.
    server = start_server(
        models.v1,
        tmp_path,
        "--max-queue",
        "4",
        "--max-batch-size",
        "64",
        "--max-wait-ms",
        "300",
        "--log-flush-interval",
        "0.2",
    )
    serve.append(server)
    responses = asyncio.run(concurrent_parses(server.url, models.texts[:12]))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) == {200, 503}, codes
    for r in responses:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1"
            assert "overloaded" in r.json()["error"]
    assert asyncio.run(concurrent_parses(server.url, models.texts[:1]))[0].status_code == 200
    text = httpx.get(server.url + "/metrics").text
    refused = codes.count(503)
    assert metric(text, 'voxloop_rejected_total{reason="queue_full"}') == refused
    assert metric(text, 'voxloop_requests_total{route="/v1/parse",status="503"}') == refused
    assert server.stop() == 0
    from voxloop.log.writer import read_log

    assert read_log(server.log_dir).num_rows == codes.count(200) + 1  # refused: not logged
