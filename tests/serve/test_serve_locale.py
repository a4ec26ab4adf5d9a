"""Locales on the wire: a request's locale (or the model's) is answered, logged, and
one the model does not serve is a 422 / a Wyoming error naming what it serves."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import httpx
import pytest
from servers import API_KEY, Server, admin_headers, exchange, start_server
from wyoming.error import Error
from wyoming.intent import Intent, Recognize

from voxloop.data import load_corpus
from voxloop.log.writer import read_log
from voxloop.nlu.classical import ClassicalParser


def logged(server: Server, turn_id: str, timeout: float = 5) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in read_log(server.log_dir).to_pylist() if r["turn_id"] == turn_id]
        if rows:
            return rows[0]
        assert time.monotonic() < deadline, f"turn {turn_id} was not logged"
        time.sleep(0.05)


# --------------------------------------------------------------------------- one-locale model


def test_without_a_locale_the_answer_and_the_turn_carry_the_models(
    server: Server, client: httpx.Client
) -> None:
    r = client.post("/v1/parse", json={"text": "turn on the kitchen light"})
    assert r.status_code == 200, r.text
    assert r.json()["locale"] == "en-US"
    assert logged(server, r.json()["turn_id"])["locale"] == "en-US"


@pytest.mark.parametrize("asked", ["en-US", "en", "EN_us"])
def test_a_locale_the_model_serves_may_be_spelled_loosely(client: httpx.Client, asked: str) -> None:
    r = client.post("/v1/parse", json={"text": "turn on the kitchen light", "locale": asked})
    assert r.status_code == 200, r.text
    assert r.json()["locale"] == "en-US"


@pytest.mark.parametrize("route", ["/v1/parse", "/model/parse"])
def test_a_locale_the_model_does_not_serve_is_a_422_naming_what_it_serves(
    client: httpx.Client, route: str
) -> None:
    r = client.post(route, json={"text": "schalte das licht aus", "locale": "de-DE"})
    assert r.status_code == 422, r.text
    message = r.json()["error"]
    assert "'de-DE'" in message and "en-US" in message


def test_wyoming_uses_the_language_of_the_event(server: Server) -> None:
    event = Recognize(text="turn off the kitchen light", context={"language": "en"}).event()
    answer = asyncio.run(exchange(server, event))
    assert Intent.is_type(answer.type), answer
    turn_id = Intent.from_event(answer).context["turn_id"]  # type: ignore[index]
    row = logged(server, turn_id)
    assert row["locale"] == "en-US" and row["channel"] == "wyoming"

    event = Recognize(text="schalte das licht aus", context={"language": "de"}).event()
    answer = asyncio.run(exchange(server, event))
    assert Error.is_type(answer.type), answer
    assert "'de'" in Error.from_event(answer).text and "en-US" in Error.from_event(answer).text


# --------------------------------------------------------------------------- two-locale model


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with one model of German and French (300 utterances each)."""
    train = []
    for lang in ("de", "fr"):
        part = list(load_corpus(f"hass:{lang}").split("train"))
        random.Random(0).shuffle(part)
        train += part[:300]
    root = tmp_path_factory.mktemp("bilingual")
    ClassicalParser(sentence_encoder="none", crf_epochs=10, gazetteer_folds=2).fit(train).save(
        root / "de-fr"
    )
    server = start_server(root / "de-fr", root, wyoming=True)
    yield server
    server.stop()


def test_a_two_locale_model_answers_in_the_locale_asked(bilingual: Server) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=bilingual.url, headers=headers, timeout=10) as c:
        fr = c.post("/v1/parse", json={"text": "allume la lumière du salon", "locale": "fr"})
        de = c.post("/v1/parse", json={"texts": ["schalte das licht aus"], "locale": "de-DE"})
        default = c.post("/v1/parse", json={"text": "schalte das licht aus"})
        it = c.post("/v1/parse", json={"text": "accendi la luce", "locale": "it-IT"})
    assert fr.json()["locale"] == "fr-FR" and fr.json()["intent"] == "HassTurnOn"
    assert de.json()["results"][0]["locale"] == "de-DE"
    assert logged(bilingual, fr.json()["turn_id"])["locale"] == "fr-FR"
    assert default.json()["locale"] in {"de-DE", "fr-FR"}
    assert it.status_code == 422 and "de-DE, fr-FR" in it.json()["error"]
    event = Recognize(text="allume la lumière du salon", context={"language": "fr"}).event()
    answer = asyncio.run(exchange(bilingual, event))
    assert Intent.is_type(answer.type), answer
    turn_id = Intent.from_event(answer).context["turn_id"]  # type: ignore[index]
    assert logged(bilingual, turn_id)["locale"] == "fr-FR"


def test_the_admin_listing_shows_the_locales_a_model_serves(bilingual: Server) -> None:
    r = httpx.get(bilingual.url + "/admin/models", headers=admin_headers(), timeout=10)
    assert r.status_code == 200, r.text
    (model,) = r.json()["models"]
    assert model["locales"] == ["de-DE", "fr-FR"]
