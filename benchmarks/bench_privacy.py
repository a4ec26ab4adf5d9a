"""Benchmark privacy by design: redaction cost and recall, KPI change with redaction,
DP accuracy vs epsilon, federated vs centralised intent accuracy per round.

    python benchmarks/bench_privacy.py --out /tmp/privacy-bench            # everything
    python benchmarks/bench_privacy.py --out /tmp/privacy-bench --only recall,cost
    python benchmarks/bench_privacy.py --out /tmp/privacy-bench --only recall \
        --detector-encoders hashed,transformer       # also the MiniLM detector (voxloop[train])

Trains what it needs into --out (classical parsers without the sentence encoder, personal-
word detectors) unless they are there already; the DP curve is saved as
``--out/dp_accuracy.png``. Prints Markdown; --json FILE also writes every figure.
Single-threaded BLAS (set OMP_NUM_THREADS=1 before starting, as the README says).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from voxloop.data import load_corpus
from voxloop.nlu.base import load_parser
from voxloop.nlu.classical import ClassicalParser
from voxloop.privacy import DEFAULT_SLOT_TYPES, Redactor, parse_redaction_config
from voxloop.privacy.detector import PersonalDetector
from voxloop.privacy.evaluate import redaction_recall
from voxloop.schema import Parse

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("VOXLOOP_DATASETS", REPO.parent / "shared" / "datasets"))
SALT = {"VOXLOOP_PRIVACY_SALT": "benchmark-salt-not-a-secret"}
# corpus → (test spec, train spec for the model and detector). SLURP has no train split
# offline; MASSIVE en-US train is SLURP's own train partition (same collection, disjoint).
CORPORA = {
    "snips": (f"snips:{DATASETS / 'snips'}", f"snips:{DATASETS / 'snips'}"),
    "hwu64": (f"hwu64:{DATASETS / 'hwu64'}", f"hwu64:{DATASETS / 'hwu64'}"),
    "slurp": (f"slurp:{DATASETS / 'slurp'}", f"massive:{DATASETS / 'massive' / 'en-US.jsonl'}"),
}


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def parser_for(name: str, out: Path) -> Any:
    path = out / "models" / name
    if not (path / "manifest.json").is_file():
        train_spec = CORPORA[name][1]
        corpus = load_corpus(train_spec)
        dev = corpus.split("dev") if "dev" in corpus.splits else None
        ClassicalParser(sentence_encoder="none").fit(corpus.split("train"), dev).save(path)
    return load_parser(path)


@functools.cache
def detector_split(name: str) -> tuple[list[Any], list[Any]]:
    """A detector's training utterances and the held-out 15% its threshold is chosen on
    (the train split of ``name``'s training corpus, shuffled with seed 0)."""
    train = list(load_corpus(CORPORA[name][1]).split("train"))
    random.Random(0).shuffle(train)
    cut = int(len(train) * 0.85)
    return train[:cut], train[cut:]


def detector_for(name: str, out: Path, target: float, encoder: str = "hashed") -> PersonalDetector:
    """The detector for ``name`` at ``target`` recall on a held-out 15% of its train split.
    A transformer is trained once per corpus; only its threshold depends on the target."""
    fit, heldout = detector_split(name)
    suffix = target if encoder == "hashed" else encoder
    path = out / "detectors" / f"{name}-{suffix}"
    if not (path / "detector.json").is_file():
        started = time.perf_counter()
        detector = PersonalDetector(DEFAULT_SLOT_TYPES, target_recall=target, encoder=encoder)  # type: ignore[arg-type]
        detector.fit(fit, heldout).save(path)
        print(f"({name}: {encoder} detector trained in {time.perf_counter() - started:.0f} s)")
    detector = PersonalDetector.load(path)
    if detector.target_recall != target:
        detector.target_recall = target
        detector.choose_threshold(heldout)
    return detector


# --- recall -----------------------------------------------------------------------------
def bench_recall(
    out: Path, results: dict[str, Any], encoders: list[str], targets: list[float]
) -> None:
    config = parse_redaction_config({}, environ=SALT)
    print("\n## Recall of personal spans (test splits)\n")
    columns = [f"+ {e} detector {t}" for e in encoders for t in targets]
    print("| corpus | slot type | n | gold spans | predicted | + census names | "
          + " | ".join(columns) + " |")  # fmt: skip
    print("|---|---|---|---|---|---|" + "---|" * len(columns))
    names = parse_redaction_config({"names": True}, environ=SALT)
    rows: dict[str, Any] = {}
    for name, (spec, _) in CORPORA.items():
        test = list(load_corpus(spec).split("test"))
        parses = parser_for(name, out).parse([u.text for u in test])
        runs = {
            "gold": redaction_recall(test, config),
            "predicted": redaction_recall(test, config, parses),
            "names": redaction_recall(test, names, parses),
        }
        for encoder in encoders:
            for target in targets:
                det = detector_for(name, out, target, encoder)
                key = f"detector {target}" if encoder == "hashed" else f"{encoder} {target}"
                runs[key] = redaction_recall(test, config, parses, detector=det)
        labels = sorted(runs["gold"].total, key=lambda k: -runs["gold"].total[k])
        for label in [*labels, None]:
            n = runs["gold"].total.get(label, 0) if label else sum(runs["gold"].total.values())
            cells = [f"{r.recall(label):.1%}" for r in runs.values()]
            print(f"| {name} | {label or '**all**'} | {n} | " + " | ".join(cells) + " |")
        over = [f"{r.over_redaction:.1%}" for r in runs.values()]
        print(f"| {name} | *other characters redacted* | | " + " | ".join(over) + " |")
        last = list(runs)[-1]
        for label, value, text in runs[last].missed:
            print(f"(missed by {last}: {label} {value!r} in {text!r})")
        rows[name] = {
            k: {"recall": r.recall(), "per_type": {x: r.recall(x) for x in labels},
                "over_redaction": r.over_redaction, "n": dict(r.total)}
            for k, r in runs.items()
        }  # fmt: skip
    results["recall"] = rows


# --- cost -------------------------------------------------------------------------------
def _turns(out: Path) -> list[Any]:
    from datetime import UTC, datetime

    from voxloop.schema import Turn

    test = list(load_corpus(CORPORA["hwu64"][0]).split("test"))
    parses = parser_for("hwu64", out).parse([u.text for u in test])
    return [Turn(f"t{i}", datetime(2026, 11, 1, tzinfo=UTC), p.text, p, "v1", user_id=f"u{i % 50}",
                 session_id=f"s{i % 200}") for i, p in enumerate(parses)]  # fmt: skip


def _redaction_configs(out: Path, encoders: list[str]) -> dict[str, str]:
    """Name → TOML redaction config (what ``serve --redact`` reads)."""
    configs = {"slots + patterns, ids hashed": ""}
    if "hashed" in encoders:
        configs["+ hashed detector (0.95)"] = f'detector = "{out / "detectors" / "hwu64-0.95"}"\n'
        detector_for("hwu64", out, 0.95)
    if "transformer" in encoders:
        path = out / "detectors" / "hwu64-transformer"
        configs["+ transformer detector (0.99)"] = f'detector = "{path}"\n'
        detector_for("hwu64", out, 0.99, "transformer")
    return configs


def bench_cost(out: Path, results: dict[str, Any], encoders: list[str], repeats: int = 5) -> None:
    """Redaction runs on the log writer's thread, in batches: its CPU per turn there, and
    what it adds to a request's latency at a real server (sequential requests, p50)."""
    from voxloop.privacy import load_redaction_config

    turns = _turns(out)
    configs = _redaction_configs(out, encoders)
    files = {}
    for i, (name, text) in enumerate(configs.items()):
        files[name] = out / f"redact-{i}.toml"
        files[name].write_text(text)
    print(f"\n## Redaction CPU per turn on the log writer's thread (HWU64 test, {len(turns)} "
          f"turns in batches of 500, as buffered turns reach a flush; load {load()})\n")  # fmt: skip
    print("| config | µs per turn |\n|---|---|")
    thread_cost = {}
    os.environ.update(SALT)
    for name, file in files.items():
        redactor = Redactor(load_redaction_config(file))
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(0, len(turns), 500):
                redactor.turns(turns[i : i + 500])
            runs.append((time.perf_counter() - t0) / len(turns) * 1e6)
        thread_cost[name] = statistics.median(runs)
        print(f"| {name} | {thread_cost[name]:.0f} |")
    results["cost_writer_thread_us"] = thread_cost
    results["cost_server"] = bench_server_cost(out, files, [t.text for t in turns], repeats)


def bench_server_cost(
    out: Path, files: dict[str, Path], texts: list[str], repeats: int
) -> dict[str, Any]:
    """p50 / p99 latency of sequential ``POST /v1/parse`` (one client, keep-alive) against a
    server without redaction and one per config, in alternating rounds; the medians over
    rounds, and the difference to the unredacted server of the same rounds."""
    import shutil
    import signal

    import httpx
    from bench_serve import start_server

    model = out / "models" / "hwu64"
    defaults = argparse.Namespace(max_batch_size=32, max_queue=512)
    servers = {"no redaction": start_server(model, out / "cost-log-none", defaults)[:2]}
    for i, (name, file) in enumerate(files.items()):
        log = out / f"cost-log-{i}"
        servers[name] = start_server(model, log, defaults, ["--redact", str(file)])[:2]
    stats: dict[str, dict[str, list[float]]] = {n: {"p50": [], "p99": []} for n in servers}
    try:
        clients = {n: httpx.Client(base_url=url, timeout=10) for n, (_, url) in servers.items()}
        for client in clients.values():  # warm the connection and the path
            for text in texts[:100]:
                client.post("/v1/parse", json={"text": text, "user_id": "u1"})
        for _ in range(repeats):
            for n, client in clients.items():
                times = []
                for i, text in enumerate(texts):
                    t0 = time.perf_counter()
                    r = client.post("/v1/parse", json={"text": text, "user_id": f"u{i % 50}",
                                                       "session_id": f"s{i % 200}"})  # fmt: skip
                    times.append((time.perf_counter() - t0) * 1000)
                    if r.status_code != 200:
                        raise SystemExit(f"{n}: HTTP {r.status_code}: {r.text}")
                times.sort()
                stats[n]["p50"].append(times[len(times) // 2])
                stats[n]["p99"].append(times[int(len(times) * 0.99)])
    finally:
        for process, _ in servers.values():
            process.send_signal(signal.SIGTERM)
        for process, _ in servers.values():
            process.wait(timeout=60)
    base = statistics.median(stats["no redaction"]["p50"])
    print(f"\n## Request latency at the server with redaction on (sequential POST /v1/parse of "
          f"the {len(texts)} HWU64 test texts, {repeats} alternating rounds; load {load()})\n")  # fmt: skip
    print("| server | p50 ms | p99 ms | p50 added vs no redaction, ms |\n|---|---|---|---|")
    rows = {}
    for n, st in stats.items():
        p50, p99 = statistics.median(st["p50"]), statistics.median(st["p99"])
        base_rounds = stats["no redaction"]["p50"]
        added = statistics.median(a - b for a, b in zip(st["p50"], base_rounds, strict=True))
        rows[n] = {"p50_ms": p50, "p99_ms": p99, "p50_added_ms": added, "rounds": st}
        print(f"| {n} | {p50:.2f} | {p99:.2f} | {added:+.3f} |")
    print(f"(baseline p50 {base:.2f} ms; load average {load()} at the end)")
    for i in range(len(files)):
        shutil.rmtree(out / f"cost-log-{i}", ignore_errors=True)
    shutil.rmtree(out / "cost-log-none", ignore_errors=True)
    return rows


# --- logs: KPI change with redaction, DP ----------------------------------------------
def make_log(out: Path, users: int, days: int) -> Path:
    from voxloop.log.generate import ModelArm, generate_log

    path = out / f"log-hwu64-{users}u-{days}d"
    if not (path / "turns").is_dir():
        test = list(load_corpus(CORPORA["hwu64"][0]).split("test"))
        model = ModelArm(parser_for("hwu64", out), "hwu64-classical")
        generate_log(path, test, model, users=users, days=days, start=date(2026, 11, 1), seed=0)
    return path


def redacted_copy(log: Path, out: Path, redactor: Redactor) -> Path:
    """The same log as the server would have written it with redaction on."""
    from voxloop.log.writer import LogWriter, read_log
    from voxloop.schema import Feedback, IntentScore, Span, Turn

    target = out / (log.name + "-redacted")
    if (target / "turns").is_dir():
        return target
    with LogWriter(target, flush_rows=100_000) as writer:
        for r in read_log(log).to_pylist():
            parse = Parse(r["text"], r["intent"], r["confidence"],
                          tuple(IntentScore(s["intent"], s["confidence"]) for s in r["ranking"]),
                          tuple(Span(s["start"], s["end"], s["label"], s["value"], s["confidence"])
                                for s in r["slots"]), r["domain"], r["locale"])  # fmt: skip
            turn = Turn(r["turn_id"], r["ts"], r["text"], parse, r["model_version"], r["locale"],
                        r["user_id"], r["session_id"], r["experiment"], r["arm"], r["action"],
                        r["propensity"], r["latency_ms"], r["parse_ms"], r["channel"])  # fmt: skip
            writer.append_turn(redactor.turn(turn))
        for f in read_log(log, "feedback").to_pylist():
            writer.append_feedback(redactor.feedback(Feedback(f["turn_id"], f["ts"], f["kind"],
                                                              f["value"], f["user_id"])))  # fmt: skip
    return target


RATES = ("defect_rate", "not_recognized_rate", "low_confidence_rate", "rephrase_rate",
         "barge_in_rate", "abandonment_rate", "negative_feedback_rate")  # fmt: skip


def bench_kpi_change(out: Path, results: dict[str, Any]) -> None:
    from voxloop.log.kpi import compute_kpis

    log = make_log(out, users=300, days=7)
    redactor = Redactor(parse_redaction_config({}, environ=SALT))
    red = redacted_copy(log, out, redactor)
    a = compute_kpis(log, tables=["summary", "by_slice"])
    b = compute_kpis(red, tables=["summary", "by_slice"])
    sa, sb = a["summary"].to_pylist()[0], b["summary"].to_pylist()[0]
    print(f"\n## KPIs with redaction on ({sa['turns']:,} turns, {sa['users']} users)\n")
    print("| KPI | raw log | redacted log | change (points) | max change over domains |")
    print("|---|---|---|---|---|")
    da = {r["domain"]: r for r in a["by_slice"].to_pylist()}
    db = {r["domain"]: r for r in b["by_slice"].to_pylist()}
    rows = {}
    for rate in RATES:
        worst = max(abs(da[d][rate] - db[d][rate]) for d in da)
        rows[rate] = {"raw": sa[rate], "redacted": sb[rate], "max_domain_change": worst}
        print(f"| {rate} | {sa[rate]:.2%} | {sb[rate]:.2%} | {100 * (sb[rate] - sa[rate]):+.2f} | "
              f"{100 * worst:.2f} |")  # fmt: skip
    print(f"| users | {sa['users']} | {sb['users']} | | |")
    results["kpi_change"] = rows


def bench_dp(out: Path, results: dict[str, Any], seeds: int = 200) -> None:
    from voxloop.log.kpi import compute_kpis
    from voxloop.log.store import LogStore
    from voxloop.privacy.dp import DpOptions, bounded_counts, release_rows

    log = make_log(out, users=1000, days=7)
    exact_tables = compute_kpis(log, tables=["summary", "by_slice"])
    exact = {r["domain"]: r for r in exact_tables["by_slice"].to_pylist()}
    summary = exact_tables["summary"].to_pylist()[0]
    epsilons = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0]
    curves: dict[str, dict[str, list[float]]] = {}
    print(f"\n## DP KPIs: error vs epsilon ({summary['turns']:,} turns, {summary['users']} users, "
          f"{len(exact)} domains; {seeds} releases each)\n")  # fmt: skip
    print(
        "| mechanism | K | epsilon | mean abs error of a domain's rate (points) | "
        "median relative error of a domain's turns | summary defect rate error (points) |"
    )
    print("|---|---|---|---|---|---|")
    store = LogStore(log)
    for k in (5, 20):
        table = bounded_counts(store, ("domain",), k)
        for mechanism in ("laplace", "gaussian"):
            key = f"{mechanism} K={k}"
            curves[key] = {"rate_mae": [], "turns_rel": [], "summary_err": []}
            for eps in epsilons:
                options = DpOptions(eps, mechanism=mechanism, max_turns_per_user=k)
                rng = np.random.default_rng(0)
                errs, rels, sums = [], [], []
                for _ in range(seeds):
                    s, rows = release_rows(table, ("domain",), options, rng)
                    for r in rows:
                        e = exact[r["domain"]]
                        errs += [abs(r[x] - e[x]) for x in RATES]
                        rels.append(abs(r["turns"] - e["turns"]) / e["turns"])
                    sums.append(abs(s["defect_rate"] - summary["defect_rate"]))
                c = curves[key]
                c["rate_mae"].append(100 * float(np.mean(errs)))
                c["turns_rel"].append(float(np.median(rels)))
                c["summary_err"].append(100 * float(np.mean(sums)))
                print(
                    f"| {mechanism} | {k} | {eps:g} | {c['rate_mae'][-1]:.2f} | "
                    f"{c['turns_rel'][-1]:.1%} | {c['summary_err'][-1]:.2f} |"
                )
    results["dp"] = {"epsilons": epsilons, "curves": curves}
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(pip install matplotlib for the plot)")
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, c in curves.items():
        axes[0].plot(epsilons, c["rate_mae"], marker="o", label=key)
        axes[1].plot(epsilons, [100 * x for x in c["turns_rel"]], marker="o", label=key)
    for ax, title in zip(axes, ("mean abs error of per-domain rates (points)",
                                "median relative error of per-domain turns (%)"), strict=True):  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("epsilon")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = out / "dp_accuracy.png"
    fig.savefig(path, dpi=120)
    print(f"(plot: {path})")


# --- federated --------------------------------------------------------------------------
def bench_federated(
    out: Path, results: dict[str, Any], rounds: int, use: bool, central_epochs: int = 30
) -> None:
    """Centralised training per epoch, then (unless ``rounds`` is 0) FedAvg per round."""
    from voxloop.privacy.federated import (
        Device,
        FedAvgConfig,
        HashedFeatures,
        centralised_training,
        federated_training,
        partition_by_domain,
    )

    corpus = load_corpus(CORPORA["hwu64"][0])
    train, test = list(corpus.split("train")), list(corpus.split("test"))
    intents = sorted({u.intent for u in train if u.intent})
    features = HashedFeatures(dim=1 << 14, sentence_vectors=use)
    x_test = features.transform([u.text for u in test])
    y_test = np.array([intents.index(u.intent) for u in test])
    t0 = time.perf_counter()
    x = features.transform([u.text for u in train])
    y = np.array([intents.index(u.intent) for u in train])
    _, central = centralised_training(x, y, len(intents), epochs=central_epochs, lr=0.5,
                                      test=(x_test, y_test))  # fmt: skip
    central_s = time.perf_counter() - t0
    name = "hashed n-grams" + (" + USE" if use else "")
    shown = [e for e in (1, 2, 5, 10, 20, 30, 50) if e <= central_epochs]
    print(f"\n## Centralised training of the same model (HWU64 fold 1, {name}, SGD lr 0.5, "
          f"batch 16; {central_s:.0f} s; load {load()})\n")  # fmt: skip
    print("| epoch | " + " | ".join(str(e) for e in shown) + " | best |")
    print("|---|" + "---|" * len(shown) + "---|")
    print("| test intent accuracy | " + " | ".join(f"{central[e - 1]:.1%}" for e in shown)
          + f" | {max(central):.1%} |")  # fmt: skip
    results[f"centralised ({name})"] = central
    if rounds == 0:
        return
    parts = partition_by_domain(train, 100, alpha=0.1, seed=0)
    top = float(np.mean([max(np.unique([u.domain for u in p], return_counts=True)[1]) / len(p)
                         for p in parts]))  # fmt: skip
    devices = [Device(p, intents, features, seed=i) for i, p in enumerate(parts)]
    configs = {
        "FedAvg": FedAvgConfig(rounds=rounds, lr=0.5),
        "FedAvgM (server momentum 0.9)": FedAvgConfig(rounds=rounds, lr=0.5, server_momentum=0.9),
        "FedAvgM + clip 1.0 + noise 0.1": FedAvgConfig(
            rounds=rounds, lr=0.5, server_momentum=0.9, clip=1.0, noise_multiplier=0.1
        ),  # fmt: skip
    }
    print(f"\n## Federated vs centralised intent accuracy (HWU64 fold 1, {name}; {len(devices)} "
          f"devices, Dirichlet alpha 0.1 over domains: a device's top domain holds {top:.0%} "
          f"of its utterances; 20 devices/round, 2 local epochs; load {load()})\n")  # fmt: skip
    marks = [r for r in (1, 5, 10, 20, 40, 60, 80, 100, 120, 150, 200) if r <= rounds]
    print(
        "| strategy | " + " | ".join(f"round {r}" for r in marks) + " | bytes/round (up + down) |"
    )
    print("|---|" + "---|" * len(marks) + "---|")
    rows: dict[str, Any] = {"top_domain_share": top}
    for label, config in configs.items():
        t0 = time.perf_counter()
        _, log = federated_training(devices, features.n_features, len(intents), config,
                                    test=(x_test, y_test))  # fmt: skip
        seconds = time.perf_counter() - t0
        per_round = log.bytes_up[0] + log.bytes_down[0]
        rows[label] = {"accuracy": log.accuracy, "bytes_per_round": per_round, "seconds": seconds}
        cells = [f"{log.accuracy[r - 1]:.1%}" for r in marks]
        print(f"| {label} | " + " | ".join(cells) + f" | {per_round / 1e6:.1f} MB |")
    results[f"federated ({name})"] = rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="models, logs and the plot go here")
    p.add_argument("--only", default="recall,cost,kpi,dp,federated")
    p.add_argument("--rounds", type=int, default=120, help="federated rounds (0: centralised only)")
    p.add_argument("--central-epochs", type=int, default=30)
    p.add_argument("--use", action="store_true", help="federated: add the USE sentence vector")
    p.add_argument(
        "--detector-encoders",
        default="hashed",
        help="recall and cost: detectors to compare (hashed, transformer; comma-separated)",
    )
    p.add_argument(
        "--recall-targets", default="0.95,0.99", help="held-out span recall each detector aims at"
    )
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    results: dict[str, Any] = {"load_start": load()}
    print(f"{os.cpu_count()} CPUs, load average {load()} at start, {time.strftime('%F %H:%M')}")
    if "recall" in only:
        targets = [float(t) for t in args.recall_targets.split(",")]
        bench_recall(args.out, results, args.detector_encoders.split(","), targets)
    if "cost" in only:
        bench_cost(args.out, results, args.detector_encoders.split(","))
    if "kpi" in only:
        bench_kpi_change(args.out, results)
    if "dp" in only:
        bench_dp(args.out, results)
    if "federated" in only:
        bench_federated(args.out, results, args.rounds, args.use, args.central_epochs)
    results["load_end"] = load()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
