"""A/B of server variants in one run: in-process batch throughput and wrk saturation.

Each variant is a set of environment variables for the server process (and the in-process
measurement), e.g. another checkout of voxloop first on ``PYTHONPATH``. Rounds alternate
between the variants so that a shared machine's drift hits them alike; medians are printed.

    git worktree add /tmp/voxloop-old 134f984
    python benchmarks/probe_serve_ab.py --model /work/models/snips \\
        --variant new= --variant old=PYTHONPATH=/tmp/voxloop-old/src --rounds 3

Needs wrk (``apt-get install wrk``), like bench_serve.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import bench_serve as bs

from voxloop.data import load_corpus


def variant(spec: str) -> tuple[str, dict[str, str]]:
    """``NAME=`` or ``NAME=VAR=VALUE[,VAR=VALUE...]``."""
    name, _, rest = spec.partition("=")
    env = dict(pair.split("=", 1) for pair in rest.split(",") if pair)
    return name, env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--variant", action="append", type=variant, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=12.0, help="measured wrk seconds")
    args = ap.parse_args()
    texts = [u.text for u in load_corpus(f"snips:{bs.DATASETS / 'snips'}").split("test")]
    script = bs.wrk_script(Path("/tmp/probe_serve_ab.lua"), texts)
    server_args = argparse.Namespace(max_batch_size=32, max_queue=512)
    results: dict[str, dict[str, list[float]]] = {n: {"in": [], "sat": []} for n, _ in args.variant}
    for r in range(args.rounds):
        for name, env in args.variant:
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                results[name]["in"].append(bs.in_process_throughput(args.model, texts, 32, 8))
                log = Path(f"/tmp/probe_serve_ab-log-{name}")
                process, url, _ = bs.start_server(args.model, log, server_args)
                try:
                    bs.run_wrk(url, script, 64, 3)  # warm-up
                    time.sleep(1)
                    results[name]["sat"].append(
                        bs.run_wrk(url, script, 64, args.seconds)["throughput"]
                    )
                finally:
                    process.terminate()
                    process.wait(60)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            print(f"{name} round {r}: in-process {results[name]['in'][-1]:.0f}/s, saturation "
                  f"{results[name]['sat'][-1]:.0f} req/s, load {os.getloadavg()[0]:.2f}",
                  flush=True)  # fmt: skip
    print("| variant | in-process texts/s | saturation req/s | ratio |\n|---|---|---|---|")
    for name, got in results.items():
        inside, sat = statistics.median(got["in"]), statistics.median(got["sat"])
        print(f"| {name} | {inside:.0f} | {sat:.0f} | {sat / inside:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
