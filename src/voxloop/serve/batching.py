"""Dynamic micro-batching: concurrent requests share one model call.

Texts wait in a bounded queue. One asyncio task takes the first waiting text, gathers more
until the batch holds ``max_batch_size`` texts or ``max_wait`` seconds have passed since it
took the first, and runs the model on a worker thread (the event loop keeps serving while
the model works). Texts that arrive during a model call form the next batch, so batches
grow with load and a lone text waits at most ``max_wait``. When the queue is full,
`submit` raises `QueueFull` at once instead of letting memory and latency grow; so it does
when, with ``max_queue_delay`` set, texts are waiting and they and the new ones would take
longer than that to get through the model at its recent pace (a moving average of the
model time per text, measured under the current load): a slow model, or a model starved of
CPU by a flood of connections, then sheds load before its requests time out in the queue.

A text may name the model version that must parse it (an experiment arm's model); a batch
only ever holds texts for one version, so texts for different versions take turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from voxloop.schema import Parse

__all__ = ["BatchResult", "MicroBatcher", "QueueFull"]


class QueueFull(Exception):
    """The queue cannot take the texts of this request; try again later."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One text's parse, which model version produced it, and the model call's time."""

    parse: Parse
    model_version: str
    parse_ms: float
    batch_size: int


# Given the texts of one batch (and the version asked for, None for the active model),
# parse them and say which model version did.
BatchFunction = Callable[[Sequence[str], str | None], tuple[list[Parse], str]]


@dataclass(slots=True)
class _Item:
    text: str
    future: asyncio.Future[BatchResult]
    arrived: float
    version: str | None = None


class MicroBatcher:
    """Group concurrent texts into model calls of at most ``max_batch_size``."""

    def __init__(
        self,
        run: BatchFunction,
        *,
        max_batch_size: int = 32,
        max_wait: float = 0.002,
        max_queue: int = 512,
        max_queue_delay: float | None = None,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_wait < 0:
            raise ValueError("max_batch_size and max_queue must be >= 1, max_wait >= 0")
        if max_queue_delay is not None and max_queue_delay <= 0:
            raise ValueError("max_queue_delay must be > 0 seconds")
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.max_queue_delay = max_queue_delay
        self.seconds_per_text = 0.0  # moving average of model time per text (0: unknown)
        self.on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._need = 1
        self._started = False
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.in_flight = 0

    @property
    def depth(self) -> int:
        """Texts waiting for a model call (not counting the call in progress)."""
        return len(self._queue)

    async def start(self) -> None:
        """Start the batching task on the running loop."""
        if self._task is None:
            self._started = True
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="voxloop-model")
            self._task = asyncio.create_task(self._loop(), name="voxloop-batcher")

    async def stop(self) -> None:
        """Finish the waiting texts, then stop the task and the worker thread."""
        while (self._queue or self.in_flight) and self._task is not None and not self._task.done():
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, texts: Sequence[str], version: str | None = None) -> list[BatchResult]:
        """Parse ``texts`` (one request) in whatever batches they land in, with model
        ``version`` (None: the active model)."""
        if not self._started:
            raise RuntimeError("the batcher is not started")
        waiting = len(self._queue) + self.in_flight
        if len(self._queue) + len(texts) > self.max_queue:
            raise QueueFull(f"{len(self._queue)} texts are waiting (limit {self.max_queue})")
        expected = (waiting + len(texts)) * self.seconds_per_text
        # with nothing ahead, a retry would meet the same pace: parse it (or time out)
        if self.max_queue_delay is not None and waiting and expected > self.max_queue_delay:
            raise QueueFull(
                f"{waiting} texts are ahead, about {expected:.2f} s of model time "
                f"(limit {self.max_queue_delay:g} s)"
            )
        loop = asyncio.get_running_loop()
        now = loop.time()
        items = [_Item(t, loop.create_future(), now, version) for t in texts]
        self._queue.extend(items)
        if self._waiter is not None and len(self._queue) >= self._need:
            _wake(self._waiter)
        try:
            return list(await asyncio.gather(*(i.future for i in items)))
        except BaseException:
            for i in items:  # a timed-out or cancelled request gives up its place
                i.future.cancel()
            raise

    def _take(self) -> list[_Item]:
        """The next batch: waiting texts for the first text's version, in arrival order;
        texts for other versions keep their places."""
        batch: list[_Item] = []
        others: list[_Item] = []
        while self._queue and len(batch) < self.max_batch_size:
            item = self._queue.popleft()
            if item.future.done():
                continue
            if batch and item.version != batch[0].version:
                others.append(item)
            else:
                batch.append(item)
        self._queue.extendleft(reversed(others))
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                await self._wait(loop, None, need=1)
            # The wait bound counts from the first text's arrival: texts that queued up
            # during the previous model call go at once.
            remaining = self._queue[0].arrived + self.max_wait - loop.time()
            if len(self._queue) < self.max_batch_size and remaining > 0:
                await self._wait(loop, remaining, need=self.max_batch_size)
            batch = self._take()
            if batch:
                await self._call(loop, batch)

    async def _wait(
        self, loop: asyncio.AbstractEventLoop, timeout: float | None, *, need: int
    ) -> None:
        """Sleep until ``need`` texts are queued or ``timeout`` seconds have passed."""
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter, self._need = waiter, need
        timer = None
        if timeout is not None:
            timer = loop.call_later(timeout, _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def _call(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        texts = [i.text for i in batch]
        self.in_flight = len(batch)
        started = time.perf_counter()
        try:
            parses, version = await loop.run_in_executor(
                self._executor, self.run, texts, batch[0].version
            )
        except Exception as e:  # the model failed: every text of the batch fails with it
            for i in batch:
                if not i.future.done():
                    i.future.set_exception(e)
            return
        finally:
            self.in_flight = 0
        seconds = time.perf_counter() - started
        per_text = seconds / len(batch)
        self.seconds_per_text = (
            per_text if self.seconds_per_text == 0 else 0.8 * self.seconds_per_text + 0.2 * per_text
        )
        if self.on_batch is not None:
            with contextlib.suppress(Exception):  # metrics never break answering
                self.on_batch(len(batch), seconds)
        ms = seconds * 1000
        for item, parse in zip(batch, parses, strict=True):
            if not item.future.done():
                item.future.set_result(BatchResult(parse, version, ms, len(batch)))


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
