"""Model registry: readiness after load and warm-up, admin routes, hot swap under load."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import httpx
import pytest
from servers import API_KEY, Models, Server, admin_headers, start_server
from starlette.applications import Starlette

from voxloop.errors import ModelFormatError
from voxloop.log.writer import read_log
from voxloop.nlu.base import Parser, load_parser
from voxloop.schema import Parse
from voxloop.serve.app import create_app
from voxloop.serve.auth import ApiKeys
from voxloop.serve.registry import ModelRegistry
from voxloop.serve.service import ServeConfig, Service

KEY = "k"
ADMIN = {"Authorization": f"Bearer {KEY}"}


class GatedLoader:
    """Loads real models, but only once the test opens the gate; records parses."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.parsed: list[list[str]] = []

    def __call__(self, path: Path) -> Parser:
        self.gate.wait(10)
        real = load_parser(path)
        loader = self

        class Recording:
            def parse(self, texts: Sequence[str]) -> list[Parse]:
                loader.parsed.append(list(texts))
                return real.parse(texts)

        return Recording()  # type: ignore[return-value]


def make_app(
    models: Models, loader: object = load_parser, model_root: Path | None = None
) -> Starlette:
    service = Service(
        ServeConfig(model=models.v1),
        registry=ModelRegistry(loader=loader, model_root=model_root),  # type: ignore[arg-type]
    )
    return create_app(service, keys=ApiKeys(admin=KEY))


@contextlib.asynccontextmanager
async def in_process(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client that calls it directly."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


async def until_ready(client: httpx.AsyncClient, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while (await client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "never ready"
        await asyncio.sleep(0.01)


def test_ready_only_after_the_model_is_loaded_and_warmed_up(models: Models) -> None:
    loader = GatedLoader()

    async def go() -> None:
        async with in_process(make_app(models, loader)) as client:
            assert (await client.get("/healthz")).status_code == 200
            r = await client.get("/readyz")
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            parse = await client.post("/v1/parse", json={"text": "turn on the light"})
            assert parse.status_code == 503 and "loading" in parse.json()["error"]
            assert loader.parsed == []
            loader.gate.set()
            await until_ready(client)
            assert len(loader.parsed) == 1, "the warm-up parse ran before ready"
            ok = await client.post("/v1/parse", json={"text": "turn on the light"})
            assert ok.status_code == 200

    asyncio.run(go())


def test_a_model_that_fails_to_load_is_reported_not_ready(models: Models) -> None:
    def broken(path: Path) -> Parser:
        raise ModelFormatError(f"{path}: damaged")

    failures: list[str] = []
    service = Service(ServeConfig(model=models.v1), registry=ModelRegistry(loader=broken))
    app = create_app(service, on_fatal=failures.append)

    async def go() -> None:
        async with in_process(app) as client:
            while not failures:
                await asyncio.sleep(0.01)
            r = await client.get("/readyz")
            assert r.status_code == 503 and "damaged" in r.json()["error"]

    asyncio.run(go())
    assert "damaged" in failures[0]


def admin_session(models: Models, check: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    """Run ``check`` against an in-process app (v1 active, models under ``models.root``)."""

    async def go() -> None:
        async with in_process(make_app(models, model_root=models.root)) as client:
            client.headers.update(ADMIN)
            await until_ready(client)
            await check(client)

    asyncio.run(go())


def test_admin_loads_lists_activates_and_unloads_versions(models: Models) -> None:
    async def check(admin: httpx.AsyncClient) -> None:
        r = await admin.post("/admin/models", json={"path": str(models.v2)})
        assert r.status_code == 201, r.text
        assert r.json()["version"] == "v2" and r.json()["active"] is False
        listing = (await admin.get("/admin/models")).json()
        assert listing["active"] == "v1"
        assert [m["version"] for m in listing["models"]] == ["v1", "v2"]
        assert (await admin.post("/admin/models/v2/activate")).json()["active"] is True
        parsed = await admin.post("/v1/parse", json={"text": "hi there"})
        assert parsed.json()["model_version"] == "v2"
        assert (await admin.delete("/admin/models/v2")).status_code == 409  # active
        await admin.post("/admin/models/v1/activate")
        assert (await admin.delete("/admin/models/v2")).status_code == 200
        listing = (await admin.get("/admin/models")).json()
        assert [m["version"] for m in listing["models"]] == ["v1"]

    admin_session(models, check)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"path": "{v2}", "version": "v1"}, 409, "already loaded"),
        ({"path": "{root}/missing"}, 422, "no such model directory"),
        ({"path": "/etc"}, 403, "outside the model root"),
        ({"path": "{v2}", "version": "bad version!"}, 422, "letters, digits"),
        ({"path": "{v2}", "colour": "red"}, 422, "unknown field 'colour'"),
        ({"path": 3}, 422, "path must be"),
    ],
)
def test_admin_load_errors_name_the_problem(
    models: Models, body: dict[str, object], status: int, message: str
) -> None:
    if isinstance(body["path"], str):
        body = {**body, "path": body["path"].format(v2=models.v2, root=models.root)}

    async def check(admin: httpx.AsyncClient) -> None:
        r = await admin.post("/admin/models", json=body)
        assert r.status_code == status, r.text
        assert message in r.json()["error"]

    admin_session(models, check)


def test_activating_an_unknown_version_is_404(models: Models) -> None:
    async def check(admin: httpx.AsyncClient) -> None:
        r = await admin.post("/admin/models/v9/activate")
        assert r.status_code == 404 and "loaded: v1" in r.json()["error"]

    admin_session(models, check)


def test_hot_swap_under_concurrent_load_fails_no_request(
    models: Models, tmp_path: Path, serve: list[Server]
) -> None:
    server = start_server(models.v1, tmp_path, "--log-flush-interval", "0.2")
    serve.append(server)
    seen: list[tuple[float, int, str | None]] = []
    stop = asyncio.Event()

    async def user(client: httpx.AsyncClient, offset: int) -> None:
        i = offset
        while not stop.is_set():
            r = await client.post("/v1/parse", json={"text": models.texts[i % 200]})
            version = r.json().get("model_version") if r.status_code == 200 else None
            seen.append((time.monotonic(), r.status_code, version))
            i += 7

    async def traffic(more: int) -> None:
        """Let at least 0.4 s and ``more`` requests pass (a busy machine answers slowly)."""
        target, started = len(seen) + more, time.monotonic()
        while len(seen) < target or time.monotonic() - started < 0.4:
            assert time.monotonic() - started < 60, "the server answered too little"
            await asyncio.sleep(0.02)

    async def swap(client: httpx.AsyncClient) -> list[float]:
        swaps = []
        await traffic(30)
        r = await client.post(
            "/admin/models", json={"path": str(models.v2)}, headers=admin_headers()
        )
        assert r.status_code == 201, r.text
        for version in ("v2", "v1", "v2"):
            await traffic(30)
            r = await client.post(f"/admin/models/{version}/activate", headers=admin_headers())
            assert r.status_code == 200, r.text
            swaps.append(time.monotonic())
        await traffic(30)
        stop.set()
        return swaps

    async def go() -> list[float]:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as c:
            users = [user(c, k) for k in range(6)]
            swaps = asyncio.ensure_future(swap(c))
            await asyncio.gather(swaps, *users)
            return swaps.result()

    swaps = asyncio.run(go())
    failures = [s for s in seen if s[1] != 200]
    assert not failures, f"{len(failures)} of {len(seen)} requests failed during the swaps"
    assert len(seen) > 100
    after_last = {v for t, _, v in seen if t > swaps[-1] + 0.05}
    assert after_last == {"v2"}
    assert {v for _, _, v in seen} == {"v1", "v2"}
    assert server.stop() == 0
    logged = read_log(server.log_dir)
    assert logged.num_rows == len(seen)
    assert set(logged.column("model_version").to_pylist()) == {"v1", "v2"}
