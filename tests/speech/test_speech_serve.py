"""POST /v1/recognize over a real socket, and Wyoming ASR over a real TCP connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from servers import API_KEY, Server, start_server
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info

from conftest import wav_bytes
from voxloop.log.writer import read_log
from voxloop.speech.audio import to_pcm16
from voxloop.speech.wer import word_error_rate


@pytest.fixture(scope="module")
def server(hass_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(
        hass_model,
        tmp_path_factory.mktemp("speech-server"),
        "--recognizer",
        "whisper",
        "--speech-bias",
        "hass:en",
        "--max-audio-seconds",
        "10",
        "--log-flush-interval",
        "0.3",
        "--timeout",
        "30",
        wyoming=True,
    )
    yield s
    s.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "audio/wav"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
        yield c


def logged_row(server: Server, turn_id: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 10
    while True:
        if server.log_dir.exists():
            rows = [r for r in read_log(server.log_dir).to_pylist() if r["turn_id"] == turn_id]
            if rows:
                return rows[0]
        assert time.monotonic() < deadline, "the speech turn was not logged"
        time.sleep(0.1)


def test_recognize_wav_answers_transcript_nbest_parse_and_logs_a_speech_turn(
    server: Server, client: httpx.Client, spoken
) -> None:  # type: ignore[no-untyped-def]
    text, samples = spoken[0]  # "turn off the kitchen light"
    r = client.post("/v1/recognize?user_id=u7", content=wav_bytes(samples, 16000))
    assert r.status_code == 200, r.text
    body = r.json()
    heard = body["transcript"]
    assert word_error_rate([text], [heard]) <= 0.2, heard
    assert body["nbest"][0]["text"] == heard and len(body["nbest"]) >= 1
    assert body["parse"]["text"] == heard and body["turn_id"] == body["parse"]["turn_id"]
    same = client.post(
        "/v1/parse", json={"text": heard}, headers={"Content-Type": "application/json"}
    )
    assert body["parse"]["intent"] == same.json()["intent"]
    row = logged_row(server, body["turn_id"])
    assert row["channel"] == "speech" and row["text"] == heard and row["user_id"] == "u7"


def test_other_rates_and_flac_are_resampled(client: httpx.Client, spoken) -> None:  # type: ignore[no-untyped-def]
    from voxloop.speech.audio import resample

    text, samples = spoken[0]
    body = wav_bytes(resample(samples, 16000, 44100), 44100, "FLAC")
    r = client.post("/v1/recognize", content=body, headers={"Content-Type": "audio/flac"})
    assert r.status_code == 200 and word_error_rate([text], [r.json()["transcript"]]) <= 0.2


def test_silence_is_an_empty_transcript_and_no_turn(client: httpx.Client) -> None:
    r = client.post("/v1/recognize", content=wav_bytes(np.zeros(32000, np.float32)))
    assert r.status_code == 200
    assert r.json()["transcript"] == "" and r.json()["parse"] is None
    assert r.json()["turn_id"] is None


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 422, "empty"),
        (b"this is not audio at all" * 20, 422, "not readable as WAV, FLAC or OGG"),
        (wav_bytes(np.zeros(8000 * 60, np.float32), 8000), 413, "60.0 s long; the limit is 10 s"),
    ],
)
def test_bad_audio_gets_a_clear_4xx(
    client: httpx.Client, body: bytes, status: int, words: str
) -> None:
    r = client.post("/v1/recognize", content=body)
    assert r.status_code == status and words in r.json()["error"]
    assert " object at 0x" not in r.json()["error"]  # no Python repr reaches the client


def test_truncated_wav_is_answered_not_crashed(client: httpx.Client, spoken) -> None:  # type: ignore[no-untyped-def]
    data = wav_bytes(spoken[1][1])
    r = client.post("/v1/recognize", content=data[: len(data) // 2])
    assert r.status_code in (200, 422)
    r = client.post("/v1/recognize?bogus=1", content=data)
    assert r.status_code == 422 and "bogus" in r.json()["error"]


def test_recognize_needs_the_api_key(server: Server, spoken) -> None:  # type: ignore[no-untyped-def]
    r = httpx.post(server.url + "/v1/recognize", content=wav_bytes(spoken[0][1]), timeout=30)
    assert r.status_code == 401


async def speak_wyoming(server: Server, pcm: bytes, chunk: int = 3200) -> list[Event]:
    assert server.wyoming_port is not None
    async with AsyncTcpClient("127.0.0.1", server.wyoming_port, read_timeout=60) as c:
        await c.write_event(Transcribe(language="en").event())
        await c.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for i in range(0, len(pcm), chunk):
            await c.write_event(
                AudioChunk(rate=16000, width=2, channels=1, audio=pcm[i : i + chunk]).event()
            )
        await c.write_event(AudioStop().event())
        first = await c.read_event()
        # the same connection takes a second utterance afterwards
        await c.write_event(Describe().event())
        second = await c.read_event()
    assert first is not None and second is not None
    return [first, second]


def test_wyoming_transcribe_audio_chunks_answer_a_transcript(server: Server, spoken) -> None:  # type: ignore[no-untyped-def]
    text, samples = spoken[2]  # "set a timer for five minutes"
    answer, info = asyncio.run(speak_wyoming(server, to_pcm16(samples)))
    assert Transcript.is_type(answer.type), answer
    transcript = Transcript.from_event(answer)
    assert word_error_rate([text], [transcript.text]) <= 0.34, transcript.text
    assert transcript.context and transcript.context["nbest"][0]["text"] == transcript.text
    assert logged_row(server, transcript.context["turn_id"])["channel"] == "speech"
    assert Info.is_type(info.type) and Info.from_event(info).asr[0].installed


def test_wyoming_audio_beyond_the_limit_is_an_error_not_a_buffer(server: Server) -> None:
    pcm = to_pcm16(np.zeros(16000 * 12, np.float32))  # 12 s > --max-audio-seconds 10
    answer, _ = asyncio.run(speak_wyoming(server, pcm, chunk=32000))
    assert Error.is_type(answer.type)
    assert "longer than 10 s" in Error.from_event(answer).text


async def send_audio_events(server: Server, events: list[Event]) -> list[Event]:
    """Send ``events`` then ``describe``; the answers to both (the connection stays up)."""
    assert server.wyoming_port is not None
    async with AsyncTcpClient("127.0.0.1", server.wyoming_port, read_timeout=60) as c:
        for event in events:
            await c.write_event(event)
        first = await c.read_event()
        await c.write_event(Describe().event())
        second = await c.read_event()
    assert first is not None and second is not None
    return [first, second]


@pytest.mark.parametrize(
    "start, message",
    [
        (Event("audio-start", {"rate": "fast", "width": 2, "channels": 1}), "audio rate must be"),
        (Event("audio-start", {"rate": 16000, "width": 3, "channels": 1}), "audio width must be"),
        (Event("audio-start", {"rate": 16000, "width": 2, "channels": 0}), "channels must be"),
        (Event("audio-start", {"width": 2, "channels": 1}), "audio-start needs the field 'rate'"),
        (Event("audio-chunk", {"rate": 16000, "width": 2}), "audio-chunk needs the field"),
    ],
)
def test_a_malformed_audio_event_is_an_error_event(
    server: Server, start: Event, message: str
) -> None:
    answer, info = asyncio.run(send_audio_events(server, [start]))
    assert Error.is_type(answer.type) and message in Error.from_event(answer).text, answer
    assert Info.is_type(info.type)  # the server and the connection are still there
