"""The Wyoming endpoint, spoken to with the `wyoming` package's own client."""

from __future__ import annotations

import asyncio
import time

import pytest
from servers import Models, Server, exchange
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event, async_read_event
from wyoming.info import Describe, Info
from wyoming.intent import Intent, NotRecognized, Recognize

from voxloop.log.writer import read_log
from voxloop.nlu.base import load_parser


def test_describe_lists_the_intents_the_model_handles(server: Server) -> None:
    answer = asyncio.run(exchange(server, Describe().event()))
    assert Info.is_type(answer.type)
    info = Info.from_event(answer)
    (program,) = info.intent
    assert program.name == "voxloop" and program.installed
    intents = {m.name for m in program.models}
    assert {"HassTurnOn", "HassTurnOff", "HassClimateSetTemperature"} <= intents
    assert all(m.version == "v1" and m.languages == ["en-US"] for m in program.models)


def test_recognize_answers_intent_with_entities(server: Server, models: Models) -> None:
    text = "turn off the kitchen light"
    answer = asyncio.run(exchange(server, Recognize(text=text).event()))
    assert Intent.is_type(answer.type), answer
    intent = Intent.from_event(answer)
    assert intent.name == "HassTurnOff"
    (parsed,) = load_parser(models.v1).parse([text])  # the spans may differ between CPUs
    expected = [(s.label, s.value) for s in parsed.slots]
    assert [(e.name, e.value) for e in intent.entities] == expected
    assert any(e.name == "area" for e in intent.entities)
    assert intent.context is not None and intent.context["model_version"] == "v1"
    turn_id = intent.context["turn_id"]
    deadline = time.monotonic() + 5
    while turn_id not in read_log(server.log_dir).column("turn_id").to_pylist():
        assert time.monotonic() < deadline, "the Wyoming turn was not logged"
        time.sleep(0.05)
    (row,) = [r for r in read_log(server.log_dir).to_pylist() if r["turn_id"] == turn_id]
    assert row["channel"] == "wyoming"


def test_recognize_answers_not_recognized_below_the_threshold(server: Server) -> None:
    answer = asyncio.run(exchange(server, Recognize(text="xq zzv blorp").event()))
    assert NotRecognized.is_type(answer.type), answer
    assert NotRecognized.from_event(answer).context["turn_id"]  # type: ignore[index]


def test_bad_recognize_is_an_error_event_and_the_connection_stays_usable(
    server: Server,
) -> None:
    async def go() -> tuple[Event, Event]:
        assert server.wyoming_port is not None
        async with AsyncTcpClient("127.0.0.1", server.wyoming_port, read_timeout=10) as client:
            await client.write_event(Recognize(text="   ").event())
            first = await client.read_event()
            await client.write_event(Recognize(text="turn on the light").event())
            second = await client.read_event()
        assert first is not None and second is not None
        return first, second

    first, second = asyncio.run(go())
    assert Error.is_type(first.type) and "whitespace" in Error.from_event(first).text
    assert Intent.is_type(second.type)


def test_several_clients_at_once(server: Server) -> None:
    texts = ["turn on the light", "turn off the fan", "what time is it", "lock the door"] * 5

    async def go() -> list[Event]:
        return await asyncio.gather(*(exchange(server, Recognize(text=t).event()) for t in texts))

    answers = asyncio.run(go())
    assert all(Intent.is_type(a.type) or NotRecognized.is_type(a.type) for a in answers)


MALFORMED = [
    pytest.param(b"hello\n", "bad event header: malformed JSON", id="not-json"),
    pytest.param(b'{"data": {"text": "hi"}}\n', "bad event header: no 'type' string", id="no-type"),
    pytest.param(b'{"type": 5}\n', "no 'type' string", id="type-not-a-string"),
    pytest.param(
        b'{"type": "recognize", "data": {"text": "caf\xe9"}}\n',
        "bad event header: line is not valid UTF-8 (byte 43)",
        id="not-utf8",
    ),
    pytest.param(b'["recognize"]\n', "bad event header: not a JSON object", id="array"),
    pytest.param(b'{"type": "recognize", "data": 5}\n', "'data' must be an object", id="data"),
    pytest.param(
        b'{"type": "recognize", "data_length": "5"}\n',
        "data_length must be a non-negative integer, not '5'",
        id="data-length-type",
    ),
    pytest.param(
        b'{"type": "audio-chunk", "payload_length": -1}\n',
        "payload_length must be a non-negative integer",
        id="payload-length-negative",
    ),
    pytest.param(
        b'{"type": "recognize", "data_length": 100000000}\n',
        "data_length is 100000000 bytes; the limit is 65536 bytes",
        id="data-length-over-the-limit",
    ),
    pytest.param(
        b'{"type": "recognize", "data_length": 5}\n[1,2]',
        "bad event data: not a JSON object",
        id="data-not-an-object",
    ),
]


async def _raw(server: Server, raw: bytes, *, hang_up: bool = False) -> list[Event]:
    """Send bytes as they are; the events the server answers until it closes the connection."""
    assert server.wyoming_port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.wyoming_port)
    writer.write(raw)
    await writer.drain()
    if hang_up:
        writer.write_eof()
    events = []
    async with asyncio.timeout(10):
        while (event := await async_read_event(reader)) is not None:
            events.append(event)
    writer.close()
    return events


def _log_since(server: Server, offset: int, expected: str) -> str:
    deadline = time.monotonic() + 5
    while expected not in (text := server.log_text()[offset:]):
        assert time.monotonic() < deadline, f"{expected!r} not in the server log:\n{text}"
        time.sleep(0.05)
    return text


@pytest.mark.parametrize(("raw", "message"), MALFORMED)
def test_a_malformed_event_is_answered_with_an_error_event_and_the_connection_closed(
    server: Server, raw: bytes, message: str
) -> None:
    offset = len(server.log_text())
    (answer,) = asyncio.run(_raw(server, raw))  # then the server closed the connection
    assert Error.is_type(answer.type), answer
    error = Error.from_event(answer)
    assert message in error.text and error.code == "bad-request"
    log = _log_since(server, offset, "closing the connection")
    assert message in log and "Traceback" not in log
    assert Info.is_type(asyncio.run(exchange(server, Describe().event())).type)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type": "recognize", "data_length": 100}\n{"text"',
        b'{"type": "audio-chunk", "payload_length": 100}\nabc',
        b'{"type": "describe"',
    ],
    ids=["data", "payload", "header"],
)
def test_a_client_hanging_up_inside_an_event_is_one_log_line(server: Server, raw: bytes) -> None:
    offset = len(server.log_text())
    assert asyncio.run(_raw(server, raw, hang_up=True)) == []
    log = _log_since(server, offset, "hung up inside an event")
    assert len(log.strip().splitlines()) == 1, log
    assert Info.is_type(asyncio.run(exchange(server, Describe().event())).type)


def test_recognize_with_a_context_that_is_not_an_object_is_an_error_event(
    server: Server,
) -> None:
    event = Event(type="recognize", data={"text": "turn on the light", "context": "kitchen"})
    answer = asyncio.run(exchange(server, event))
    assert Error.is_type(answer.type), answer
    assert Error.from_event(answer).text == "context of recognize must be an object"
