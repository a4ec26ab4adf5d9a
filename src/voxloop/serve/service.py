"""The online path shared by HTTP and Wyoming: texts → batched parses → logged turns.

`Service` owns the registry, the micro-batcher, the turn log and the metrics; the HTTP app
and the Wyoming handler only translate their wire formats to and from it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from voxloop.errors import ConfigError, VoxloopError
from voxloop.nlu.locales import UnsupportedLocale, default_locale, resolve_locale, with_locale
from voxloop.schema import FEEDBACK_KINDS, Feedback, Parse, Turn
from voxloop.serve.batching import MicroBatcher, QueueFull
from voxloop.serve.metrics import Metrics
from voxloop.serve.payloads import BadRequest, FeedbackRequest, Limits, ParseRequest
from voxloop.serve.registry import LoadedModel, ModelRegistry, RegistryError
from voxloop.serve.responder import Responder, Response
from voxloop.serve.routing import Route, Router

__all__ = ["Answer", "NotReady", "QueueFull", "ServeConfig", "Service"]

if TYPE_CHECKING:
    from voxloop.log.writer import LogWriter
    from voxloop.privacy.redact import Redactor

_log = logging.getLogger(__name__)


class NotReady(Exception):
    """No model is active yet (still loading, or loading failed)."""


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``voxloop serve`` can be told, validated once by `command`."""

    model: Path | None = None
    model_version: str | None = None
    model_root: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    log_dir: Path | None = None
    flush_interval: float = 1.0
    flush_rows: int = 2000
    wyoming: str | None = None
    max_batch_size: int = 32
    max_wait_ms: float = 0.0
    max_queue: int = 512
    timeout: float = 5.0
    limits: Limits = field(default_factory=Limits)
    extra_models: tuple[tuple[str | None, Path], ...] = ()
    experiments: Path | None = None
    policies: tuple[tuple[str, Path], ...] = ()
    default_policy: str | None = None
    save_policies: Path | None = None
    replay_clock: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """One answered text: its parse, the turn id it was logged under, and timings."""

    turn_id: str
    parse: Parse
    model_version: str
    parse_ms: float
    latency_ms: float
    route: Route = field(default_factory=Route)
    response: Response | None = None


def new_turn_id() -> str:
    """A random 128-bit id, 32 hex digits."""
    return uuid.uuid4().hex


class Service:
    """Parse texts with the active model, in micro-batches, and log every answer.

    ``now`` (aware UTC datetimes) stamps turns and feedback; tests pass a fixed clock.
    ``redactor`` (`voxloop.privacy`) is applied to every turn and feedback event before the
    log sees it; when it fails, the event is not logged at all (fail closed). Turns are
    redacted in batches on the log writer's thread (it becomes the writer's
    ``prepare_turns``), off the request's path; feedback (ids only) is redacted at once.
    """

    def __init__(
        self,
        config: ServeConfig,
        *,
        registry: ModelRegistry | None = None,
        writer: LogWriter | None = None,
        metrics: Metrics | None = None,
        router: Router | None = None,
        responder: Responder | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        redactor: Redactor | None = None,
    ) -> None:
        self.config = config
        self.redactor = redactor
        self.registry = registry or ModelRegistry(model_root=config.model_root)
        self.router = router or Router()
        self.responder = responder
        self.registry.pinned.update(self.router.model_versions())
        self.writer = writer
        if writer is not None and redactor is not None:
            writer.prepare_turns = self._redact_turns
        self.metrics = metrics or Metrics()
        self.now = now
        self.failure: str | None = None
        self.batcher = MicroBatcher(
            self.registry.parse,
            max_batch_size=config.max_batch_size,
            max_wait=config.max_wait_ms / 1000,
            max_queue=config.max_queue,
            # Shed load while a request can still be answered within its timeout.
            max_queue_delay=config.timeout / 2,
            on_batch=self._observe_batch,
        )
        self._register_gauges()

    # --- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        await self.batcher.start()
        if self.writer is not None:
            self.writer.start()

    async def stop(self) -> None:
        """Answer what is queued, then write the log's buffer to disk (a `DataError` when
        it cannot be: the writer saved the rows elsewhere or says they are lost)."""
        await self.batcher.stop()
        try:
            if self.writer is not None:
                await asyncio.to_thread(self.writer.close)
        finally:
            if self.responder is not None and self.config.save_policies is not None:
                saved = self.responder.save(self.config.save_policies)
                _log.info(
                    "saved %d learned policies under %s", len(saved), self.config.save_policies
                )

    @property
    def ready(self) -> bool:
        """True once a model is loaded, warmed up and active."""
        return self.registry.active is not None

    async def load(
        self, path: str | Path, version: str | None = None, *, activate: bool = False
    ) -> LoadedModel:
        """Load (and warm up) a model on a worker thread; optionally activate it."""
        model = await asyncio.to_thread(self.registry.load, path, version)
        if activate:
            self.registry.activate(model.version)
        return model

    async def load_initial(self) -> None:
        """Load ``config.model`` (activated) and ``config.extra_models``, and check that
        every experiment arm has its model and policy; record a failure and raise."""
        if self.config.model is None:
            return
        started = time.perf_counter()
        try:
            for version, path in self.config.extra_models:
                await self.load(path, version)
            model = await self.load(self.config.model, self.config.model_version)
            policies = self.responder.names if self.responder is not None else []
            self.router.check([m.version for m in self.registry.models()], policies)
            self.registry.activate(model.version)
        except (RegistryError, ConfigError) as e:
            self.failure = str(e)
            _log.error("cannot load the model: %s", e)
            raise
        _log.info(
            "model %s ready in %.3f s (load %.3f s, warm-up %.3f s)",
            model.version,
            time.perf_counter() - started,
            model.load_seconds,
            model.warmup_seconds,
        )

    # --- the online path ------------------------------------------------------------
    async def parse(
        self, request: ParseRequest, *, channel: str, started: float | None = None
    ) -> list[Answer]:
        """Parse one request's texts and log a turn for each.

        ``request.locale`` (default: the model's) must be one the model answering it serves,
        else `BadRequest` 422. Raises `NotReady`, `QueueFull`, or `TimeoutError` after
        ``config.timeout``.
        """
        started = time.perf_counter() if started is None else started
        model = self.registry.active
        if model is None:
            raise NotReady(self.failure or "the model is still loading")
        if self.router.experiments and (request.experiment or request.arm):
            raise BadRequest(
                422,
                "this server assigns experiment arms itself (--experiments): "
                "do not send 'experiment' or 'arm'",
            )
        route = self.router.route(request.user_id)
        timestamp = self._clock(request.timestamp)
        routed = next(
            (m for m in self.registry.models() if m.version == route.model_version), model
        )
        try:
            locale = resolve_locale(request.locale, routed.locales, default_locale(routed.manifest))
        except UnsupportedLocale as e:
            raise BadRequest(422, str(e)) from None
        if self.writer is not None and self.writer.backlogged:
            # the log writer is behind (a slow redactor under load): answer nothing it
            # would have to hold unwritten
            self.metrics.rejected.inc(len(request.texts), reason="log_backlog")
            raise QueueFull("the turn log is behind; try again shortly")
        try:
            async with asyncio.timeout(self.config.timeout):
                results = await self.batcher.submit(request.texts, route.model_version)
        except QueueFull:
            self.metrics.rejected.inc(len(request.texts), reason="queue_full")
            raise
        except TimeoutError:
            self.metrics.rejected.inc(len(request.texts), reason="timeout")
            raise
        chosen = []  # (turn id, parse, response): the latency counts the responses' choice
        for r in results:
            turn_id = new_turn_id()
            (parse,) = with_locale([r.parse], locale)
            response = None
            if route.policy is not None and self.responder is not None:
                response = self.responder.respond(
                    route.policy,
                    parse,
                    turn_id=turn_id,
                    timestamp=timestamp,
                    user_id=request.user_id,
                    session_id=request.session_id,
                    context=request.context,
                )
            chosen.append((turn_id, parse, response))
        latency_ms = (time.perf_counter() - started) * 1000
        answers = [
            Answer(turn_id, parse, r.model_version, r.parse_ms, latency_ms, route, response)
            for (turn_id, parse, response), r in zip(chosen, results, strict=True)
        ]
        if self.writer is not None:
            self.writer.append_turns(  # redacted by `_redact_turns` on the writer's thread
                [
                    Turn(
                        turn_id=a.turn_id,
                        timestamp=timestamp,
                        text=a.parse.text,
                        parse=a.parse,
                        model_version=a.model_version,
                        locale=locale,
                        user_id=request.user_id,
                        session_id=request.session_id,
                        experiment=a.route.experiment or request.experiment,
                        arm=a.route.arm or request.arm,
                        action=a.response.action if a.response is not None else None,
                        propensity=a.response.propensity if a.response is not None else None,
                        candidates=a.response.candidates if a.response is not None else (),
                        latency_ms=latency_ms,
                        parse_ms=a.parse_ms,
                        channel=channel,
                    )
                    for a in answers
                ]
            )
            self.metrics.turns.inc(len(answers), channel=channel)
        return answers

    def feedback(self, request: FeedbackRequest) -> bool:
        """Log a feedback event (and teach the policy that chose the turn's response);
        False when this server keeps no log."""
        signal = Feedback(
            turn_id=request.turn_id,
            timestamp=self._clock(request.timestamp),
            kind=request.kind,
            value=request.value,
            user_id=request.user_id,
        )
        if self.responder is not None:
            try:
                if self.responder.feedback(signal):
                    self.metrics.policy_updates.inc()
            except VoxloopError as e:
                raise BadRequest(422, str(e)) from None
        if self.writer is None:
            return False
        self._log_feedback(signal)
        # custom kinds share one series: clients choose them, so they must not grow
        # /metrics without bound
        self.metrics.feedback.inc(kind=request.kind if request.kind in FEEDBACK_KINDS else "other")
        return True

    def _clock(self, given: datetime | None) -> datetime:
        """The request's own time in replay mode (``--replay-clock``), else now."""
        if given is None:
            return self.now()
        if not self.config.replay_clock:
            raise BadRequest(
                422, "'timestamp' is only accepted by a server started with --replay-clock"
            )
        return given

    # --- redaction (fail closed) -----------------------------------------------------
    def _redact_turns(self, turns: list[Turn]) -> list[Turn]:
        """The turns redacted (one batch, on the log writer's thread); when the batch fails,
        turn by turn, so that only the turns that cannot be redacted are not logged."""
        assert self.redactor is not None
        try:
            return self.redactor.turns(turns)
        except Exception as e:
            if len(turns) == 1:
                self._redaction_failed(e, 1)
                return []
        return [kept for turn in turns for kept in self._redact_turns([turn])]

    def _log_feedback(self, event: Feedback) -> None:
        assert self.writer is not None
        if self.redactor is not None:
            try:
                event = self.redactor.feedback(event)
            except Exception as e:
                self._redaction_failed(e, 1)
                return
        self.writer.append_feedback(event)

    def _redaction_failed(self, error: Exception, n: int) -> None:
        """Nothing unredacted is logged: the events are counted, their content not printed."""
        self.metrics.rejected.inc(n, reason="redaction_failed")
        _log.error("redaction failed (%s): %d events not logged", type(error).__name__, n)

    # --- metrics --------------------------------------------------------------------
    def _observe_batch(self, size: int, seconds: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.parse_seconds.observe(seconds)

    def _register_gauges(self) -> None:
        m = self.metrics
        m.gauge(
            "voxloop_queue_depth",
            "Texts waiting for a model call.",
            lambda: [((), float(self.batcher.depth))],
        )
        m.gauge(
            "voxloop_ready",
            "1 once a model is loaded, warmed up and active.",
            lambda: [((), 1.0 if self.ready else 0.0)],
        )

        def model_info() -> list[tuple[tuple[tuple[str, str], ...], float]]:
            active = self.registry.active
            return [
                ((("version", model.version),), 1.0 if model is active else 0.0)
                for model in self.registry.models()
            ]

        m.gauge(
            "voxloop_model_active",
            "1 for the version taking traffic, 0 for others loaded.",
            model_info,
        )

        def log_buffered() -> list[tuple[tuple[tuple[str, str], ...], float]]:
            return [] if self.writer is None else [((), float(self.writer.buffered))]

        m.gauge("voxloop_log_buffered_rows", "Log rows in memory, not yet on disk.", log_buffered)
