"""Helpers of the serving tests: start a real server process on a free port, wait for it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from wyoming.client import AsyncTcpClient
from wyoming.event import Event

ADMIN_KEY = "admin-key-for-tests"
API_KEY = "api-key-for-tests"


async def exchange(server: Server, event: Event) -> Event:
    """Send one Wyoming event to the server with the real client; its one answer."""
    assert server.wyoming_port is not None
    async with AsyncTcpClient("127.0.0.1", server.wyoming_port, read_timeout=10) as client:
        await client.write_event(event)
        answer = await client.read_event()
    assert answer is not None
    return answer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Models:
    """Two versions of a small Home Assistant model (v2 trained on other utterances)."""

    root: Path
    v1: Path
    v2: Path
    texts: list[str] = field(default_factory=list)


@dataclass
class Server:
    """A ``python -m voxloop.serve`` process."""

    process: subprocess.Popen[bytes]
    port: int
    log_dir: Path
    wyoming_port: int | None
    output: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def log_text(self) -> str:
        return self.output.read_text(errors="replace")


def start_server(
    model: Path,
    workdir: Path,
    *options: str,
    wyoming: bool = False,
    keys: bool = True,
    wait_ready: bool = True,
) -> Server:
    port = free_port()
    wyoming_port = free_port() if wyoming else None
    log_dir = workdir / "log"
    output = workdir / f"server-{port}.out"
    args = [
        sys.executable,
        "-m",
        "voxloop.serve",
        "--model",
        str(model),
        "--port",
        str(port),
        "--log-dir",
        str(log_dir),
        "--log-level",
        "warning",
        *options,
    ]
    if wyoming_port:
        args += ["--wyoming", f"tcp://127.0.0.1:{wyoming_port}"]
    env = dict(os.environ)
    env.pop("VOXLOOP_ADMIN_KEY", None)
    env.pop("VOXLOOP_API_KEY", None)
    if keys:
        env["VOXLOOP_ADMIN_KEY"] = ADMIN_KEY
        env["VOXLOOP_API_KEY"] = API_KEY
    with open(output, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(process, port, log_dir, wyoming_port, output)
    if wait_ready:
        wait_until_ready(server)
    return server


def wait_until_ready(server: Server, timeout: float = 60) -> float:
    """Poll /readyz; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{server.log_text()}")
        try:
            if httpx.get(server.url + "/readyz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"the server was not ready in {timeout} s:\n{server.log_text()}")


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}
