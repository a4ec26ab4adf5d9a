"""Experiment analysis straight from a turn log: `voxloop experiment analyze` at scale.

    python benchmarks/bench_experiment_log.py --log DIR [--repeats 3]

DIR is a generated A/B log (for example the 10M-turn log that
``python benchmarks/bench_kpi.py --turns 10000000`` writes: experiment ``model``, arms
``control`` and ``treatment``). Every per-user metric of the log's catalog is analysed
(`voxloop.experiments.from_log.LOG_METRICS`: 12 metrics), in a new process per repeat so
the peak memory is its own. Prints wall time, CPU time and peak RSS (median of repeats).
Issue 6's figure is 20 metrics x 3 arms over 10M users (target <= 30 s with DuckDB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import json, sys, time, resource
from voxloop.experiments.config import loads_config
from voxloop.experiments.from_log import LOG_METRICS, analyze_log
lines = ['version = 1', '[experiments.model]', 'salt = "model"', 'control = "control"',
         '[experiments.model.arms.control]', 'weight = 0.5',
         '[experiments.model.arms.treatment]', 'weight = 0.5']
for i, (name, m) in enumerate(LOG_METRICS.items()):
    lines += [f'[experiments.model.metrics.{name}]', f'type = "{m.type}"']
    if i == 0:
        lines.append('role = "primary"')
config = loads_config("\\n".join(lines))["model"]
started = time.perf_counter()
analysis = analyze_log(sys.argv[1], config)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                  "rss_gb": usage.ru_maxrss / 1024 / 1024, "users": analysis.users,
                  "metrics": len(config.metrics), "verdict": analysis.result.verdict}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    turns = sum(1 for _ in args.log.glob("turns/date=*/*.parquet"))
    print(f"# bench_experiment_log — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}; {args.log} ({turns} turn files)\n")  # fmt: skip
    runs = []
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", CHILD, str(args.log)], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        runs.append(json.loads(out.strip().splitlines()[-1]))
        r = runs[-1]
        print(f"{r['users']:,} users, {r['metrics']} metrics x 2 arms: {r['wall']:.1f} s wall, "
              f"{r['cpu']:.1f} s CPU, peak {r['rss_gb']:.2f} GB; verdict {r['verdict']} "
              f"(load {os.getloadavg()[0]:.2f})")  # fmt: skip
    print(f"\nmedian wall {statistics.median(r['wall'] for r in runs):.1f} s, "
          f"median CPU {statistics.median(r['cpu'] for r in runs):.1f} s, "
          f"peak RSS {max(r['rss_gb'] for r in runs):.2f} GB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
