"""Fixtures of the serving tests: small models, real server processes on 127.0.0.1."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import API_KEY, Models, Server, start_server

from voxloop.data import load_corpus
from voxloop.nlu.classical import ClassicalParser


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    corpus = load_corpus("hass:en")
    train = list(corpus.split("train"))
    random.Random(0).shuffle(train)
    root = tmp_path_factory.mktemp("models")
    for name, part, seed in (("v1", train[:300], 0), ("v2", train[300:600], 1)):
        ClassicalParser(
            sentence_encoder="none", crf_epochs=10, gazetteer_folds=2, threshold=0.2, seed=seed
        ).fit(part).save(root / name)
    texts = [u.text for u in corpus.split("test")][:200]
    return Models(root, root / "v1", root / "v2", texts)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[Server]]:
    """Servers a test starts (``serve.append(start_server(...))``) are stopped after it."""
    servers: list[Server] = []
    yield servers
    for s in servers:
        if s.process.poll() is None:
            s.process.kill()
            s.process.wait(10)


@pytest.fixture(scope="session")
def server(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared server (model v1, never swapped): keys set, log on, Wyoming on."""
    s = start_server(
        models.v1,
        tmp_path_factory.mktemp("server"),
        "--log-flush-interval",
        "0.5",
        "--max-text-length",
        "200",
        "--max-body-bytes",
        "65536",
        "--max-wait-ms",
        "5",
        wyoming=True,
    )
    yield s
    s.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    ) as c:
        yield c
