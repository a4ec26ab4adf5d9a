"""Benchmark the classical parser on SNIPS, ATIS, HWU64 (fold 1) and MASSIVE pl-PL (BIO).

Trains on train (dev for model selection where the corpus has one), reports on test:
intent accuracy, slot F1, exact match, training seconds, batched parse throughput and
single-utterance latency; with --baseline, the afternoon TF-IDF + LR + CRF baseline in the
same run; with --scaling, parse latency against utterance length and number of intents.

    python benchmarks/bench_classical.py --baseline --scaling

Prints Markdown tables; --json FILE also writes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_afternoon import AfternoonBaseline  # noqa: E402

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.classical import ClassicalParser  # noqa: E402
from voxloop.nlu.evaluate import evaluate  # noqa: E402
from voxloop.schema import Utterance  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("VOXLOOP_DATASETS", REPO.parent / "shared" / "datasets"))
CORPORA = {
    "snips": f"snips:{DATASETS / 'snips'}",
    "atis": f"atis:{DATASETS / 'atis'}",
    "hwu64": f"hwu64:{DATASETS / 'hwu64'}",
    "massive-pl-PL": f"bio:{DATASETS / 'massive-pl-PL'}",
}


def machine() -> str:
    cpu = platform.processor() or "?"
    fields: dict[str, str] = {}
    try:
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False
        ).stdout.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    cpu = fields.get("Model name", cpu)
    if "CPU family" in fields:
        cpu += f" (family {fields['CPU family']}, model {fields.get('Model', '?')})"
    # int8 results and speed depend on these: onnxruntime picks its int8 kernels by them
    flags = set(fields.get("Flags", "").split())
    wide = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    simd = "+".join(wide) or "no AVX2"
    return f"{cpu}, {simd}, {os.cpu_count()} cores, Python {platform.python_version()}"


def throughput(parser: Any, texts: Sequence[str], repeats: int, batch: int = 256) -> float:
    """Median utterances per second parsing ``texts`` in batches."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(texts), batch):
            parser.parse(texts[i : i + batch])
        rates.append(len(texts) / (time.perf_counter() - started))
    return statistics.median(rates)


def latency_ms(parser: Any, texts: Sequence[str], passes: int = 2) -> tuple[float, float]:
    """p50 and p99 milliseconds of one-utterance parses (after a warm-up pass)."""
    for t in texts[:20]:
        parser.parse([t])
    samples = []
    for _ in range(passes):
        for t in texts:
            started = time.perf_counter()
            parser.parse([t])
            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def probe_arguments(doc: str, rounds: int, models_required: bool = True) -> argparse.ArgumentParser:
    """The options every saved-model probe takes: ``--models`` (DIR/CORPUS), ``--corpora``,
    onnxruntime ``--threads`` and the ``--rounds`` of alternating speed measurement."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument(
        "--models", type=Path, required=models_required, help="saved transformer models, DIR/CORPUS"
    )
    ap.add_argument("--corpora", default="snips,atis,hwu64")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=rounds)
    return ap


def figure_cells(result: Any) -> str:
    """A Markdown row's "intent (best guess) | slot F1 | exact match" cells of an evaluation."""
    r = result
    return (
        f"{r.intent_accuracy:.2%} ({r.top_intent_accuracy:.2%}) | {r.slot_f1:.2%} | "
        f"{r.exact_match:.2%}"
    )


def parses_differ(a: Sequence[Any], b: Sequence[Any]) -> int:
    """How many of two parse lists' pairs differ in intent or slots (not confidence)."""

    def key(parse: Any) -> tuple[Any, ...]:
        return (parse.intent, tuple((s.start, s.end, s.label) for s in parse.slots))

    return sum(key(p) != key(q) for p, q in zip(a, b, strict=True))


def print_alternating_speed(parsers: dict[str, Any], texts: Sequence[str], rounds: int) -> None:
    """Batched throughput and single-text p50 of each parser, in ``rounds`` alternating
    rounds (so all see the same minutes of a noisy machine); prints medians and ranges."""
    speed: dict[str, list[tuple[float, float]]] = {label: [] for label in parsers}
    for _ in range(rounds):
        for label, parser in parsers.items():
            p50, _ = latency_ms(parser, texts[:300], passes=1)
            speed[label].append((throughput(parser, texts, 1), p50))
    print(f"\nspeed, medians of {rounds} alternating rounds:")
    for label, rows in speed.items():
        rates, p50s = [r for r, _ in rows], [p for _, p in rows]
        print(
            f"  {label}: {statistics.median(rates):.0f} utt/s batched "
            f"({min(rates):.0f}-{max(rates):.0f}), p50 {statistics.median(p50s):.2f} ms "
            f"({min(p50s):.2f}-{max(p50s):.2f})"
        )


def bench_corpus(name: str, encoder: str, repeats: int, baseline: bool) -> dict[str, Any]:
    corpus = load_corpus(CORPORA[name])
    train, test = corpus.split("train"), corpus.split("test")
    dev = corpus.splits.get("dev")
    parser = ClassicalParser(sentence_encoder=encoder)  # type: ignore[arg-type]
    started = time.perf_counter()
    parser.fit(train, dev)
    seconds = time.perf_counter() - started
    texts = [u.text for u in test]
    result = evaluate(test, parser.parse(texts))
    p50, p99 = latency_ms(parser, texts[:500])
    assert parser.intents_ is not None
    row: dict[str, Any] = {
        "corpus": name,
        "encoder_option": encoder,
        "train": len(train),
        "test": len(test),
        "intent_accuracy": result.intent_accuracy,
        "slot_f1": result.slot_f1,
        "exact_match": result.exact_match,
        "ece": result.ece,
        "train_seconds": seconds,
        "sentence_encoder": parser.intents_.use_encoder_,
        "throughput": throughput(parser, texts, repeats),
        "p50_ms": p50,
        "p99_ms": p99,
    }
    if baseline:
        base = AfternoonBaseline().fit(train)
        b = evaluate(test, base.parse(texts))
        row["baseline"] = {
            "intent_accuracy": b.intent_accuracy,
            "slot_f1": b.slot_f1,
            "exact_match": b.exact_match,
            "train_seconds": base.training_seconds,
        }
    return row


def bench_length(repeats: int) -> list[dict[str, Any]]:
    """Single-utterance latency against length (words), on a SNIPS model."""
    corpus = load_corpus(CORPORA["snips"])
    parser = ClassicalParser(sentence_encoder="none").fit(corpus.split("train"))
    words = " ".join(u.text for u in corpus.split("test")).split()
    rows = []
    for n in (10, 25, 50, 100, 200):
        texts = [" ".join(words[i : i + n]) for i in range(0, 40 * n, n)]
        p50, p99 = latency_ms(parser, texts, passes=repeats)
        rows.append({"words": n, "p50_ms": p50, "p99_ms": p99})
    return rows


def bench_intents(repeats: int) -> list[dict[str, Any]]:
    """Latency and throughput against the number of intents (HWU64 texts, relabelled)."""
    corpus = load_corpus(CORPORA["hwu64"])
    train, test = corpus.split("train"), corpus.split("test")
    texts = [u.text for u in test]
    rows = []
    for k in (10, 100, 1000):

        def relabel(u: Utterance, k: int = k) -> Utterance:
            return replace(u, intent=f"intent{zlib.crc32(u.text.encode()) % k}")

        parser = ClassicalParser(sentence_encoder="none").fit([relabel(u) for u in train])
        p50, p99 = latency_ms(parser, texts[:300])
        rows.append(
            {
                "intents": k,
                "p50_ms": p50,
                "p99_ms": p99,
                "throughput": throughput(parser, texts, repeats),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", default=",".join(CORPORA))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--encoders", default="auto,none", help="--sentence-encoder values to run")
    ap.add_argument("--baseline", action="store_true", help="also train the afternoon baseline")
    ap.add_argument("--scaling", action="store_true", help="latency vs length and vs intents")
    ap.add_argument("--json", type=Path, help="write all figures to this file")
    args = ap.parse_args()

    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d')}\n")
    figures: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "corpora": [],
    }
    print(
        "| corpus | --sentence-encoder | USE used | intent acc | slot F1 | exact match | ECE "
        "| train s | utt/s (batch) | p50 ms | p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.corpora.split(","):
        chosen: set[bool] = set()
        for encoder in args.encoders.split(","):
            if encoder == "none" and chosen == {False}:
                continue  # auto already chose no encoder: the same model
            r = bench_corpus(name, encoder, args.repeats, args.baseline and not chosen)
            chosen.add(r["sentence_encoder"])
            figures["corpora"].append(r)
            print(
                f"| {name} | {encoder} | {'yes' if r['sentence_encoder'] else 'no'} | "
                f"{r['intent_accuracy']:.2%} | {r['slot_f1']:.2%} | {r['exact_match']:.2%} | "
                f"{r['ece']:.3f} | {r['train_seconds']:.1f} | "
                f"{r['throughput']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |",
                flush=True,
            )
    if args.baseline:
        print("\nafternoon baseline (TF-IDF + LR + L-BFGS CRF), same run:\n")
        print("| corpus | intent acc | slot F1 | exact match | train s |")
        print("|---|---|---|---|---|")
        for r in figures["corpora"]:
            if "baseline" not in r:
                continue
            b = r["baseline"]
            print(
                f"| {r['corpus']} | {b['intent_accuracy']:.2%} | {b['slot_f1']:.2%} | "
                f"{b['exact_match']:.2%} | {b['train_seconds']:.1f} |"
            )
    if args.scaling:
        figures["length"] = bench_length(args.repeats)
        print("\nsingle-utterance latency vs length (SNIPS model):\n")
        print("| words | p50 ms | p99 ms |\n|---|---|---|")
        for r in figures["length"]:
            print(f"| {r['words']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
        figures["intents"] = bench_intents(args.repeats)
        print("\nlatency vs number of intents (HWU64 texts relabelled):\n")
        print("| intents | p50 ms | p99 ms | utt/s (batch) |\n|---|---|---|---|")
        for r in figures["intents"]:
            print(
                f"| {r['intents']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['throughput']:,.0f} |"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
