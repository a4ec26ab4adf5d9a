"""The full KPI suite over a large simulated turn log: DuckDB vs pandas vs Spark.

    python benchmarks/bench_kpi.py --turns 10000000 --workdir /tmp/voxloop-bench-kpi

Generates (once) a log of --turns turns with the fast generator: SLURP test utterances parsed
by a classical model trained on SLURP dev. Then each engine runs in its own process (so peak
memory is its own, from getrusage): DuckDB (voxloop.log.kpi, memory_limit --memory), the same
KPIs written with pandas (checked equal to DuckDB's on the main tables), and Spark local[2].
Prints wall time, peak RSS and the pandas/DuckDB ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("VOXLOOP_DATASETS", REPO.parent / "shared" / "datasets"))


def generate(workdir: Path, turns: int, days: int) -> Path:
    log = workdir / f"log-{turns}"
    if (log / "turns").is_dir():
        return log
    from voxloop.data import load_corpus
    from voxloop.log.generate import ModelArm, generate_log_fast
    from voxloop.nlu.classical import ClassicalParser

    corpus = load_corpus(f"slurp:{DATASETS / 'slurp'}")
    model = ClassicalParser(sentence_encoder="none").fit(corpus.split("dev"))
    started = time.perf_counter()
    made = generate_log_fast(log, corpus.split("test"), [ModelArm(model, "a"),
                             ModelArm(model, "b", parse_ms=3.0)], turns=turns, days=days,
                             threshold=0.3, files_per_day=2)  # fmt: skip
    print(f"generated {made.turns:,} turns, {made.feedback:,} feedback in "
          f"{time.perf_counter() - started:.0f} s -> {log}", file=sys.stderr)  # fmt: skip
    return log


# --- the engines, each run in a child process -----------------------------------------
def run_duckdb(log: str, memory: str) -> dict:
    from voxloop.log.engines import DuckDBEngine
    from voxloop.log.kpi import compute_kpis
    from voxloop.log.store import LogStore

    engine = DuckDBEngine(LogStore(log), memory_limit=memory, threads=2)
    kpis = compute_kpis(engine)
    return {name: t.num_rows for name, t in kpis.items()} | {
        "by_slice": kpis["by_slice"].to_pylist()
    }


def run_spark(log: str, memory: str) -> dict:
    from voxloop.log.engines import SparkEngine
    from voxloop.log.kpi import compute_kpis
    from voxloop.log.store import LogStore

    engine = SparkEngine(LogStore(log), master="local[2]",
                         config={"spark.driver.memory": memory.lower().removesuffix("b")})  # fmt: skip
    try:
        kpis = compute_kpis(engine)
    finally:
        engine.close()
    return {name: t.num_rows for name, t in kpis.items()} | {
        "by_slice": kpis["by_slice"].to_pylist()
    }


def run_pandas(log: str, memory: str) -> dict:
    """The same definitions as voxloop/log/kpi/*.sql, in pandas."""
    import numpy as np
    import pandas as pd

    files = sorted(Path(log, "turns").glob("date=*/part-*.parquet"))
    cols = ["turn_id", "ts", "user_id", "session_id", "text", "intent", "confidence",
            "top_intent", "ranking", "domain", "model_version", "experiment", "arm", "latency_ms"]  # fmt: skip
    frames = []
    for f in files:
        part = pd.read_parquet(f, columns=cols)
        part["day"] = f.parent.name[5:]
        frames.append(part)
    t = pd.concat(frames, ignore_index=True)
    del frames
    t["second_intent"] = t["ranking"].map(lambda r: r[1]["intent"] if len(r) > 1 else None)
    t = t.drop(columns="ranking")
    fb = pd.concat([pd.read_parquet(f) for f in sorted(Path(log, "feedback").glob("date=*/*.parquet"))])
    value = np.where(fb["value"] > 1, (fb["value"] - 1) / 4, fb["value"])
    fb["barge_in"] = (fb["kind"] == "barge_in").astype(int)
    fb["abandoned"] = (fb["kind"] == "abandonment").astype(int)
    fb["rephrase_reported"] = (fb["kind"] == "rephrase").astype(int)
    fb["negative_feedback"] = (((fb["kind"] == "rating") & (value < 0.5))
                               | ((fb["kind"] == "task_success") & (fb["value"] < 0.5))).astype(int)  # fmt: skip
    folded = fb.groupby("turn_id")[["barge_in", "abandoned", "rephrase_reported",
                                    "negative_feedback"]].max()  # fmt: skip
    t = t.merge(folded, left_on="turn_id", right_index=True, how="left")
    for c in folded.columns:
        t[c] = t[c].fillna(0).astype(int)
    # rephrase: next turn of the same user within 30 s, trigram Jaccard >= 0.2
    t["ts_us"] = t["ts"].astype("int64") // (1000 if str(t["ts"].dtype).startswith("datetime64[ns") else 1)
    t = t.sort_values(["user_id", "ts_us", "turn_id"], kind="stable").reset_index(drop=True)
    same = t["user_id"].eq(t["user_id"].shift(-1))
    gap = t["ts_us"].shift(-1) - t["ts_us"]
    cand = np.flatnonzero(same & (gap <= 30_000_000))
    texts = t["text"].to_numpy()

    def grams(s: str) -> set:
        p = f" {s.lower()} "[:256]
        return {p[i : i + 3] for i in range(len(p) - 2)}

    sim = np.zeros(len(t))
    for i in cand:
        a, b = grams(texts[i]), grams(texts[i + 1])
        u = len(a | b)
        sim[i] = len(a & b) / u if u else 0.0
    t["not_recognized"] = t["intent"].isna().astype(int)
    t["low_confidence"] = (t["confidence"] < 0.5).astype(int)
    t["rephrased"] = ((sim >= 0.2) | (t["rephrase_reported"] == 1)).astype(int)
    t["defect"] = ((t["not_recognized"] + t["rephrased"] + t["barge_in"] + t["abandoned"]
                    + t["negative_feedback"]) > 0).astype(int)  # fmt: skip
    t["domain"] = t["domain"].fillna("(none)")
    t["intent"] = t["intent"].fillna("(not recognized)")
    flags = ["defect", "not_recognized", "low_confidence", "rephrased", "barge_in", "abandoned",
             "negative_feedback"]  # fmt: skip

    def rates(g: pd.core.groupby.DataFrameGroupBy) -> pd.DataFrame:
        out = g[flags].mean()
        out["turns"] = g.size()
        return out

    by_slice = rates(t.groupby("domain")).reset_index()
    t.groupby(["domain", "intent"]).size()
    lat = t.dropna(subset=["latency_ms"])
    for _mv, g in lat.groupby("model_version"):
        v = np.sort(g["latency_ms"].to_numpy())
        [v[int(np.ceil(p * len(v))) - 1] for p in (0.5, 0.95, 0.99)]
    rates(t.groupby(["day", "domain"]))
    t["utterance"] = t["text"].str.strip().str.lower()
    u = t.groupby(["domain", "utterance"]).agg(turns=("defect", "size"), defects=("defect", "sum"))
    u[u.defects > 0].sort_values(["defects", "turns"], ascending=False).groupby(level=0).head(10)
    low = t[t.low_confidence == 1]
    low.groupby(["top_intent", "second_intent"], dropna=False).size().nlargest(10)
    t.groupby("top_intent")[["not_recognized", "low_confidence"]].sum()
    rates(t[t.experiment.notna()].groupby(["experiment", "arm"]))
    return {"by_slice": by_slice.sort_values("domain").to_dict("records")}


def child(engine: str, log: str, memory: str) -> None:
    started = time.perf_counter()
    result = {"duckdb": run_duckdb, "pandas": run_pandas, "spark": run_spark}[engine](log, memory)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps({"engine": engine, "seconds": seconds, "peak_gb": peak, "result": result},
                     default=str))  # fmt: skip


def measure(engine: str, log: Path, memory: str, timeout: float) -> dict:
    command = [sys.executable, __file__, "--child", engine, "--log", str(log), "--memory", memory]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"engine": engine, "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    if done.returncode != 0:
        return {"engine": engine, "error": f"exit {done.returncode}: {done.stderr.strip()[-400:]}",
                "wall": wall, "peak_gb_children": children}  # fmt: skip
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_with_startup"] = wall
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--workdir", default="/tmp/voxloop-bench-kpi")
    p.add_argument("--memory", default="8GB", help="DuckDB memory_limit / Spark driver memory")
    p.add_argument("--engines", default="duckdb,pandas,spark")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--child")
    p.add_argument("--log")
    args = p.parse_args()
    if args.child:
        child(args.child, args.log, args.memory)
        return
    log = generate(Path(args.workdir), args.turns, args.days)
    results = {e: measure(e, log, args.memory, args.timeout) for e in args.engines.split(",")}
    print(f"KPI suite over {log} ({os.cpu_count()} cores)")
    for e, r in results.items():
        if "error" in r:
            print(f"  {e:7s} FAILED: {r['error']}")
        else:
            print(f"  {e:7s} {r['seconds']:8.1f} s  peak RSS {r['peak_gb']:.2f} GB")
    d, pd_ = results.get("duckdb", {}), results.get("pandas", {})
    if "seconds" in d and "seconds" in pd_:
        print(f"  pandas / DuckDB: {pd_['seconds'] / d['seconds']:.1f}x")
        a = {r["domain"]: round(r["defect_rate"], 9) for r in d["result"]["by_slice"]}
        b = {r["domain"]: round(r["defect"], 9) for r in pd_["result"]["by_slice"]}
        print(f"  defect rate per domain equal (DuckDB vs pandas): {a == b}")


if __name__ == "__main__":
    main()
