"""The Wyoming endpoint, spoken to with the `wyoming` package's own client."""

from __future__ import annotations

import asyncio
import time

from servers import Models, Server, exchange
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
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
