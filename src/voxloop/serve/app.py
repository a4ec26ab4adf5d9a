"""The HTTP API: a Starlette app over a `Service`.

Routes: ``POST /v1/parse``, ``POST /model/parse`` (Rasa's shape), ``POST /v1/feedback``,
``GET /healthz``, ``GET /readyz``, ``GET /metrics``, ``GET /openapi.json``, ``GET /docs``,
and the admin routes under ``/admin/models``. Every error is JSON ``{"error", "status"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxloop.errors import DataError
from voxloop.serve.auth import ApiKeys
from voxloop.serve.docs_page import docs_page
from voxloop.serve.jsonresponse import REFUSED, RETRY_AFTER, JSONResponse, error, refusal
from voxloop.serve.metrics import Metrics
from voxloop.serve.openapi import openapi_document
from voxloop.serve.payloads import (
    BadRequest,
    ParseRequest,
    decode_json,
    parse_json,
    rasa_json,
    read_feedback_request,
    read_parse_request,
    read_rasa_request,
)
from voxloop.serve.registry import RegistryError
from voxloop.serve.service import Answer, Service
from voxloop.serve.wyoming import WyomingEndpoint

if TYPE_CHECKING:
    from voxloop.serve.recognize import SpeechEndpoint

__all__ = ["create_app"]

_log = logging.getLogger(__name__)


class ObserveMiddleware:
    """Counts every request by route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.inc(route=route, status=str(status))
            self.metrics.latency.observe(time.perf_counter() - started, route=route)


def create_app(
    service: Service,
    *,
    keys: ApiKeys | None = None,
    wyoming: WyomingEndpoint | None = None,
    on_fatal: Callable[[str], None] | None = None,
    speech: SpeechEndpoint | None = None,
) -> Starlette:
    """The ASGI app. Its lifespan starts the batcher, the log writer and the Wyoming
    endpoint, loads ``service.config.model`` in the background (``/readyz`` says when it
    is ready), and on shutdown answers what is queued and flushes the log.
    With ``speech`` (a recognizer) it also serves ``POST /v1/recognize`` (`serve.recognize`);
    without, that route answers 404 naming ``--recognizer``.
    ``on_fatal`` is called with the reason when the initial model cannot be loaded."""
    keys = keys or ApiKeys()
    config = service.config
    limits = config.limits

    async def read_json(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise BadRequest(413, _too_big(int(declared), limits.max_body_bytes))
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(config.timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limits.max_body_bytes:
                        raise BadRequest(413, _too_big(size, limits.max_body_bytes))
                    chunks.append(chunk)
        except TimeoutError:
            raise BadRequest(408, f"body not received within {config.timeout:g} s") from None
        return decode_json(b"".join(chunks))

    async def answer(
        request: Request,
        read: Callable[[Any], ParseRequest],
        channel: str,
        render: Callable[[ParseRequest, list[Answer]], Any],
    ) -> Response:
        started = time.perf_counter()
        denied = keys.check_parse(request.headers)
        if denied is not None:
            return error(denied.status, denied.message)
        try:
            parse_request = read(await read_json(request))
            answers = await service.parse(parse_request, channel=channel, started=started)
        except REFUSED as e:
            return refusal(e, config.timeout)
        return JSONResponse(render(parse_request, answers))

    def render_v1(request: ParseRequest, answers: list[Answer]) -> Any:
        results = [
            parse_json(
                a.parse,
                turn_id=a.turn_id,
                model_version=a.model_version,
                latency_ms=a.latency_ms,
                parse_ms=a.parse_ms,
                experiment=a.route.experiment,
                arm=a.route.arm,
                response=a.response.to_dict() if a.response is not None else None,
            )
            for a in answers
        ]
        return {"results": results} if request.batch else results[0]

    def render_rasa(request: ParseRequest, answers: list[Answer]) -> Any:
        return rasa_json(answers[0].parse, turn_id=answers[0].turn_id)

    async def v1_parse(request: Request) -> Response:
        return await answer(request, lambda d: read_parse_request(d, limits), "http", render_v1)

    async def rasa_parse(request: Request) -> Response:
        return await answer(request, lambda d: read_rasa_request(d, limits), "rasa", render_rasa)

    async def feedback(request: Request) -> Response:
        denied = keys.check_parse(request.headers)
        if denied is not None:
            return error(denied.status, denied.message)
        try:
            fb = read_feedback_request(await read_json(request))
            kept = service.feedback(fb)
        except BadRequest as e:
            return error(e.status, e.message)
        if not kept:
            return error(503, "this server keeps no log: start it with --log-dir")
        return JSONResponse({"status": "accepted", "turn_id": fb.turn_id}, 202)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        model = service.registry.active
        if model is None:
            reason = service.failure or "loading the model"
            return error(503, f"not ready: {reason}", {"Retry-After": RETRY_AFTER})
        if service.writer is not None and service.writer.failing is not None:
            # answers would pile up unlogged: let the balancer send traffic elsewhere
            reason = f"the turn log cannot be written ({service.writer.failing})"
            return error(503, f"not ready: {reason}", {"Retry-After": RETRY_AFTER})
        return JSONResponse({"status": "ready", "model_version": model.version})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(
            service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    document = openapi_document(limits)
    page = docs_page(document)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(page)

    # --- admin ----------------------------------------------------------------------
    def admin(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            denied = keys.check_admin(request.headers)
            if denied is not None:
                return error(denied.status, denied.message)
            try:
                return await handler(request)
            except BadRequest as e:
                return error(e.status, e.message)
            except RegistryError as e:
                return error(e.status, str(e))

        return guarded

    def models_json() -> dict[str, Any]:
        active = service.registry.active
        return {
            "active": active.version if active else None,
            "models": [m.describe(m is active) for m in service.registry.models()],
        }

    async def list_models(request: Request) -> Response:
        return JSONResponse(models_json())

    async def load_model(request: Request) -> Response:
        data = await read_json(request)
        if not isinstance(data, dict):
            raise BadRequest(422, "body must be a JSON object with 'path'")
        unknown = sorted(set(data) - {"path", "version", "activate"})
        if unknown:
            raise BadRequest(
                422,
                f"unknown field {', '.join(map(repr, unknown))} (allowed: path, version, activate)",
            )
        path, version, activate = data.get("path"), data.get("version"), data.get("activate")
        if not isinstance(path, str) or not path:
            raise BadRequest(422, "path must be the model directory, a string")
        if version is not None and not isinstance(version, str):
            raise BadRequest(422, "version must be a string")
        if activate is not None and not isinstance(activate, bool):
            raise BadRequest(422, "activate must be true or false")
        model = await service.load(path, version, activate=bool(activate))
        _log.info("loaded model %s from %s", model.version, model.path)
        return JSONResponse(model.describe(model is service.registry.active), 201)

    async def activate_model(request: Request) -> Response:
        model = service.registry.activate(request.path_params["version"])
        _log.info("model %s now takes traffic", model.version)
        return JSONResponse(model.describe(True))

    async def unload_model(request: Request) -> Response:
        service.registry.unload(request.path_params["version"])
        return JSONResponse(models_json())

    # --- lifespan -------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        if wyoming is not None:
            await wyoming.start()

        async def load() -> None:
            try:
                await service.load_initial()
            except Exception as e:
                _log.error("the model could not be loaded: %s", e)
                if on_fatal is not None:
                    on_fatal(str(e))

        loading = asyncio.create_task(load(), name="voxloop-load-model")
        try:
            yield
        finally:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            if wyoming is not None:
                await wyoming.stop()
            try:
                await service.stop()
            except DataError as e:  # the log's last rows could not be written
                _log.error("%s", e)
                if on_fatal is not None:
                    on_fatal(str(e))  # the process exits with status 1, not 0
            else:
                if service.writer is not None:
                    _log.info("turn log flushed: %d rows in total", service.writer.rows_written)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, exc.detail, dict(exc.headers or {}))

    async def server_error(request: Request, exc: Exception) -> Response:
        _log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return error(500, f"internal error: {type(exc).__name__}")

    app = Starlette(
        routes=[
            Route("/v1/parse", v1_parse, methods=["POST"]),
            Route("/model/parse", rasa_parse, methods=["POST"]),
            Route("/v1/feedback", feedback, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
            Route("/docs", docs, methods=["GET"], include_in_schema=False),
            Route("/admin/models", admin(list_models), methods=["GET"]),
            Route("/admin/models", admin(load_model), methods=["POST"]),
            Route("/admin/models/{version}/activate", admin(activate_model), methods=["POST"]),
            Route("/admin/models/{version}", admin(unload_model), methods=["DELETE"]),
            _recognize_route(speech, keys),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.add_middleware(ObserveMiddleware, metrics=service.metrics)
    return app


def _recognize_route(speech: SpeechEndpoint | None, keys: ApiKeys) -> Route:
    """``POST /v1/recognize``; without a recognizer it answers 404 saying how to get one
    (the route stays in ``/openapi.json``, which says it needs ``--recognizer``)."""
    if speech is None:

        async def no_recognizer(request: Request) -> Response:
            return error(404, "no speech recognizer: start the server with --recognizer")

        return Route("/v1/recognize", no_recognizer, methods=["POST"])
    from voxloop.serve.recognize import recognize_route

    return recognize_route(speech, keys)


def _too_big(size: int, limit: int) -> str:
    return f"body has {size} bytes; the limit is {limit} (--max-body-bytes)"
