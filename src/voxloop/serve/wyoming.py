"""A Wyoming protocol endpoint (what Home Assistant speaks to voice services).

``describe`` → ``info`` with one intent program whose models are the intents the active
model handles; ``recognize`` → ``intent`` (name, entities, and the turn id in its context)
or ``not-recognized``; an overloaded or not-ready server answers ``error``. The language a
``recognize`` event carries (``language``, or ``language`` in its context) picks the
locale; one the model does not serve is an ``error`` naming the locales it serves. Recognitions go
through the same micro-batcher and turn log as HTTP requests (channel ``wyoming``).

With a recognizer (``voxloop serve --recognizer``) it is also an ASR service: ``transcribe``,
``audio-start``, ``audio-chunk``... ``audio-stop`` → ``transcript`` (the turn id, intent and
n-best in its context; logged with channel ``speech``). Chunks are buffered up to
``--max-audio-seconds``; a longer utterance is answered with an ``error`` event.

A malformed event header (not JSON, not UTF-8, no ``type``, a bad or too large
``data_length``/``payload_length``) is answered with an ``error`` event naming the problem,
then that connection is closed; a client that hangs up inside an event is logged in one line.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Describe,
    Info,
    IntentModel,
    IntentProgram,
)
from wyoming.intent import Entity, Intent, NotRecognized, Recognize
from wyoming.server import AsyncEventHandler, AsyncServer

from voxloop import __version__
from voxloop.serve.jsonresponse import REFUSED
from voxloop.serve.payloads import BadRequest, ParseRequest, check_text, decode_json
from voxloop.serve.service import NotReady, QueueFull, Service

if TYPE_CHECKING:
    from voxloop.serve.recognize import SpeechEndpoint

__all__ = ["IntentHandler", "WyomingEndpoint", "describe", "read_event"]

_log = logging.getLogger(__name__)
_ATTRIBUTION = Attribution(name="voxloop", url="https://pypi.org/project/voxloop/")


def refusal(error: Exception) -> Event:
    """The Wyoming ``error`` event for a request the service refused (one of
    `voxloop.serve.jsonresponse.REFUSED`, which HTTP answers with `jsonresponse.refusal`)."""
    if isinstance(error, BadRequest):
        return Error(text=error.message, code="bad-request").event()
    if isinstance(error, NotReady):
        return Error(text=f"not ready: {error}", code="not-ready").event()
    if isinstance(error, QueueFull):
        return Error(text="overloaded: try again", code="overloaded").event()
    return Error(text="timed out", code="timeout").event()


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(400, f"{key} must be a non-negative integer, not {str(value)[:40]!r}")
    if value > limit:
        raise BadRequest(400, f"{key} is {value} bytes; the limit is {limit} bytes")
    return value


def _header(line: bytes, max_data: int, max_payload: int) -> tuple[str, dict[str, Any], int, int]:
    """The type, data and data/payload lengths one header line announces."""
    header = decode_json(line, "line")
    if not isinstance(header, dict):
        raise BadRequest(400, "not a JSON object")
    kind = header.get("type")
    if not isinstance(kind, str) or not kind:
        raise BadRequest(400, "no 'type' string")
    data = header.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise BadRequest(400, "'data' must be an object")
    return (
        kind,
        data,
        _length(header, "data_length", max_data),
        _length(header, "payload_length", max_payload),
    )


async def read_event(reader: asyncio.StreamReader, max_data: int, max_payload: int) -> Event | None:
    """The next event a client sends (None once it closed the connection): what
    `wyoming.event.async_read_event` reads, but a malformed header or data is a `BadRequest`
    naming the problem, and a stream that ends inside an event `asyncio.IncompleteReadError`."""
    try:
        line = await reader.readline()
    except ValueError:  # no newline within the stream's limit (64 KiB)
        raise BadRequest(400, "bad event header: no end of line within 64 KiB") from None
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise asyncio.IncompleteReadError(line, None)
    try:
        kind, data, data_length, payload_length = _header(line, max_data, max_payload)
    except BadRequest as e:
        raise BadRequest(400, f"bad event header: {e.message}") from None
    if data_length:
        more = await reader.readexactly(data_length)
        try:
            extra = decode_json(more, "data")
        except BadRequest as e:
            raise BadRequest(400, f"bad event data: {e.message}") from None
        if not isinstance(extra, dict):
            raise BadRequest(400, "bad event data: not a JSON object")
        data = {**data, **extra}
    payload = await reader.readexactly(payload_length) if payload_length else None
    return Event(type=kind, data=data, payload=payload)


def _audio_event(kind: Any, event: Event) -> Any:
    """``kind.from_event(event)``, a missing field a `BadRequest` naming it."""
    try:
        return kind.from_event(event)
    except KeyError as e:
        raise BadRequest(422, f"{event.type} needs the field {e.args[0]!r}") from None


def describe(service: Service, speech: SpeechEndpoint | None = None) -> Info:
    """The ``info`` answer: the intents of the active model, one `IntentModel` each (and an
    ASR program when the server has a recognizer)."""
    model = service.registry.active
    intents = model.intents if model is not None else []
    languages = model.locales if model is not None else []
    version = model.version if model is not None else None
    asr = []
    if speech is not None:
        name = getattr(speech.recognizer, "name", "asr")
        asr = [
            AsrProgram(
                name=f"voxloop-{name}",
                attribution=_ATTRIBUTION,
                installed=True,
                description=f"voxloop speech front end ({name})",
                version=__version__,
                models=[
                    AsrModel(
                        name=name,
                        attribution=_ATTRIBUTION,
                        installed=True,
                        description=f"{name} recognizer",
                        version=None,
                        languages=["en"],
                    )
                ],
            )
        ]
    return Info(
        asr=asr,
        intent=[
            IntentProgram(
                name="voxloop",
                attribution=_ATTRIBUTION,
                installed=True,
                description=f"voxloop NLU, model {version or '(loading)'}",
                version=__version__,
                models=[
                    IntentModel(
                        name=intent,
                        attribution=_ATTRIBUTION,
                        installed=True,
                        description=f"intent {intent}",
                        version=version,
                        languages=languages,
                    )
                    for intent in intents
                ],
            )
        ],
    )


class IntentHandler(AsyncEventHandler):
    """One Wyoming connection."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        service: Service,
        speech: SpeechEndpoint | None = None,
    ) -> None:
        super().__init__(reader, writer)
        self.service = service
        self.speech = speech
        self.audio = None
        if speech is not None:
            from voxloop.serve.recognize import AudioBuffer

            self.audio = AudioBuffer(speech.limits.max_seconds)

    async def run(self) -> None:
        """Answer events until the client closes the connection; a malformed event is
        answered with an ``error`` event and ends the connection (the stream cannot be
        resynchronised), a client that hangs up inside an event ends it quietly."""
        max_data = self.service.config.limits.max_body_bytes
        max_payload = self.speech.limits.max_bytes if self.speech else max_data
        peer = self.writer.get_extra_info("peername")
        peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "on a unix socket"
        self._is_running = True
        try:
            while self._is_running:
                try:
                    event = await read_event(self.reader, max_data, max_payload)
                except BadRequest as e:
                    _log.warning("Wyoming client %s: %s; closing the connection", peer, e)
                    await self.write_event(refusal(e))
                    break
                if event is None or not await self.handle_event(event):
                    break
        except asyncio.IncompleteReadError:
            _log.warning("Wyoming client %s hung up inside an event", peer)
        except ConnectionError as e:
            _log.warning("Wyoming client %s: %s", peer, e)
        finally:
            await self.disconnect()
            self.writer.close()

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(describe(self.service, self.speech).event())
        elif Recognize.is_type(event.type):
            await self.write_event(await self.recognize(event))
        elif self.audio is not None and (
            Transcribe.is_type(event.type)
            or AudioStart.is_type(event.type)
            or AudioChunk.is_type(event.type)
            or AudioStop.is_type(event.type)
        ):
            answer = await self.transcribe(event)
            if answer is not None:
                await self.write_event(answer)
        return True

    async def transcribe(self, event: Event) -> Event | None:
        """The ASR events: buffer the audio (bounded), answer ``transcript`` on audio-stop."""
        assert self.audio is not None and self.speech is not None
        try:
            if Transcribe.is_type(event.type):
                self.audio.active = False
                return None
            if AudioStart.is_type(event.type):
                start = _audio_event(AudioStart, event)
                self.audio.start(start.rate, start.width, start.channels)
                return None
            if AudioChunk.is_type(event.type):
                chunk = _audio_event(AudioChunk, event)
                self.audio.add(chunk.audio or b"", chunk.rate, chunk.width, chunk.channels)
                return None
            if self.audio.overflowed:
                self.audio.take()
                limit = self.speech.limits.max_seconds
                return Error(
                    text=f"audio longer than {limit:g} s (--max-audio-seconds)",
                    code="audio-too-long",
                ).event()
            samples = self.audio.take()
            if samples.size == 0:
                return Transcript(text="").event()
            result = await self.speech.understand(samples)
        except REFUSED as e:
            return refusal(e)
        context: dict[str, Any] = {
            "nbest": [{"text": h.text, "score": h.score} for h in result.recognition.hypotheses]
        }
        if result.answer is not None:
            parse = result.answer.parse
            context.update(
                turn_id=result.answer.turn_id,
                intent=parse.intent,
                confidence=parse.confidence,
                model_version=result.answer.model_version,
            )
        return Transcript(text=result.recognition.text, context=context).event()

    async def recognize(self, event: Event) -> Event:
        """Answer one ``recognize`` event."""
        try:
            recognize = Recognize.from_event(event)
            text = check_text(recognize.text, "text", self.service.config.limits)
            context = recognize.context or {}
            if not isinstance(context, dict):
                raise BadRequest(422, "context of recognize must be an object")
            language = event.data.get("language", context.get("language"))
            request = ParseRequest(
                texts=[text],
                batch=False,
                locale=language if isinstance(language, str) else None,
            )
            (answer,) = await self.service.parse(request, channel="wyoming")
        except (KeyError, TypeError):
            return Error(text="recognize needs a 'text' string", code="bad-request").event()
        except REFUSED as e:
            return refusal(e)
        parse = answer.parse
        reply_context: dict[str, Any] = {
            "turn_id": answer.turn_id,
            "confidence": parse.confidence,
            "model_version": answer.model_version,
        }
        if parse.intent is None:
            return NotRecognized(context=reply_context).event()
        return Intent(
            name=parse.intent,
            entities=[Entity(name=s.label, value=s.value) for s in parse.slots],
            context=reply_context,
        ).event()


class WyomingEndpoint:
    """The Wyoming server (``tcp://HOST:PORT`` or ``unix://PATH``) of a `Service`."""

    def __init__(self, uri: str, service: Service, speech: SpeechEndpoint | None = None) -> None:
        self.uri = uri
        self.service = service
        self.speech = speech
        self._server: AsyncServer | None = None

    async def start(self) -> None:
        self._server = AsyncServer.from_uri(self.uri)
        await self._server.start(partial(IntentHandler, service=self.service, speech=self.speech))
        _log.info("Wyoming endpoint on %s", self.uri)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None
