"""Experiments engine: A/A validation at scale, analysis speed, and the 10M-user SQL path.

    python benchmarks/bench_experiments.py                 # everything (a few minutes)
    python benchmarks/bench_experiments.py aa              # fixed-horizon A/A, 10,000 x 4
    python benchmarks/bench_experiments.py sequential      # A/A with daily peeking
    python benchmarks/bench_experiments.py speed           # 20 metrics x 3 arms, from stats
    python benchmarks/bench_experiments.py duckdb --users 10000000 --threads 2

``aa``: 10,000 A/A experiments per metric type (proportion, skewed mean, clustered
ratio, CUPED), 1,000 users per arm, through `analyze` — the false-positive rate must lie
in [alpha - 1pt, alpha + 1pt]. ``sequential``: A/A experiments looked at every day for
28 days; rejecting at the first always-valid p < alpha must happen at most alpha of the
time (naive daily peeking at the fixed-horizon p-value is shown for contrast).
``duckdb``: writes N users' per-user metric rows (20 metrics: 8 proportions, 6 means,
3 ratios, 3 CUPED) to Parquet with numpy + pyarrow, then — in a fresh process, so its
peak memory is the analysis path's alone — aggregates them with one DuckDB GROUP BY on
``--threads`` threads and analyses the result. Needs ``duckdb`` and ``pyarrow``.
Every figure printed is reproducible with the seed given.
"""

from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from voxloop.experiments.aggregate import statistics_from_rows, sufficient_statistics_sql
from voxloop.experiments.analyze import analyze, format_result
from voxloop.experiments.config import AnalysisSettings, Arm, ExperimentConfig, Metric
from voxloop.experiments.sequential import always_valid_p_value, sequential_lift
from voxloop.experiments.simulate import SYNTHETIC_METRICS, synthetic_statistics
from voxloop.experiments.stats import (
    Proportion,
    RatioStatistic,
    RegressionAdjusted,
    SampleMean,
    Statistic,
    lift,
)

ALPHA = 0.05


def wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a rate."""
    z = 1.959964
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


# --------------------------------------------------------------------------- A/A


def bench_aa(experiments: int, users: int, seed: int) -> bool:
    rng = np.random.default_rng(seed)
    metrics = tuple(
        Metric(name, "mean" if name == "cuped" else name, role="primary", cuped=name == "cuped")
        for name in SYNTHETIC_METRICS
    )
    arms = (Arm("A", 0.5), Arm("B", 0.5))
    ok = True
    print(f"Fixed-horizon A/A: {experiments:,} experiments per metric, {users:,} users per arm, "
          f"alpha = {ALPHA}, seed {seed}")  # fmt: skip
    for difference in ("relative", "absolute"):
        settings = AnalysisSettings(correction="none", difference=difference)
        config = ExperimentConfig("aa", arms, "A", metrics, analysis=settings)
        start = time.perf_counter()
        data = {
            m: [[d[0] for d in synthetic_statistics(m, experiments=experiments,
                                                    users_per_day=users, rng=rng)]
                for _ in range(2)]
            for m in SYNTHETIC_METRICS
        }  # fmt: skip
        made = time.perf_counter() - start
        rejections: dict[str, int] = dict.fromkeys(SYNTHETIC_METRICS, 0)
        start = time.perf_counter()
        for e in range(experiments):
            stats: dict[str, dict[str, Statistic]] = {
                arm: {m: data[m][i][e] for m in SYNTHETIC_METRICS}
                for i, arm in enumerate(("A", "B"))
            }
            for row in analyze(stats, config).metrics:
                rejections[row.metric] += row.p_value is not None and row.p_value < ALPHA
        spent = time.perf_counter() - start
        print(f"  {difference} lift (data {made:.1f} s, {experiments:,} analyses {spent:.1f} s)")
        for metric, k in rejections.items():
            rate = k / experiments
            low, high = wilson(k, experiments)
            inside = ALPHA - 0.01 <= rate <= ALPHA + 0.01
            ok &= inside
            print(f"    {metric:<11} FPR {rate:6.2%}  (95% CI {low:.2%}-{high:.2%})  "
                  f"{'within' if inside else 'OUTSIDE'} [4%, 6%]")  # fmt: skip
    return ok


def bench_sequential(experiments: int, days: int, users_per_day: int, seed: int) -> bool:
    rng = np.random.default_rng(seed)
    print(f"Sequential A/A with daily peeking: {experiments:,} experiments per metric, "
          f"{days} daily looks, {users_per_day} users per arm per day, alpha = {ALPHA}, "
          f"default tuning, seed {seed}")  # fmt: skip
    ok = True
    for metric in SYNTHETIC_METRICS:
        start = time.perf_counter()
        a = synthetic_statistics(metric, experiments=experiments, users_per_day=users_per_day,
                                 days=days, rng=rng)  # fmt: skip
        b = synthetic_statistics(metric, experiments=experiments, users_per_day=users_per_day,
                                 days=days, rng=rng)  # fmt: skip
        sequential = naive = final = 0
        for control, treatment in zip(a, b, strict=True):
            looks = list(zip(control, treatment, strict=True))
            seq_p = [sequential_lift(c, t, alpha=ALPHA).p_value for c, t in looks]
            fixed_p = [lift(c, t, alpha=ALPHA).p_value for c, t in looks]
            sequential += always_valid_p_value(p for p in seq_p if p is not None) < ALPHA
            naive += any(p is not None and p < ALPHA for p in fixed_p)
            final += fixed_p[-1] is not None and fixed_p[-1] < ALPHA
        spent = time.perf_counter() - start
        rate = sequential / experiments
        low, high = wilson(sequential, experiments)
        ok &= rate <= ALPHA
        print(f"  {metric:<11} sequential FPR {rate:6.2%} (95% CI {low:.2%}-{high:.2%}) "
              f"{'<=' if rate <= ALPHA else '>'} alpha; naive daily peeking "
              f"{naive / experiments:6.2%}; fixed horizon at day {days} "
              f"{final / experiments:6.2%}  ({spent:.1f} s)")  # fmt: skip
    return ok


# --------------------------------------------------------------------------- speed

PROPORTIONS, MEANS, RATIOS, CUPED = 8, 6, 3, 3


def twenty_metric_config() -> ExperimentConfig:
    metrics = (
        [Metric(f"p{i}", "proportion", role="primary" if i == 0 else "secondary")
         for i in range(PROPORTIONS)]
        + [Metric(f"m{i}", "mean", role="guardrail" if i == 0 else "secondary",
                  direction="decrease" if i == 0 else "increase") for i in range(MEANS)]
        + [Metric(f"r{i}", "ratio", direction="decrease") for i in range(RATIOS)]
        + [Metric(f"c{i}", "mean", cuped=True) for i in range(CUPED)]
    )  # fmt: skip
    arms = (Arm("A", 0.34), Arm("B", 0.33), Arm("C", 0.33))
    return ExperimentConfig("bench", arms, "A", tuple(metrics))


def bench_speed(repeats: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    config = twenty_metric_config()
    stats: dict[str, dict[str, Statistic]] = {}
    for arm in config.arms:
        row: dict[str, Statistic] = {}
        n = round(3_000_000 * arm.weight)
        for metric in config.metrics:
            k = n / 1e6
            if metric.type == "proportion":
                row[metric.name] = Proportion(n, int(rng.binomial(n, 0.3)))
            elif metric.type == "ratio":
                row[metric.name] = RatioStatistic(n, 4e5 * k, 9e5 * k, 3e6 * k, 1.2e7 * k, 2e6 * k)
            elif metric.cuped:
                row[metric.name] = RegressionAdjusted(
                    n, 5e6 * k, 3.5e7 * k, 4.8e6 * k, 3.2e7 * k, 3.3e7 * k
                )
            else:
                mean = rng.normal(10, 0.01)
                row[metric.name] = SampleMean(n, n * mean, n * (mean * mean + 4.0))
        stats[arm.name] = row
    print(f"Analysis of {len(config.metrics)} metrics x {len(config.arms)} arms from sufficient "
          f"statistics ({repeats} runs each, median):")  # fmt: skip
    for engine in ("frequentist", "sequential", "bayesian"):
        settings = AnalysisSettings(engine=engine)
        cfg = ExperimentConfig(config.name, config.arms, "A", config.metrics, analysis=settings)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = analyze(stats, cfg)
            times.append(time.perf_counter() - start)
            result.to_json()
        print(f"  {engine:<11} {np.median(times) * 1000:7.2f} ms  (verdict: {result.verdict})")


# --------------------------------------------------------------------------- DuckDB path


def write_users(path: Path, users: int, seed: int, chunk: int = 1_000_000) -> None:
    """N users' per-user metric rows, written to Parquet in chunks (bounded memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, users, chunk):
        n = min(chunk, users - start)
        arms = rng.choice(np.array(["A", "B", "C"]), n, p=[0.34, 0.33, 0.33])
        columns: dict[str, np.ndarray] = {
            "user_id": np.arange(start, start + n, dtype=np.int64),
            "arm": arms,
        }
        lifted = (arms == "C").astype(np.float32) * 0.01
        for i in range(PROPORTIONS):
            columns[f"p{i}"] = (rng.random(n, dtype=np.float32) < 0.3 + lifted).astype(np.int8)
        for i in range(MEANS):
            columns[f"m{i}"] = rng.lognormal(1.0, 0.8, n).astype(np.float32)
        for i in range(RATIOS):
            den = (1 + rng.poisson(4.0, n)).astype(np.int16)
            columns[f"r{i}_numerator"] = rng.binomial(den, 0.1).astype(np.int16)
            columns[f"r{i}_denominator"] = den
        for i in range(CUPED):
            pre = rng.gamma(2.0, 2.0, n).astype(np.float32)
            columns[f"c{i}_pre"] = pre
            columns[f"c{i}"] = (pre + rng.normal(0, 2.0, n)).astype(np.float32)
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=n)
    assert writer is not None
    writer.close()


def aggregate_and_analyze(path: Path, threads: int) -> None:
    """The measured path: one DuckDB GROUP BY over the Parquet file, then `analyze`."""
    import duckdb

    start = time.perf_counter()
    config = twenty_metric_config()
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    sql = sufficient_statistics_sql(config, f"read_parquet('{path}')")
    rows = con.execute(sql).fetchall()
    aggregated = time.perf_counter()
    stats = statistics_from_rows(rows, config)
    result = analyze(stats, config)
    done = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    users = sum(a.users for a in result.arms)
    print(f"  users {users:,}; DuckDB aggregation {aggregated - start:.2f} s; analysis "
          f"{(done - aggregated) * 1000:.1f} ms; total {done - start:.2f} s; "
          f"peak RSS {peak_mb:.0f} MB (threads = {threads})")  # fmt: skip
    print("  " + format_result(result).splitlines()[-1])


def bench_duckdb(users: int, threads: int, seed: int, workdir: Path | None) -> None:
    directory = Path(workdir or tempfile.mkdtemp(prefix="voxloop-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"users-{users}-{seed}.parquet"
    print(f"DuckDB path: {users:,} users x 20 metrics (8 proportions, 6 means, 3 ratios, "
          f"3 CUPED), 3 arms")  # fmt: skip
    if not path.exists():
        start = time.perf_counter()
        write_users(path, users, seed)
        print(f"  wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - start:.1f} s (data generation, not measured below)")  # fmt: skip
    else:
        print(f"  reusing {path} ({path.stat().st_size / 1e6:.0f} MB)")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "_measure", str(path), "--threads", str(threads)], check=True
    )
    print(f"  wall time of the measuring process (start-up and imports included): "
          f"{time.perf_counter() - start:.2f} s")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "part",
        nargs="?",
        default="all",
        choices=["all", "aa", "sequential", "speed", "duckdb", "_measure"],
    )
    parser.add_argument("path", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--sequential-experiments", type=int, default=4_000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--users", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=2025)
    args = parser.parse_args()  # fmt: skip
    if args.part == "_measure":
        aggregate_and_analyze(Path(args.path), args.threads)
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_classical import machine  # here, not at the top: the measuring children stay lean

    print(f"machine: {machine()}, {len(__import__('os').sched_getaffinity(0))} cores available")
    ok = True
    if args.part in ("all", "aa"):
        ok &= bench_aa(args.experiments, 1000, args.seed)
    if args.part in ("all", "sequential"):
        ok &= bench_sequential(args.sequential_experiments, args.days, 250, args.seed)
    if args.part in ("all", "speed"):
        bench_speed(200, args.seed)
    if args.part in ("all", "duckdb"):
        bench_duckdb(args.users, args.threads, args.seed, args.workdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
