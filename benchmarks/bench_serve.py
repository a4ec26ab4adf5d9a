"""Serving benchmark: a real `voxloop serve` process on 127.0.0.1, loaded by separate
client processes with a fixed request mix from the SNIPS test split. Closed-loop phases
use wrk when it is installed (`apt-get install wrk`: a C client leaves the server the CPU
that an httpx client would take), else the asyncio + httpx client; open-loop phases, the
latency comparison and the hot swap use the asyncio + httpx client.

Measures, in one run on one machine:
  * the model's in-process batch throughput (the ceiling) and the server's throughput at
    saturation (closed loop), as a ratio;
  * p50/p99 latency and errors at 50% and 80% of saturation (open loop: requests are sent
    on a schedule and timed from when they were due, so a slow server cannot hide latency);
  * what 2x saturation gets (only 503s are acceptable);
  * start-up: model load, warm-up, time from process start to /readyz;
  * recognized vs not-recognized latency (sequential requests);
  * a hot swap (load v2, activate v2, v1, v2) under 50% load: failed requests;
  * a soak (closed loop): throughput and server RSS at start and end.

    python benchmarks/bench_serve.py                      # ~6 min, 3-minute soak
    python benchmarks/bench_serve.py --soak-minutes 30    # the full soak

The numbers are printed (and written as JSON with ``--json FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("VOXLOOP_DATASETS", REPO.parent / "shared" / "datasets"))
ADMIN_KEY = "bench-admin-key"


# --- the load generator (runs in its own process: `--worker SPEC`) ----------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class Connections:
    """A pool of keep-alive HTTP/1.1 connections, lean enough to offer thousands of
    requests a second from one Python process (httpx's pool slows down badly with
    thousands of requests in flight)."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self.opened = 0

    async def post(self, path: str, body: bytes) -> int:
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            try:
                conn = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.opened -= 1
                raise
        else:
            conn = await self.idle.get()
        reader, writer = conn
        try:
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            self.opened -= 1
            raise
        if close:
            writer.close()
            self.opened -= 1
        else:
            self.idle.put_nowait(conn)
        return status


async def worker(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    url, texts, mode = spec["url"], spec["texts"], spec["mode"]
    limits = httpx.Limits(
        max_connections=spec.get("connections", 1000),
        max_keepalive_connections=spec.get("connections", 1000),
    )
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    windows: list[int] = []
    events: list[str] = []

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        host, port = url.removeprefix("http://").split(":")
        pool = Connections(host, int(port), spec.get("connections", 256))
        bodies = [json.dumps({"text": t}).encode() for t in texts]

        async def one(i: int, due: float) -> None:
            try:
                if mode == "open":
                    async with asyncio.timeout(30):
                        key = str(await pool.post("/v1/parse", bodies[i % len(bodies)]))
                else:
                    r = await client.post("/v1/parse", json={"text": texts[i % len(texts)]})
                    key = str(r.status_code)
            except (httpx.TimeoutException, TimeoutError):
                key = "timeout"
            except (httpx.TransportError, OSError, asyncio.IncompleteReadError) as e:
                key = type(e).__name__
            done = time.perf_counter()
            statuses[key] = statuses.get(key, 0) + 1
            if key == "200":
                latencies.append((done - due) * 1000)
                if mode == "closed":
                    slot = int((done - started) // spec.get("window", 10.0))
                    while len(windows) <= slot:
                        windows.append(0)
                    windows[slot] += 1

        started = time.perf_counter()
        end = started + spec["seconds"]
        if mode == "closed":

            async def user(k: int) -> None:
                i = k
                while time.perf_counter() < end:
                    await one(i, time.perf_counter())
                    i += spec["concurrency"]

            await asyncio.gather(*(user(k) for k in range(spec["concurrency"])))
        elif mode == "open":
            interval = 1.0 / spec["rate"]
            tasks: set[asyncio.Task[None]] = set()
            admin = (
                asyncio.ensure_future(swaps(client, spec, started)) if spec.get("swaps") else None
            )
            n = 0
            while True:
                now = time.perf_counter()
                due = started + n * interval
                if due >= end:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
                    continue
                task = asyncio.ensure_future(one(n, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            if tasks:
                await asyncio.gather(*tasks)
            if admin is not None:
                events = await admin
        elif mode == "sequential":
            for i in range(len(texts) * spec.get("rounds", 1)):
                await one(i, time.perf_counter())
        elapsed = time.perf_counter() - started
    ok = statuses.get("200", 0)
    return {
        "statuses": statuses,
        "ok": ok,
        "seconds": elapsed,
        "throughput": ok / min(elapsed, spec["seconds"]) if mode != "sequential" else None,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
        "windows": windows,
        "events": events,
    }


async def swaps(client: Any, spec: dict[str, Any], started: float) -> list[str]:
    """Load v2 and switch versions while the load runs (the hot-swap scenario)."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    events = []
    plan = [(0.2, "load"), (0.35, "v2"), (0.55, "v1"), (0.75, "v2")]
    for fraction, action in plan:
        await asyncio.sleep(max(0.0, started + fraction * spec["seconds"] - time.perf_counter()))
        if action == "load":
            r = await client.post("/admin/models", json={"path": spec["v2"]}, headers=headers)
        else:
            r = await client.post(f"/admin/models/{action}/activate", headers=headers)
        events.append(f"{action}:{r.status_code}")
    return events


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load generator in a separate process and return its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def parse_statuses(metrics: str) -> dict[str, int]:
    found = re.findall(
        r'^voxloop_requests_total\{route="/v1/parse",status="(\d+)"\} (\S+)$', metrics, re.MULTILINE
    )
    return {status: int(float(n)) for status, n in found}


def server_statuses(url: str) -> dict[str, int]:
    import httpx

    return parse_statuses(httpx.get(url + "/metrics").text)


def wrk_script(path: Path, texts: list[str]) -> Path:
    bodies = ",\n".join(f"[==[{json.dumps({'text': t})}]==]" for t in texts)
    path.write_text(
        f"local bodies = {{\n{bodies}\n}}\n"
        "local i = 0\n"
        'local headers = {["Content-Type"] = "application/json"}\n'
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        '  return wrk.format("POST", "/v1/parse", headers, bodies[i])\n'
        "end\n"
    )
    return path


def run_wrk(url: str, script: Path, connections: int, seconds: float) -> dict[str, Any]:
    """Closed loop with wrk (one thread, so the server keeps most of the CPU)."""
    before = server_statuses(url)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url + "/v1/parse",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = server_statuses(url)
    statuses = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    statuses = {k: v for k, v in statuses.items() if v}

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    socket_errors = re.search(r"Socket errors: (.*)$", out, re.MULTILINE)
    total = sum(statuses.values()) or 1
    return {
        "statuses": statuses,
        "ok": statuses.get("200", 0),
        "throughput": float(rate.group(1)) * statuses.get("200", 0) / total if rate else 0.0,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "socket_errors": socket_errors.group(1) if socket_errors else None,
        "client": "wrk",
    }


def closed_loop(
    url: str, texts: list[str], script: Path | None, connections: int, seconds: float
) -> dict[str, Any]:
    if script is not None:
        return run_wrk(url, script, connections, seconds)
    spec = {
        "url": url,
        "texts": texts,
        "mode": "closed",
        "concurrency": connections,
        "seconds": seconds,
    }
    return {**run_worker(spec), "client": "httpx"}


# --- the benchmark ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def train(workdir: Path, model: Path | None) -> Path:
    from voxloop.data import load_corpus
    from voxloop.nlu.classical import ClassicalParser

    target = workdir / "models" / "v1"
    if model is not None:
        shutil.copytree(model, target)
        return target
    corpus = load_corpus(f"snips:{DATASETS / 'snips'}")
    started = time.perf_counter()
    ClassicalParser(sentence_encoder="none", threshold=0.5).fit(
        corpus.split("train"), corpus.split("dev")
    ).save(target)
    print(f"trained on SNIPS train in {time.perf_counter() - started:.1f} s")
    return target


def in_process_throughput(model: Path, texts: list[str], batch: int, seconds: float) -> float:
    from voxloop.nlu.base import load_parser

    parser = load_parser(model)
    parser.parse(texts[:batch])
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for i in range(0, len(texts), batch):
            done += len(parser.parse(texts[i : i + batch]))
    return done / (time.perf_counter() - started)


def split_by_recognition(model: Path, texts: list[str]) -> tuple[list[str], list[str]]:
    from voxloop.nlu.base import load_parser

    parses = load_parser(model).parse(texts)
    return (
        [p.text for p in parses if p.intent is not None],
        [p.text for p in parses if p.intent is None],
    )


def start_server(
    model: Path, log_dir: Path, args: argparse.Namespace, extra: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], str, float]:
    """``voxloop serve`` on a free port (``extra``: more of its options); returns once
    ``/readyz`` answers 200, with the seconds that took."""
    import httpx

    port = free_port()
    env = {**os.environ, "VOXLOOP_ADMIN_KEY": ADMIN_KEY}
    env.pop("VOXLOOP_API_KEY", None)
    started = time.perf_counter()
    process = subprocess.Popen(
        [
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
            "--max-batch-size",
            str(args.max_batch_size),
            "--max-queue",
            str(args.max_queue),
            *extra,
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    while True:
        if process.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url, time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help="use this SNIPS model instead of training")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=64, help="closed-loop clients")
    parser.add_argument("--soak-minutes", type=float, default=3.0)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-queue", type=int, default=512)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--httpx-only",
        action="store_true",
        help="closed-loop phases with the httpx client even when wrk is there",
    )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(worker(json.loads(args.worker)))))
        return 0

    from voxloop.data import load_corpus

    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}}
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    workdir = Path(tempfile.mkdtemp(prefix="voxloop-bench-serve-"))
    try:
        model = train(workdir, args.model)
        shutil.copytree(model, workdir / "models" / "v2")
        snips = (DATASETS / "snips" / "test" / "seq.in").read_text().split("\n")
        texts = [t.strip() for t in snips if t.strip()]
        recognized, not_recognized = split_by_recognition(model, texts)
        if len(not_recognized) < 50:  # out-of-domain texts: Home Assistant commands
            home = [u.text for u in load_corpus("hass:en").split("test")][:600]
            not_recognized += split_by_recognition(model, home)[1]
        print(
            f"request mix: {len(texts)} SNIPS test texts; "
            f"{len(recognized)} recognized / {len(not_recognized)} not-recognized texts"
        )

        batch = in_process_throughput(model, texts, args.max_batch_size, 5.0)
        single = in_process_throughput(model, texts, 1, 3.0)
        results["in_process"] = {
            "batch": args.max_batch_size,
            "texts_per_s": batch,
            "batch_1_texts_per_s": single,
        }
        print(
            f"in-process: {batch:.0f} texts/s in batches of {args.max_batch_size}, "
            f"{single:.0f} texts/s one at a time"
        )

        process, url, ready_s = start_server(model, workdir / "log", args)
        import httpx

        listing = httpx.get(
            url + "/admin/models", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ).json()
        m = listing["models"][0]
        results["startup"] = {
            "process_start_to_ready_s": ready_s,
            "model_load_s": m["load_seconds"],
            "warmup_s": m["warmup_seconds"],
        }
        print(
            f"start-up: /readyz after {ready_s:.2f} s from process start "
            f"(model load {m['load_seconds']:.3f} s, warm-up {m['warmup_seconds']:.3f} s)"
        )
        try:
            base = {"url": url, "texts": texts}
            script = (
                None
                if args.httpx_only or not shutil.which("wrk")
                else wrk_script(workdir / "mix.lua", texts)
            )
            closed_loop(url, texts, script, args.concurrency, 3)  # warm connections, caches
            sat = closed_loop(url, texts, script, args.concurrency, args.seconds)
            x = sat["throughput"]
            results["saturation"] = sat
            print(
                f"saturation ({args.concurrency} closed-loop {sat['client']} connections): "
                f"{x:.0f} req/s = {x / batch:.0%} of in-process batch throughput; "
                f"p50 {sat['p50_ms']:.1f} ms p99 {sat['p99_ms']:.1f} ms; {sat['statuses']}"
            )
            for share in (0.5, 0.8, 2.0):
                # At 2x the client may hold more requests in flight than the server queues.
                connections = 2 * args.max_queue if share > 1 else 256
                # Each phase starts on an idle server: the closed loop before it leaves up
                # to --concurrency requests queued (~150 ms of work for the transformer),
                # which would land in the first requests' latency.
                time.sleep(2.0)
                r = run_worker(
                    {
                        **base,
                        "mode": "open",
                        "rate": share * x,
                        "seconds": args.seconds,
                        "connections": connections,
                    }
                )
                results[f"open_{share:g}x"] = r
                errors = {k: v for k, v in r["statuses"].items() if k != "200"}
                print(
                    f"{share:.0%} of saturation ({share * x:.0f} req/s offered): "
                    f"{r['throughput']:.0f} req/s answered, p50 {r['p50_ms']:.1f} ms "
                    f"p99 {r['p99_ms']:.1f} ms, errors {errors or 0}"
                )
            seq_r = run_worker(
                {**base, "texts": recognized[:300], "mode": "sequential", "seconds": 0}
            )
            seq_n = run_worker(
                {
                    **base,
                    "texts": not_recognized[:300],
                    "mode": "sequential",
                    "seconds": 0,
                    "rounds": max(1, 300 // len(not_recognized)),
                }
            )
            results["recognized"], results["not_recognized"] = seq_r, seq_n
            print(
                f"recognized: p50 {seq_r['p50_ms']:.2f} ms p99 {seq_r['p99_ms']:.2f} ms "
                f"({seq_r['ok']}); not recognized: p50 {seq_n['p50_ms']:.2f} ms "
                f"p99 {seq_n['p99_ms']:.2f} ms ({seq_n['ok']})"
            )
            swap = run_worker(
                {
                    **base,
                    "mode": "open",
                    "rate": 0.5 * x,
                    "connections": 256,
                    "seconds": args.seconds,
                    "swaps": True,
                    "v2": str(workdir / "models" / "v2"),
                }
            )
            results["hot_swap"] = swap
            failed = sum(v for k, v in swap["statuses"].items() if k != "200")
            print(
                f"hot swap under 50% load ({' '.join(swap['events'])}): "
                f"{swap['ok']} answered, {failed} failed"
            )
            if script is not None:
                over = run_wrk(url, script, 2 * args.max_queue, args.seconds)
                results["overload_wrk"] = over
                print(
                    f"overload ({2 * args.max_queue} wrk connections, 2x the queue): "
                    f"{over['throughput']:.0f} req/s answered, statuses {over['statuses']}, "
                    f"socket errors: {over['socket_errors'] or 'none'}"
                )
            windows = []
            soak_end = time.monotonic() + args.soak_minutes * 60
            while time.monotonic() < soak_end:
                w = closed_loop(
                    url,
                    texts,
                    script,
                    args.concurrency,
                    min(30.0, max(1.0, soak_end - time.monotonic())),
                )
                windows.append(
                    {
                        "throughput": w["throughput"],
                        "rss_mb": rss_mb(process.pid),
                        "p99_ms": w["p99_ms"],
                        "statuses": w["statuses"],
                    }
                )
            results["soak"] = windows
            first, last = windows[0], windows[-1]
            failed = sum(v for w in windows for k, v in w["statuses"].items() if k != "200")
            print(
                f"soak {args.soak_minutes:g} min at saturation ({len(windows)} windows): "
                f"{first['throughput']:.0f} req/s and RSS {first['rss_mb']:.0f} MB in the "
                f"first window, {last['throughput']:.0f} req/s and RSS "
                f"{last['rss_mb']:.0f} MB in the last; max RSS "
                f"{max(w['rss_mb'] for w in windows):.0f} MB; non-200: {failed}"
            )
        finally:
            # requests still in flight when the last client stopped are answered (and
            # logged) after it: let them finish before counting the answers
            time.sleep(2)
            answered = server_statuses(url).get("200", 0)
            process.send_signal(signal.SIGTERM)
            code = process.wait(60)
            from voxloop.log.writer import read_log

            logged = read_log(workdir / "log").num_rows
            print(
                f"server stopped with status {code}; {answered} answered /v1/parse "
                f"requests, {logged} turns in the log"
            )
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
