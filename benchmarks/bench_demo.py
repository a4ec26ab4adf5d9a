"""How long the whole loop takes: ``voxloop demo`` with its default sizes, end to end.

    python benchmarks/bench_demo.py [--repeats 3] [--users 500] [--days 5]

Runs the real command in a fresh work directory each time (a new process: imports, two
trainings, a real server, simulated users over HTTP, KPIs, analysis, OPE, the report) and
prints the wall time of each step and of the whole, the median over the repeats, and the
verdicts. Target (issue 9): <= 5 minutes on 2 cores with the default sizes.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_classical import machine  # noqa: E402

STEP = re.compile(r"^\[(\d)/6\] (.*)$")
DONE = re.compile(r"^\s+done in ([\d.]+) s$")


def run_once(users: int, days: int) -> tuple[float, dict[str, float], list[str]]:
    with tempfile.TemporaryDirectory(prefix="voxloop-bench-demo-") as work:
        args = [sys.executable, "-m", "voxloop", "demo", "--workdir", work,
                "--users", str(users), "--days", str(days)]  # fmt: skip
        started = time.perf_counter()
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"voxloop demo failed:\n{result.stdout}\n{result.stderr}")
    steps: dict[str, float] = {}
    current = ""
    for line in result.stdout.splitlines():
        if m := STEP.match(line):
            current = f"{m[1]}. {m[2]}"
        elif (m := DONE.match(line)) and current:
            steps[current] = float(m[1])
    verdicts = [
        s for line in result.stdout.splitlines() if (s := line.strip()).startswith("experiment ")
    ]
    return seconds, steps, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--days", type=int, default=5)
    args = parser.parse_args()
    print(f"# bench_demo — {datetime.now():%Y-%m-%d %H:%M}, {machine()}, "
          f"load average {os.getloadavg()[0]:.2f}\n")  # fmt: skip
    totals = []
    per_step: dict[str, list[float]] = {}
    for i in range(args.repeats):
        seconds, steps, verdicts = run_once(args.users, args.days)
        totals.append(seconds)
        for name, value in steps.items():
            per_step.setdefault(name, []).append(value)
        print(f"run {i + 1}: {seconds:.1f} s (load average {os.getloadavg()[0]:.2f})")
        for verdict in verdicts:
            print(f"  {verdict}")
    print(f"\n| step | median of {args.repeats} |\n|---|---:|")
    for name, values in per_step.items():
        print(f"| {name} | {statistics.median(values):.1f} s |")
    print(f"| **whole command** (process start to exit) | **{statistics.median(totals):.1f} s** |")
    print("\ntarget <= 300 s:", "met" if statistics.median(totals) <= 300 else "MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
