"""The HTTP API of a real server process: shapes, logging, bad input, auth, metrics."""

from __future__ import annotations

import html
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from servers import ADMIN_KEY, API_KEY, Models, Server, admin_headers

from voxloop.log.writer import SCHEMA_VERSION, read_log
from voxloop.nlu.base import load_parser


def logged_turn_ids(server: Server, table: str = "turns") -> set[str]:
    return set(read_log(server.log_dir, table).column("turn_id").to_pylist())


def wait_logged(server: Server, ids: set[str], table: str = "turns", timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not ids <= logged_turn_ids(server, table):
        missing = ids - logged_turn_ids(server, table)
        assert time.monotonic() < deadline, f"not in the {table} log: {missing}"
        time.sleep(0.05)


def test_parse_returns_intent_slots_with_character_offsets_and_a_turn_id(
    client: httpx.Client, models: Models
) -> None:
    text = "turn on the kitchen light"
    r = client.post("/v1/parse", json={"text": text, "user_id": "u1", "session_id": "s1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["intent"] == "HassTurnOn" and body["recognized"] is True
    assert body["model_version"] == "v1" and len(body["turn_id"]) == 32
    assert body["ranking"][0] == {"intent": "HassTurnOn", "confidence": body["confidence"]}
    assert body["latency_ms"] >= body["parse_ms"] > 0
    for slot in body["slots"]:
        assert text[slot["start"] : slot["end"]] == slot["value"]
        assert set(slot) == {"start", "end", "label", "value", "confidence"}
    # The server answers what the model parses in process (which span the small model tags
    # may differ between CPUs: its training is floating point).
    (parsed,) = load_parser(models.v1).parse([text])
    assert [(s["label"], s["start"], s["end"]) for s in body["slots"]] == [
        (s.label, s.start, s.end) for s in parsed.slots
    ]
    assert body["slots"] and body["slots"][0]["label"] == "area"


def test_batch_parse_gives_one_result_and_turn_per_text(client: httpx.Client) -> None:
    texts = ["set the temperature to 20 degrees", "what time is it", "xq zzv blorp"]
    r = client.post("/v1/parse", json={"texts": texts})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["text"] for x in results] == texts
    assert len({x["turn_id"] for x in results}) == 3
    assert results[2]["intent"] is None and results[2]["recognized"] is False


def test_model_parse_has_the_rasa_response_shape(client: httpx.Client) -> None:
    text = "turn off the lights in the bedroom"
    r = client.post("/model/parse", json={"text": text, "message_id": "m1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == text
    assert set(body["intent"]) == {"name", "confidence"}
    assert body["intent"]["name"] == "HassTurnOff"
    assert body["intent_ranking"][0] == body["intent"]
    assert all(set(x) == {"name", "confidence"} for x in body["intent_ranking"])
    assert body["entities"], "expected the area as an entity"
    for entity in body["entities"]:
        assert set(entity) >= {"start", "end", "value", "entity", "confidence_entity", "extractor"}
        assert text[entity["start"] : entity["end"]] == entity["value"]


def test_rasa_not_recognized_is_nlu_fallback(client: httpx.Client) -> None:
    body = client.post("/model/parse", json={"text": "xq zzv blorp"}).json()
    assert body["intent"]["name"] == "nlu_fallback"
    assert body["intent_ranking"][0]["name"] == "nlu_fallback"


def test_answered_turns_and_feedback_reach_the_log(server: Server, client: httpx.Client) -> None:
    r = client.post(
        "/v1/parse",
        json={"text": "open the garage door", "user_id": "u7", "experiment": "exp1", "arm": "b"},
    )
    turn_id = r.json()["turn_id"]
    f = client.post("/v1/feedback", json={"turn_id": turn_id, "kind": "rating", "value": 0.75})
    assert f.status_code == 202, f.text
    wait_logged(server, {turn_id})
    wait_logged(server, {turn_id}, "feedback")
    rows = [x for x in read_log(server.log_dir).to_pylist() if x["turn_id"] == turn_id]
    assert rows[0]["user_id"] == "u7" and rows[0]["channel"] == "http"
    assert rows[0]["experiment"] == "exp1" and rows[0]["arm"] == "b"
    assert rows[0]["model_version"] == "v1" and rows[0]["latency_ms"] > 0
    (fb,) = [x for x in read_log(server.log_dir, "feedback").to_pylist() if x["turn_id"] == turn_id]
    assert fb["kind"] == "rating" and fb["value"] == 0.75
    for file in server.log_dir.glob("*/date=*/part-*.parquet"):
        assert (
            pq.read_schema(file).metadata[b"voxloop.schema_version"] == str(SCHEMA_VERSION).encode()
        )


BAD_INPUTS = [
    pytest.param(b'{"text": "turn on', 400, "malformed JSON", id="malformed-json"),
    pytest.param(b'{"text": "caf\xe9"}', 400, "UTF-8", id="invalid-utf8"),
    pytest.param(b"", 400, "empty body", id="empty-body"),
    pytest.param(b'{"text": NaN}', 400, "NaN", id="nan"),
    pytest.param(b'["turn on the light"]', 422, "JSON object", id="not-an-object"),
    pytest.param(b'{"text": 42}', 422, "text must be a string", id="wrong-type"),
    pytest.param(b'{"texts": "one"}', 422, "texts must be an array", id="texts-not-array"),
    pytest.param(b'{"texts": ["ok", 7]}', 422, "texts[1]", id="texts-item-type"),
    pytest.param(b'{"text": ""}', 422, "empty", id="empty-text"),
    pytest.param(b'{"text": " \\t\\n "}', 422, "whitespace", id="whitespace-text"),
    pytest.param(b'{"text": "hi", "texts": ["hi"]}', 422, "exactly one", id="both"),
    pytest.param(
        b'{"text": "hi", "colour": "red"}', 422, "unknown field 'colour'", id="unknown-field"
    ),
    pytest.param(b'{"text": "hi", "user_id": 5}', 422, "user_id", id="id-type"),
    pytest.param(b'{"text": "\\ud800 light"}', 422, "surrogate", id="lone-surrogate"),
    pytest.param(b'{"text": "' + b"a" * 300 + b'"}', 422, "limit is 200", id="long-text"),
    pytest.param(b'{"text": "' + b"a" * (1 << 20) + b'"}', 413, "max-body-bytes", id="1MB-text"),
    pytest.param(b"[" * 30000 + b"]" * 30000, 400, "nested too deeply", id="deeper-than-the-stack"),
    pytest.param(
        b'{"text": "hi", "context": {"attributes": {"a": ' + b"[" * 30000 + b"]" * 30000 + b"}}}",
        400,
        "JSON nested too deeply",
        id="deep-in-context",
    ),
    pytest.param(
        b'{"text": "hi", "n": ' + b"1" * 5000 + b"}", 400, "integer of 5,000 digits", id="long-int"
    ),
    pytest.param(b'{"text": "hi", "context": "x"}', 422, "context must be a JSON object", id="ctx"),
    pytest.param(
        b'{"text": "hi", "context": {"hour": 1, "colour": "red"}}',
        422,
        "unknown field 'colour' in context",
        id="ctx-unknown-field",
    ),
    pytest.param(
        b'{"text": "hi", "timestamp": "0001-01-01T00:00:00+14:00"}',
        422,
        "timestamp '0001-01-01T00:00:00+14:00' is out of range",
        id="timestamp-before-year-1",
    ),
    pytest.param(
        b'{"text": "hi", "timestamp": "9999-12-31T23:59:59-12:00"}',
        422,
        "timestamp '9999-12-31T23:59:59-12:00' is out of range",
        id="timestamp-after-year-9999",
    ),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_INPUTS)
def test_bad_input_is_a_4xx_naming_the_problem(
    client: httpx.Client, body: bytes, status: int, message: str
) -> None:
    r = client.post("/v1/parse", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_custom_feedback_kinds_share_one_metrics_series(
    server: Server, client: httpx.Client
) -> None:
    def other() -> float:
        for line in httpx.get(server.url + "/metrics").text.splitlines():
            if line.startswith('voxloop_feedback_total{kind="other"}'):
                return float(line.split()[-1])
        return 0.0

    before = other()
    turn_id = client.post("/v1/parse", json={"text": "turn on the light"}).json()["turn_id"]
    for kind in ("thumbs.custom-1", "thumbs.custom-2", "rating"):
        r = client.post("/v1/feedback", json={"turn_id": turn_id, "kind": kind})
        assert r.status_code == 202
    assert other() == before + 2
    assert "custom-1" not in httpx.get(server.url + "/metrics").text


def test_bad_feedback_is_a_422_naming_the_field(client: httpx.Client) -> None:
    turn_id = client.post("/v1/parse", json={"text": "turn on the light"}).json()["turn_id"]

    def feedback(kind: str, value: str, turn: str = turn_id, **extra: str) -> httpx.Response:
        body = {"turn_id": turn, "kind": kind, **extra}
        raw = json.dumps(body)[:-1] + f', "value": {value}}}'  # 1e999: not from json.dumps
        return client.post("/v1/feedback", content=raw)

    infinite = feedback("rating", "1e999")
    assert infinite.status_code == 422
    assert infinite.json()["error"] == "value must be a finite number, not inf"
    half = feedback("task_success", "0.5")
    assert half.status_code == 422
    assert half.json()["error"] == (
        "value of a task_success must be 1 (succeeded) or 0 (failed), got 0.5"
    )
    for value in ("0", "1", "1.0"):
        assert feedback("task_success", value).status_code == 202
    # A turn another replica (or this server before a restart) answered is accepted.
    assert feedback("task_success", "1", turn="f" * 32).status_code == 202
    # Anything else is not logged: the field would carry whatever a client puts in it.
    bad = feedback("task_success", "1", turn="jane.doe@example.com")
    assert bad.status_code == 422 and "32 hex digits" in bad.json()["error"]
    late = feedback("rating", "1", timestamp="0001-01-01T00:00:00+01:00")
    assert late.status_code == 422 and "out of range" in late.json()["error"]


@pytest.mark.parametrize(
    "option",
    [
        ["--port", "99999"],
        ["--port", "65536"],
        ["--port", "0"],
        ["--wyoming", "tcp://127.0.0.1:99999"],
        ["--wyoming", "tcp://127.0.0.1"],
    ],
    ids=" ".join,
)
def test_a_port_outside_1_to_65535_is_refused_before_the_server_starts(
    tmp_path: Path, option: list[str]
) -> None:
    command = [sys.executable, "-m", "voxloop.serve", "--model", str(tmp_path / "none"), *option]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"voxloop serve: {option[0]}: ")
    assert "1-65535" in line or "tcp://HOST:PORT" in line


def test_more_texts_per_request_than_the_queue_holds_is_refused_at_start(tmp_path: Path) -> None:
    # such a request would get a retryable 503 on an idle server, for ever
    command = [sys.executable, "-m", "voxloop.serve", "--model", str(tmp_path / "none"),
               "--max-queue", "16", "--max-texts", "20"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("voxloop serve: --max-texts: a request of 20 texts could never")


def test_speech_options_without_a_recognizer_are_refused_not_ignored(models: Models) -> None:
    command = [sys.executable, "-m", "voxloop", "serve", "--model", str(models.v1),
               "--port", "1", "--speech-bias", "hass:en", "--max-audio-seconds", "5"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "voxloop: error: --speech-bias, --max-audio-seconds: only with --recognizer"
    )


def test_bad_input_loses_nothing_and_the_server_keeps_serving(
    server: Server, client: httpx.Client
) -> None:
    before = client.post("/v1/parse", json={"text": "lock the front door"}).json()["turn_id"]
    for param in BAD_INPUTS:
        body = param.values[0]
        assert isinstance(body, bytes)
        client.post("/v1/parse", content=body)
        client.post("/model/parse", content=body)
    bad_feedback = client.post("/v1/feedback", json={"turn_id": before, "kind": "Bad Kind!"})
    assert bad_feedback.status_code == 422
    stars = client.post("/v1/feedback", json={"turn_id": before, "kind": "rating", "value": 4})
    assert stars.status_code == 422
    assert "value of a rating must be in [0, 1]" in stars.json()["error"]
    assert "got 4" in stars.json()["error"]
    after = client.post("/v1/parse", json={"text": "unlock the front door"})
    assert after.status_code == 200
    wait_logged(server, {before, after.json()["turn_id"]})


def test_parse_routes_need_the_api_key_when_one_is_set(server: Server) -> None:
    body = {"text": "turn on the light"}
    assert httpx.post(server.url + "/v1/parse", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.post(server.url + "/v1/parse", json=body, headers=wrong).status_code == 403
    assert httpx.post(server.url + "/model/parse", json=body).status_code == 401
    ok = httpx.post(server.url + "/model/parse", json=body, headers={"X-API-Key": API_KEY})
    assert ok.status_code == 200


def test_admin_routes_need_the_admin_key(server: Server) -> None:
    url = server.url + "/admin/models"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 403
    assert httpx.get(url, headers={"X-API-Key": ADMIN_KEY + "x"}).status_code == 403
    r = httpx.get(url, headers=admin_headers())
    assert r.status_code == 200 and r.json()["active"] == "v1"
    activate = server.url + "/admin/models/v1/activate"
    assert httpx.post(activate).status_code == 401


def test_health_readiness_metrics_and_openapi(server: Server, client: httpx.Client) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").json()["model_version"] == "v1"
    client.post("/v1/parse", json={"text": "turn on the light"})
    metrics = httpx.get(server.url + "/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'voxloop_requests_total{route="/v1/parse",status="200"}' in text
    assert 'voxloop_request_seconds_bucket{route="/v1/parse",le="+Inf"}' in text
    assert "voxloop_batch_size_count" in text
    assert "voxloop_queue_depth 0" in text
    assert 'voxloop_model_active{version="v1"} 1' in text
    document = httpx.get(server.url + "/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {
        "/v1/parse",
        "/model/parse",
        "/v1/feedback",
        "/healthz",
        "/readyz",
        "/metrics",
        "/admin/models",
        "/admin/models/{version}/activate",
    } <= set(document["paths"])
    # /docs works offline: no script, nothing fetched from another host
    page = httpx.get(server.url + "/docs").text
    assert "<script" not in page and "://" not in page
    assert all(f"<code>{html.escape(path)}</code>" in page for path in document["paths"])
    text_limit = document["components"]["schemas"]["ParseRequest"]["properties"]["text"]
    assert f"maxLength {text_limit['maxLength']}" in page


def test_unknown_routes_and_methods_answer_json(server: Server) -> None:
    r = httpx.get(server.url + "/nope")
    assert r.status_code == 404 and r.json()["status"] == 404
    assert httpx.get(server.url + "/v1/parse").status_code == 405


def test_recognize_without_a_recognizer_says_how_to_get_one(
    server: Server, client: httpx.Client
) -> None:
    r = client.post("/v1/recognize", content=b"RIFF....WAVE", headers={"Content-Type": "audio/wav"})
    assert r.status_code == 404
    assert r.json()["error"] == "no speech recognizer: start the server with --recognizer"
    documented = httpx.get(server.url + "/openapi.json").json()["paths"]["/v1/recognize"]
    assert "--recognizer" in documented["post"]["responses"]["404"]["description"]
