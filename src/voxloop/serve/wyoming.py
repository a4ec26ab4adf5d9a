"""A Wyoming protocol endpoint (what Home Assistant speaks to voice services).

``describe`` → ``info`` with one intent program whose models are the intents the active
model handles; ``recognize`` → ``intent`` (name, entities, and the turn id in its context)
or ``not-recognized``; an overloaded or not-ready server answers ``error``. Recognitions go
through the same micro-batcher and turn log as HTTP requests (channel ``wyoming``).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, IntentModel, IntentProgram
from wyoming.intent import Entity, Intent, NotRecognized, Recognize
from wyoming.server import AsyncEventHandler, AsyncServer

from voxloop import __version__
from voxloop.serve.payloads import BadRequest, ParseRequest, check_text
from voxloop.serve.service import NotReady, QueueFull, Service

__all__ = ["IntentHandler", "WyomingEndpoint", "describe"]

_log = logging.getLogger(__name__)
_ATTRIBUTION = Attribution(name="voxloop", url="https://pypi.org/project/voxloop/")


def describe(service: Service) -> Info:
    """The ``info`` answer: the intents of the active model, one `IntentModel` each."""
    model = service.registry.active
    intents = model.intents if model is not None else []
    languages = model.locales if model is not None else []
    version = model.version if model is not None else None
    return Info(
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
        ]
    )


class IntentHandler(AsyncEventHandler):
    """One Wyoming connection."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, service: Service
    ) -> None:
        super().__init__(reader, writer)
        self.service = service

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(describe(self.service).event())
        elif Recognize.is_type(event.type):
            await self.write_event(await self.recognize(event))
        return True

    async def recognize(self, event: Event) -> Event:
        """Answer one ``recognize`` event."""
        try:
            recognize = Recognize.from_event(event)
            text = check_text(recognize.text, "text", self.service.config.limits)
            context = recognize.context or {}
            language = context.get("language")
            request = ParseRequest(
                texts=[text],
                batch=False,
                locale=language if isinstance(language, str) else None,
            )
            (answer,) = await self.service.parse(request, channel="wyoming")
        except (KeyError, TypeError):
            return Error(text="recognize needs a 'text' string", code="bad-request").event()
        except BadRequest as e:
            return Error(text=e.message, code="bad-request").event()
        except NotReady as e:
            return Error(text=f"not ready: {e}", code="not-ready").event()
        except QueueFull:
            return Error(text="overloaded: try again", code="overloaded").event()
        except TimeoutError:
            return Error(text="timed out", code="timeout").event()
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

    def __init__(self, uri: str, service: Service) -> None:
        self.uri = uri
        self.service = service
        self._server: AsyncServer | None = None

    async def start(self) -> None:
        self._server = AsyncServer.from_uri(self.uri)
        await self._server.start(partial(IntentHandler, service=self.service))
        _log.info("Wyoming endpoint on %s", self.uri)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None
