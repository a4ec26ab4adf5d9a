"""Speech on the server: ``POST /v1/recognize`` and the Wyoming ASR session.

Audio in (a WAV, FLAC or OGG body over HTTP; raw PCM chunks over Wyoming) → the recognizer
(on a worker thread, one clip at a time, at most ``max_pending`` waiting, beyond that
503 / an ``error`` event) → the best transcript parsed through the `Service` (micro-batched,
logged as a turn with channel ``speech``). Audio longer than ``max_seconds`` is refused,
from the WAV header or as the Wyoming chunks arrive, so memory stays bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voxloop.errors import ConfigError, VoxloopError
from voxloop.serve.auth import ApiKeys
from voxloop.serve.jsonresponse import REFUSED, JSONResponse, error, refusal
from voxloop.serve.payloads import BadRequest, ParseRequest, parse_json
from voxloop.serve.service import Answer, NotReady, QueueFull, Service

__all__ = [
    "AudioBuffer",
    "SpeechEndpoint",
    "SpeechLimits",
    "add_speech_arguments",
    "recognize_route",
    "speech_from_args",
]

_log = logging.getLogger(__name__)
_QUERY = ("user_id", "session_id", "locale")


@dataclass(frozen=True)
class SpeechLimits:
    """The ``--max-audio-*`` options."""

    max_seconds: float = 30.0
    max_bytes: int = 8 * 1024 * 1024
    max_pending: int = 4


@dataclass(frozen=True)
class SpeechAnswer:
    """One recognised clip: the recognition, and the parse when something was heard."""

    recognition: Any  # voxloop.speech.Recognition
    answer: Answer | None
    latency_ms: float

    def to_json(self) -> dict[str, Any]:
        rec = self.recognition
        parse = None
        if self.answer is not None:
            a = self.answer
            parse = parse_json(
                a.parse,
                turn_id=a.turn_id,
                model_version=a.model_version,
                latency_ms=a.latency_ms,
                parse_ms=a.parse_ms,
            )
        return {
            "transcript": rec.text,
            "nbest": [
                {"text": h.text, "raw": h.raw, "score": round(h.score, 4)} for h in rec.hypotheses
            ],
            "parse": parse,
            "turn_id": self.answer.turn_id if self.answer else None,
            "recognizer": rec.recognizer,
            "audio_seconds": round(rec.audio_seconds, 3),
            "recognize_ms": round(rec.seconds * 1000, 3),
            "latency_ms": round(self.latency_ms, 3),
        }


class SpeechEndpoint:
    """A recognizer in front of a `Service`; shared by HTTP and Wyoming."""

    def __init__(
        self, service: Service, recognizer: Any, limits: SpeechLimits | None = None
    ) -> None:
        self.service = service
        self.recognizer = recognizer
        self.limits = limits or SpeechLimits()
        self._pending = 0

    async def understand(
        self,
        samples: npt.NDArray[np.float32],
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        locale: str | None = None,
        started: float | None = None,
    ) -> SpeechAnswer:
        """Recognise, then parse and log the best transcript (channel ``speech``).

        Raises `QueueFull` when ``max_pending`` clips already wait, `NotReady` without a
        model, `TimeoutError` past the service timeout for the parse.
        """
        started = time.perf_counter() if started is None else started
        if not self.service.ready:
            raise NotReady(self.service.failure or "the model is still loading")
        if self._pending >= self.limits.max_pending:
            self.service.metrics.rejected.inc(reason="speech_queue_full")
            raise QueueFull(f"{self._pending} audio clips are waiting for the recognizer")
        self._pending += 1
        try:
            recognition = await asyncio.to_thread(self.recognizer.recognize, samples)
        finally:
            self._pending -= 1
        answer = None
        if recognition.text:
            request = ParseRequest(
                texts=[recognition.text[: self.service.config.limits.max_text_chars]],
                batch=False,
                user_id=user_id,
                session_id=session_id,
                locale=locale,
            )
            (answer,) = await self.service.parse(request, channel="speech", started=started)
        return SpeechAnswer(recognition, answer, (time.perf_counter() - started) * 1000)


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    declared = request.headers.get("content-length")
    too_big = f"audio body over {limit} bytes (--max-audio-bytes)"
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, too_big)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BadRequest(413, too_big)
                chunks.append(chunk)
    except TimeoutError:
        raise BadRequest(408, f"body not received within {timeout:g} s") from None
    return b"".join(chunks)


def _query_ids(request: Request) -> dict[str, str | None]:
    unknown = sorted(set(request.query_params) - set(_QUERY))
    if unknown:
        raise BadRequest(
            422,
            f"unknown query parameter {', '.join(map(repr, unknown))} "
            f"(allowed: {', '.join(_QUERY)})",
        )
    out: dict[str, str | None] = {}
    for name in _QUERY:
        value = request.query_params.get(name)
        if value is not None and not 1 <= len(value) <= 256:
            raise BadRequest(422, f"{name} must have 1 to 256 characters")
        out[name] = value
    return out


def recognize_route(speech: SpeechEndpoint, keys: ApiKeys) -> Route:
    """``POST /v1/recognize``: body = a WAV/FLAC/OGG file; ids as query parameters."""
    from voxloop.speech.audio import AudioError, decode_audio

    service = speech.service

    async def recognize(request: Request) -> Response:
        started = time.perf_counter()
        denied = keys.check_parse(request.headers)
        if denied is not None:
            return error(denied.status, denied.message)
        timeout = service.config.timeout
        try:
            ids = _query_ids(request)
            body = await _read_body(request, speech.limits.max_bytes, timeout)
            try:
                samples = await asyncio.to_thread(
                    decode_audio, body, max_seconds=speech.limits.max_seconds, name="body"
                )
            except AudioError as e:
                status = 413 if "limit is" in e.problem else 422
                raise BadRequest(status, str(e)) from None
            result = await speech.understand(samples, started=started, **ids)
        except REFUSED as e:
            return refusal(e, timeout)
        return JSONResponse(result.to_json())

    return Route("/v1/recognize", recognize, methods=["POST"])


class AudioBuffer:
    """PCM chunks of one Wyoming utterance, bounded: past ``max_seconds`` further chunks
    are dropped and `overflowed` is set (the answer is then an error, not a transcript)."""

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds
        self.rate = 16000
        self.width = 2
        self.channels = 1
        self.chunks: list[bytes] = []
        self.size = 0
        self.overflowed = False
        self.active = False

    def start(self, rate: int, width: int, channels: int) -> None:
        def whole(value: object, low: int, high: int) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

        if not whole(rate, 1000, 384_000):
            raise BadRequest(422, f"audio rate must be 1000-384000 Hz, got {rate!r}")
        if not whole(width, 1, 4) or width == 3:
            raise BadRequest(422, f"audio width must be 1, 2 or 4 bytes, got {width!r}")
        if not whole(channels, 1, 16):
            raise BadRequest(422, f"audio channels must be 1-16, got {channels!r}")
        self.rate, self.width, self.channels = rate, width, channels
        self.chunks, self.size, self.overflowed, self.active = [], 0, False, True

    @property
    def limit(self) -> int:
        return int(self.max_seconds * self.rate) * self.width * self.channels

    def add(self, audio: bytes, rate: int, width: int, channels: int) -> None:
        if not self.active:
            self.start(rate, width, channels)
        if (rate, width, channels) != (self.rate, self.width, self.channels):
            raise BadRequest(422, "audio-chunk format changed within one utterance")
        if self.overflowed:
            return
        if self.size + len(audio) > self.limit:
            self.overflowed = True
            self.chunks = []
            return
        self.chunks.append(audio)
        self.size += len(audio)

    def take(self) -> npt.NDArray[np.float32]:
        """The utterance as 16 kHz mono float32; resets the buffer."""
        from voxloop.speech.audio import pcm_to_float

        pcm = b"".join(self.chunks)
        self.chunks, self.size, self.active = [], 0, False
        return pcm_to_float(pcm, rate=self.rate, width=self.width, channels=self.channels)


def add_speech_arguments(parser: argparse.ArgumentParser) -> None:
    """The speech options of ``voxloop serve``."""
    from voxloop.speech.command import RECOGNIZER_SPECS

    p = parser
    p.add_argument(
        "--recognizer",
        metavar="SPEC",
        help="serve POST /v1/recognize and Wyoming ASR with this recognizer (needs "
        f"voxloop[speech]): {RECOGNIZER_SPECS}",
    )
    p.add_argument(
        "--speech-bias",
        metavar="FORMAT:PATH",
        help="bias the recognizer toward the utterances of this corpus (its train split)",
    )
    p.add_argument(
        "--max-audio-seconds",
        type=float,
        default=SpeechLimits.max_seconds,
        metavar="SECONDS",
        help="longest audio clip (default: %(default)s)",
    )
    p.add_argument(
        "--max-audio-bytes",
        type=int,
        default=SpeechLimits.max_bytes,
        metavar="N",
        help="largest audio body (default: %(default)s)",
    )


def speech_from_args(args: argparse.Namespace, service: Service) -> SpeechEndpoint | None:
    """The `SpeechEndpoint` the options ask for (None without ``--recognizer``, whose
    options are then refused rather than ignored)."""
    if not getattr(args, "recognizer", None):
        given = [
            option
            for option, value, default in (
                ("--speech-bias", args.speech_bias, None),
                ("--max-audio-seconds", args.max_audio_seconds, SpeechLimits.max_seconds),
                ("--max-audio-bytes", args.max_audio_bytes, SpeechLimits.max_bytes),
            )
            if value != default
        ]
        if given:
            raise ConfigError("only with --recognizer", key=", ".join(given))
        return None
    for key in ("max_audio_seconds", "max_audio_bytes"):
        if not getattr(args, key) > 0:
            raise ConfigError(
                f"must be positive, got {getattr(args, key)}", key="--" + key.replace("_", "-")
            )
    from voxloop.speech.bias import Bias
    from voxloop.speech.recognizers import load_recognizer

    bias = None
    if args.speech_bias:
        from voxloop.data import load_corpus

        try:
            train = load_corpus(args.speech_bias).split("train")
        except VoxloopError as e:
            raise ConfigError(str(e), key="--speech-bias") from None
        bias = Bias.from_texts(u.text for u in train)
    recognizer = load_recognizer(args.recognizer, bias=bias)
    _log.info("recognizer %s loaded", args.recognizer)
    return SpeechEndpoint(
        service,
        recognizer,
        SpeechLimits(max_seconds=args.max_audio_seconds, max_bytes=args.max_audio_bytes),
    )
