"""The full KPI suite over a large simulated turn log: DuckDB vs pandas vs Spark.

    python benchmarks/bench_kpi.py --turns 10000000 --memory 8GB

Generates (once) a log of --turns turns with the fast generator: SLURP test utterances parsed
by a classical model trained on SLURP dev; the generator's ground truth (which turns were
rephrased, and how) is kept beside the log as ``log-N.truth.parquet``. Then each engine runs
in its own process (so peak memory is its own, from getrusage): DuckDB (voxloop.log.kpi,
memory_limit 3/4 of --memory so the whole process stays within it, 2 threads; --repeat
times, median quoted), the same ten KPI tables written with pandas, and Spark local[2].
Every cell of every KPI table must be equal across engines (floats to 1e-9 relative; the
script names the first cell that differs and exits 1). Prints wall time, peak RSS, the load
average around each run, the pandas/DuckDB ratio, and the rephrase detector's precision and
recall against the ground truth (overall and per kind of rephrase).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
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
    import pyarrow as pa
    import pyarrow.parquet as pq

    truth = pa.table({"turn_id": list(made.rephrase_kinds),
                      "kind": list(made.rephrase_kinds.values())})  # fmt: skip
    pq.write_table(truth, f"{log}.truth.parquet")
    return log


def rephrase_quality(engine: object, truth: str) -> dict:
    """Precision and recall of turn_facts.rephrased against the generator's ground truth."""
    found = engine.sql(  # type: ignore[attr-defined]
        f"SELECT f.rephrased, t.kind FROM turn_facts f LEFT JOIN "
        f"read_parquet('{truth}') t ON t.turn_id = f.turn_id "
        f"WHERE f.rephrased = 1 OR t.kind IS NOT NULL"
    ).to_pylist()
    flagged = sum(r["rephrased"] for r in found)
    hits = [r["kind"] for r in found if r["rephrased"] and r["kind"]]
    kinds = [r["kind"] for r in found if r["kind"]]
    out = {"flagged": flagged, "true": len(kinds),
           "precision": len(hits) / flagged if flagged else None,
           "recall": len(hits) / len(kinds) if kinds else None}  # fmt: skip
    for kind in sorted(set(kinds)):
        out[f"recall_{kind}"] = hits.count(kind) / kinds.count(kind)
    return out


# --- the engines, each run in a child process -----------------------------------------
def run_duckdb(log: str, memory: str) -> dict:
    from voxloop.log.engines import DuckDBEngine
    from voxloop.log.kpi import STAGES, KpiOptions, kpi_sql, kpis_to_json
    from voxloop.log.store import LogStore

    # what compute_kpis runs (run_kpis), each step timed: which KPI dominates
    started = time.perf_counter()
    # DuckDB's memory_limit bounds its buffer manager, not every allocation (at 10M turns a
    # limit of 8GB gave a peak RSS of 8.8 GB): give it 3/4 of the budget
    limit = f"{float(memory.upper().removesuffix('GB')) * 0.75:g}GB"
    engine = DuckDBEngine(LogStore(log), memory_limit=limit, threads=2)
    options, steps, kpis = KpiOptions(), {}, {}
    for name in (*STAGES, *options.tables):
        step = time.perf_counter()
        if name in STAGES:
            engine.materialize(name, kpi_sql(name, options))
        else:
            kpis[name] = engine.sql(kpi_sql(name, options))
        steps[name] = round(time.perf_counter() - step, 2)
    seconds = time.perf_counter() - started
    truth = f"{log}.truth.parquet"
    quality = rephrase_quality(engine, truth) if Path(truth).exists() else None
    return {"seconds": seconds, "tables": kpis_to_json(kpis), "rephrase": quality,
            "steps": steps}  # fmt: skip


def run_spark(log: str, memory: str) -> dict:
    from voxloop.log.engines import SparkEngine
    from voxloop.log.kpi import compute_kpis, kpis_to_json
    from voxloop.log.store import LogStore

    started = time.perf_counter()
    engine = SparkEngine(LogStore(log), master="local[2]",
                         config={"spark.driver.memory": memory.lower().removesuffix("b")})  # fmt: skip
    try:
        kpis = compute_kpis(engine)
    finally:
        engine.close()
    return {"seconds": time.perf_counter() - started, "tables": kpis_to_json(kpis)}


def run_pandas(log: str, memory: str) -> dict:
    """Every KPI table of voxloop/log/kpi/*.sql, in pandas: the same definitions, the same
    columns and order, with the same algorithm for the rephrase detector (candidates from
    the next turn of the same user, similarity once per distinct text pair)."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from voxloop.log.generate import lower_as_sql, trigrams

    started = time.perf_counter()
    files = sorted(Path(log, "turns").glob("date=*/part-*.parquet"))
    cols = ["turn_id", "ts", "user_id", "session_id", "text", "intent", "confidence",
            "top_intent", "domain", "model_version", "experiment", "arm", "latency_ms"]  # fmt: skip
    frames = []
    for f in files:
        # the runner-up intent: its own column, or (logs written before it) the ranking's
        if "second_intent" in pq.read_schema(f).names:
            part = pd.read_parquet(f, columns=[*cols, "second_intent"])
        else:
            part = pd.read_parquet(f, columns=[*cols, "ranking"])
            part["second_intent"] = part.pop("ranking").map(
                lambda r: r[1]["intent"] if len(r) > 1 else None
            )
        part["day"] = f.parent.name[5:]
        frames.append(part)
    t = pd.concat(frames, ignore_index=True)
    del frames
    fb = pd.concat(
        [pd.read_parquet(f) for f in sorted(Path(log, "feedback").glob("date=*/*.parquet"))]
    )
    value = fb["value"]  # ratings are on [0, 1] (voxloop.schema.RATING_SCALE)
    fb["barge_in"] = (fb["kind"] == "barge_in").astype(int)
    fb["abandoned"] = (fb["kind"] == "abandonment").astype(int)
    fb["rephrase_reported"] = (fb["kind"] == "rephrase").astype(int)
    fb["negative_feedback"] = (((fb["kind"] == "rating") & (value >= 0) & (value < 0.5))
                               | ((fb["kind"] == "task_success") & (fb["value"] < 0.5))).astype(int)  # fmt: skip
    folded = fb.groupby("turn_id")[["barge_in", "abandoned", "rephrase_reported",
                                    "negative_feedback"]].max()  # fmt: skip
    del fb
    t = t.merge(folded, left_on="turn_id", right_index=True, how="left")
    for c in folded.columns:
        t[c] = t[c].fillna(0).astype(int)
    # rephrase: next turn of the same user within 30 s, trigram Jaccard >= 0.2, or within
    # 8 s of a declined / low-confidence turn with Jaccard >= 0.05
    t["ts_us"] = t["ts"].astype("int64") // (
        1000 if str(t["ts"].dtype).startswith("datetime64[ns") else 1
    )
    t = t.sort_values(["user_id", "ts_us", "turn_id"], kind="stable").reset_index(drop=True)
    same = t["user_id"].eq(t["user_id"].shift(-1)) & t["user_id"].notna()
    gap = t["ts_us"].shift(-1) - t["ts_us"]
    cand = np.flatnonzero(same & (gap <= 30_000_000))
    texts = t["text"].to_numpy()

    grams = functools.cache(trigrams)  # as the SQL: once per text, similarity once per pair

    memo: dict[tuple[str, str], float] = {}

    def jaccard(pair: tuple[str, str]) -> float:
        pair = pair if pair[0] <= pair[1] else (pair[1], pair[0])  # Jaccard is symmetric
        if pair not in memo:
            a, b = grams(pair[0]), grams(pair[1])
            u = len(a | b)
            memo[pair] = len(a & b) / u if u else 0.0
        return memo[pair]

    sim = np.full(len(t), np.nan)
    sim[cand] = [jaccard(p) for p in zip(texts[cand], texts[cand + 1], strict=True)]
    quick = np.zeros(len(t), bool)
    quick[cand] = gap.to_numpy()[cand] <= 8_000_000
    t["not_recognized"] = t["intent"].isna().astype(int)
    t["low_confidence"] = (t["confidence"] < 0.5).astype(int)
    unsure = (t["not_recognized"] == 1) | (t["low_confidence"] == 1)
    t["rephrased"] = ((sim >= 0.2) | (quick & (sim >= 0.05) & unsure)
                      | (t["rephrase_reported"] == 1)).astype(int)  # fmt: skip
    t["defect"] = ((t["not_recognized"] + t["rephrased"] + t["barge_in"] + t["abandoned"]
                    + t["negative_feedback"]) > 0).astype(int)  # fmt: skip
    for c, missing in (("domain", "(none)"), ("intent", "(not recognized)"),
                       ("top_intent", "(none)"), ("second_intent", "(none)"),
                       ("experiment", "(none)"), ("arm", "(none)")):  # fmt: skip
        t[c] = t[c].fillna(missing)
    flags = ["defect", "not_recognized", "low_confidence", "rephrased", "barge_in", "abandoned",
             "negative_feedback"]  # fmt: skip
    names = ["defect_rate", "not_recognized_rate", "low_confidence_rate", "rephrase_rate",
             "barge_in_rate", "abandonment_rate", "negative_feedback_rate"]  # fmt: skip

    def rates(g: pd.core.groupby.DataFrameGroupBy) -> pd.DataFrame:
        out = g[flags].mean().rename(columns=dict(zip(flags, names, strict=True)))
        out.insert(0, "defects", g["defect"].sum())
        return out

    out: dict[str, pd.DataFrame] = {}
    whole = t.groupby(lambda _: 0)
    out["summary"] = pd.concat([pd.DataFrame({
        "turns": [len(t)], "users": [t["user_id"].nunique()],
        "sessions": [t["session_id"].nunique()], "days": [t["day"].nunique()]}),
        rates(whole).reset_index(drop=True)], axis=1)  # fmt: skip
    g = t.groupby("domain")
    by_slice = pd.concat([g.size().rename("turns"), rates(g)], axis=1).reset_index()
    by_slice.insert(2, "share", by_slice["turns"] / len(t))
    out["by_slice"] = by_slice.sort_values(["turns", "domain"], ascending=[False, True])
    volume = t.groupby(["domain", "intent"]).size().rename("turns").reset_index()
    volume["share"] = volume["turns"] / len(t)
    volume["domain_share"] = volume["turns"] / volume.groupby("domain")["turns"].transform("sum")
    out["volume"] = volume.sort_values(["domain", "turns", "intent"], ascending=[True, False, True])
    rows = []
    for mv, lat in t.dropna(subset=["latency_ms"]).groupby("model_version"):
        v = np.sort(lat["latency_ms"].to_numpy())
        rows.append({"model_version": mv, "turns": len(v),
                     **{f"p{round(p * 100)}_ms": v[int(np.ceil(p * len(v))) - 1]
                        for p in (0.5, 0.95, 0.99)},
                     "max_ms": v[-1], "mean_ms": v.mean()})  # fmt: skip
    out["latency"] = pd.DataFrame(rows)
    g = t.groupby(["day", "domain"])
    out["daily"] = pd.concat([g.size().rename("turns"), rates(g)], axis=1).reset_index()
    t["utterance"] = t["text"].str.strip(" ").str.lower()
    # the texts whose lower-casing the engines normalise (a dotted capital I, a sigma)
    odd = {x: lower_as_sql(x) for x in t["utterance"].unique() if lower_as_sql(x) != x}
    if odd:
        t["utterance"] = t["utterance"].replace(odd)
    u = (
        t.groupby(["domain", "utterance"])
        .agg(
            top_intent=("top_intent", "min"),
            turns=("defect", "size"),
            defects=("defect", "sum"),
            not_recognized=("not_recognized", "sum"),
            low_confidence=("low_confidence", "sum"),
            rephrased=("rephrased", "sum"),
            negative_feedback=("negative_feedback", "sum"),
        )
        .reset_index()
    )
    u = u[u.defects > 0].sort_values(["domain", "defects", "turns", "utterance"],
                                     ascending=[True, False, False, True])  # fmt: skip
    u.insert(1, "rank", u.groupby("domain").cumcount() + 1)
    out["top_failing"] = u[u["rank"] <= 10]
    t["declined_or_unsure"] = unsure.astype(int)
    g = t.groupby("top_intent")
    spots = g.agg(domain=("domain", "min"), turns=("defect", "size"),
                  not_recognized=("not_recognized", "sum"),
                  low_confidence=("low_confidence", "sum"),
                  declined_or_unsure=("declined_or_unsure", "sum"),
                  mean_confidence=("confidence", "mean")).reset_index()  # fmt: skip
    spots.insert(6, "not_recognized_rate", spots["not_recognized"] / spots["turns"])
    spots.insert(7, "low_confidence_rate", spots["low_confidence"] / spots["turns"])
    spots = spots[spots["declined_or_unsure"] > 0]
    out["hot_spots"] = spots.sort_values(
        ["declined_or_unsure", "low_confidence", "not_recognized", "top_intent"],
        ascending=[False, False, False, True]).head(10)  # fmt: skip
    pairs = t[unsure].groupby(["top_intent", "second_intent"]).agg(
        turns=("defect", "size"), not_recognized=("not_recognized", "sum"),
        mean_confidence=("confidence", "mean")).reset_index()  # fmt: skip
    out["confusions"] = pairs.sort_values(["turns", "top_intent", "second_intent"],
                                          ascending=[False, True, True]).head(10)  # fmt: skip
    g = t[t["experiment"] != "(none)"].groupby(["experiment", "arm"])
    out["arms"] = pd.concat([g["user_id"].nunique().rename("users"), g.size().rename("turns"),
                             g["model_version"].min(), g["latency_ms"].mean().rename(
                                 "mean_latency_ms"), rates(g)], axis=1).reset_index()  # fmt: skip
    # the 20 most recent rephrased turns (declined first), with the next turn when it came
    # within the window
    t["next_text"] = pd.Series(texts, dtype=object).shift(-1).where(~np.isnan(sim))
    t["next_gap_s"] = (gap / 1_000_000).where(~np.isnan(sim))
    t["next_similarity"] = sim
    rephrased = t[t["rephrased"] == 1].sort_values(["not_recognized", "ts_us", "turn_id"],
                                                   ascending=[False, False, True])  # fmt: skip
    out["friction_examples"] = rephrased.head(20)[[
        "day", "domain", "text", "intent", "confidence", "next_text", "next_gap_s",
        "next_similarity", "barge_in", "abandoned", "negative_feedback"]]  # fmt: skip
    seconds = time.perf_counter() - started

    def plain(v: object) -> object:  # numpy scalars as Python ones, NaN as None
        v = v.item() if isinstance(v, np.generic) else v
        return None if isinstance(v, float) and np.isnan(v) else v

    tables = {k: [{c: plain(x) for c, x in r.items()} for r in v.to_dict("records")]
              for k, v in out.items()}  # fmt: skip
    return {"seconds": seconds, "tables": tables}


def same_tables(a: dict, b: dict) -> list[str]:
    """Where two engines' KPI tables differ (a table missing, column names, row count, then
    the first cell that differs; floats to 1e-9 relative — means depend on summation order)."""
    import math

    diffs = []
    for name in sorted(a.keys() | b.keys()):
        if name not in a or name not in b:
            diffs.append(f"{name}: computed by one engine only")
            continue
        ra, rb = a[name], b[name]
        if len(ra) != len(rb):
            diffs.append(f"{name}: {len(ra)} rows against {len(rb)}")
            continue
        for i, (x, y) in enumerate(zip(ra, rb, strict=True)):
            if list(x) != list(y):
                diffs.append(f"{name}: columns {list(x)} against {list(y)}")
                break
            bad = [k for k in x if not (x[k] == y[k] or (
                isinstance(x[k], int | float) and isinstance(y[k], int | float)
                and math.isclose(x[k], y[k], rel_tol=1e-9, abs_tol=1e-12)))]  # fmt: skip
            if bad:
                diffs.append(f"{name} row {i + 1}: " + ", ".join(
                    f"{k} {x[k]!r} against {y[k]!r}" for k in bad))  # fmt: skip
                break
    return diffs


def child(engine: str, log: str, memory: str) -> None:
    result = {"duckdb": run_duckdb, "pandas": run_pandas, "spark": run_spark}[engine](log, memory)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024**2
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # all threads; JVM children not
    print(json.dumps({"engine": engine, "seconds": result.pop("seconds"), "peak_gb": peak,
                      "result": result}, default=str))  # fmt: skip


def _tree_rss_gb(pid: int) -> float:
    """Resident memory of a process and all its descendants (Spark's JVM too), from /proc."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parent[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, grew = {pid}, True
    while grew:
        more = {p for p, pp in parent.items() if pp in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for p in tree:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024**2


def measure(engine: str, log: Path, memory: str, timeout: float, max_rss_gb: float) -> dict:
    """Run one engine in a child process; stop it when its process tree's resident memory
    passes ``max_rss_gb`` (the machine is shared: no swap, others' work must not be killed)."""
    command = [sys.executable, __file__, "--child", engine, "--log", str(log), "--memory", memory]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    child_process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)  # fmt: skip
    peak = 0.0
    while True:
        try:
            out, err = child_process.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            peak = max(peak, _tree_rss_gb(child_process.pid))
            elapsed = time.perf_counter() - started
            if peak > max_rss_gb or elapsed > timeout:
                child_process.kill()
                child_process.communicate()
                why = (f"resident memory passed {max_rss_gb:g} GB" if peak > max_rss_gb
                       else f"timed out after {timeout:.0f} s")  # fmt: skip
                return {"engine": engine, "error": f"stopped: {why}, after {elapsed:.0f} s",
                        "peak_tree_gb": peak, "load": (load_before, os.getloadavg()[0])}  # fmt: skip
    wall = time.perf_counter() - started
    if child_process.returncode != 0:
        return {"engine": engine, "error": f"exit {child_process.returncode}: "
                f"{err.strip()[-400:]}", "wall": wall}  # fmt: skip
    result: dict = json.loads(out.strip().splitlines()[-1])
    result["wall_with_startup"] = wall
    result["peak_tree_gb"] = peak
    result["load"] = (load_before, os.getloadavg()[0])
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--workdir", default="/tmp/voxloop-bench-kpi")
    p.add_argument("--memory", default="8GB", help="DuckDB memory_limit / Spark driver memory")
    p.add_argument("--engines", default="duckdb,pandas,spark")
    p.add_argument("--repeat", type=int, default=3, help="DuckDB runs (median quoted)")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--max-rss", type=float, default=14.0,
                   help="GB: stop an engine whose processes use more (default 14)")  # fmt: skip
    p.add_argument("--child")
    p.add_argument("--log")
    args = p.parse_args()
    if args.child:
        child(args.child, args.log, args.memory)
        return
    log = generate(Path(args.workdir), args.turns, args.days)
    results: dict[str, dict] = {}
    for e in args.engines.split(","):
        runs = [measure(e, log, args.memory, args.timeout, args.max_rss)
                for _ in range(args.repeat if e == "duckdb" else 1)]  # fmt: skip
        ok = [r for r in runs if "error" not in r]
        if not ok:
            results[e] = runs[0]
            continue
        results[e] = ok[0] | {"runs": [round(r["seconds"], 2) for r in ok],
                              "seconds": statistics.median(r["seconds"] for r in ok),
                              "peak_gb": max(r["peak_gb"] for r in ok),
                              "peak_tree_gb": max(r["peak_tree_gb"] for r in ok),
                "cpu_seconds": statistics.median(r["result"]["cpu_seconds"] for r in ok),
                              "loads": [[round(x, 2) for x in r["load"]] for r in ok]}  # fmt: skip
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_classical import machine  # here, not at the top: the engine children stay lean

    print(f"KPI suite over {log} ({machine()})")
    for e, r in results.items():
        if "error" in r:
            print(f"  {e:7s} FAILED: {r['error']} (peak {r.get('peak_tree_gb', 0):.2f} GB, "
                  f"load 1-min before/after {r.get('load')})")  # fmt: skip
            continue
        print(f"  {e:7s} {r['seconds']:8.1f} s (median of {r['runs']}), CPU "
              f"{r['cpu_seconds']:.0f} s  peak RSS "
              f"{r['peak_gb']:.2f} GB (process tree {r['peak_tree_gb']:.2f} GB)  "
              f"load 1-min before/after {r['loads']}")  # fmt: skip
    d, pd_ = results.get("duckdb", {}), results.get("pandas", {})
    if "seconds" in d and "seconds" in pd_:
        print(f"  pandas / DuckDB: {pd_['seconds'] / d['seconds']:.1f}x wall time, "
              f"{pd_['cpu_seconds'] / d['cpu_seconds']:.1f}x CPU time")  # fmt: skip
    if d.get("result", {}).get("steps"):
        print(f"  DuckDB seconds per step: {d['result']['steps']}")
    if d.get("result", {}).get("rephrase"):
        q = d["result"]["rephrase"]
        print("  rephrase detector vs ground truth: "
              + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in q.items()))  # fmt: skip
    done = {e: r["result"]["tables"] for e, r in results.items() if "result" in r}
    first = next(iter(done), None)
    diffs = {e: same_tables(done[first], t) for e, t in done.items() if e != first}
    equal = not any(diffs.values())
    print(f"  every KPI table equal across {', '.join(done)}: {equal}")
    for e, found in diffs.items():
        for d in found:
            print(f"    {first} / {e}: {d}")
    if not equal:
        sys.exit(1)


if __name__ == "__main__":
    main()
