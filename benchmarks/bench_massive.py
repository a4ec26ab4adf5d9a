"""Benchmark the classical parser on the 14 MASSIVE locales, one model per locale.

For each locale: train on ``train`` (``dev`` chooses the configuration), report on ``test``
intent accuracy, slot F1 on character spans, slot F1 in the paper's convention (whitespace
words; characters in ja-JP and zh-CN), exact match, training seconds, batched utterances/s
and single-utterance p50/p99 — beside the afternoon baseline (TF-IDF + logistic regression
+ CRF, ``baseline_afternoon.py``) trained and measured on the same machine, and the MASSIVE
paper's XLM-R Base and mT5-encoder figures (FitzGerald et al., ACL 2023, Tables 7-9).

    python benchmarks/bench_massive.py --models classical --json /tmp/massive-classical.json
    python benchmarks/bench_massive.py --models baseline --json /tmp/massive-baseline.json
    python benchmarks/bench_massive.py --report /tmp/massive-classical.json /tmp/massive-baseline.json

The JSON file is rewritten after every locale, so a long run can be watched and its table
printed (``--report``) from whatever has finished; two processes (``--models``) can share
the work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # single-threaded: CPU seconds are one core's

from baseline_afternoon import AfternoonBaseline  # noqa: E402
from bench_classical import DATASETS, latency_ms, machine, throughput  # noqa: E402

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.classical import ClassicalParser  # noqa: E402
from voxloop.nlu.evaluate import evaluate  # noqa: E402
from voxloop.nlu.paper_metric import paper_slot_f1  # noqa: E402
from voxloop.schema import Utterance  # noqa: E402

MASSIVE = DATASETS / "massive"
LOCALES = (
    "ar-SA de-DE en-US es-ES fr-FR hi-IN it-IT ja-JP ko-KR pl-PL ru-RU sw-KE tr-TR zh-CN".split()
)
# MASSIVE paper, Appendix D Tables 7-9, test split, one model on all 51 locales
# (intent accuracy, slot F1, exact match); copied from ../shared/datasets/README.md.
XLMR_BASE = {
    "ar-SA": (80.7, 73.8, 61.2),
    "de-DE": (85.7, 76.2, 65.7),
    "en-US": (88.3, 78.7, 69.7),
    "es-ES": (86.9, 71.0, 62.8),
    "fr-FR": (86.3, 70.9, 62.2),
    "hi-IN": (85.8, 72.3, 63.4),
    "it-IT": (86.6, 72.3, 63.1),
    "ja-JP": (83.9, 63.3, 55.8),
    "ko-KR": (86.5, 77.8, 67.5),
    "pl-PL": (85.8, 69.0, 60.9),
    "ru-RU": (87.2, 74.9, 66.2),
    "sw-KE": (83.1, 68.7, 58.5),
    "tr-TR": (86.3, 74.9, 65.2),
    "zh-CN": (84.9, 70.0, 60.4),
}
MT5_ENCODER = {
    "ar-SA": (82.2, 75.4, 63.4),
    "de-DE": (86.8, 78.6, 68.9),
    "en-US": (89.0, 80.4, 72.0),
    "es-ES": (86.8, 72.8, 64.3),
    "fr-FR": (87.2, 73.5, 65.1),
    "hi-IN": (86.2, 73.5, 64.7),
    "it-IT": (87.6, 73.7, 64.8),
    "ja-JP": (85.8, 64.5, 57.8),
    "ko-KR": (86.4, 78.9, 68.0),
    "pl-PL": (87.1, 71.7, 64.0),
    "ru-RU": (86.8, 76.3, 67.2),
    "sw-KE": (85.8, 72.9, 63.3),
    "tr-TR": (87.1, 76.1, 67.7),
    "zh-CN": (85.8, 71.2, 62.9),
}


def load_average() -> float:
    return os.getloadavg()[0]


def splits(locale: str, limit: int | None) -> tuple[list[Utterance], ...]:
    """Train, dev and test of one locale; ``limit`` cuts each (for a quick check)."""
    corpus = load_corpus(f"massive:{MASSIVE}", locales=[locale])
    return tuple(list(corpus.split(name))[:limit] for name in ("train", "dev", "test"))


def cpu_speed(parser: Any, texts: list[str], batch: int = 256) -> dict[str, float]:
    """Speed in CPU time of this (single-threaded) process: what a quiet core gives, even
    when other work shares the machine. Batched utterances per CPU second, and p50/p99
    CPU milliseconds of one-utterance parses (after a warm-up)."""
    cpu = time.process_time()
    for i in range(0, len(texts), batch):
        parser.parse(texts[i : i + batch])
    rate = len(texts) / max(time.process_time() - cpu, 1e-9)
    for t in texts[:20]:
        parser.parse([t])
    samples = []
    for t in texts[:500]:
        cpu = time.process_time()
        parser.parse([t])
        samples.append((time.process_time() - cpu) * 1000)
    samples.sort()
    return {
        "cpu_throughput": rate,
        "cpu_p50_ms": samples[len(samples) // 2],
        "cpu_p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
    }


def bench_classical(
    locale: str, encoder: str, repeats: int, limit: int | None = None
) -> dict[str, Any]:
    train, dev, test = splits(locale, limit)
    load_before = load_average()
    parser = ClassicalParser(sentence_encoder=encoder)  # type: ignore[arg-type]
    started, cpu = time.perf_counter(), time.process_time()
    parser.fit(train, dev)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    texts = [u.text for u in test]
    parses = parser.parse(texts)
    result = evaluate(test, parses)
    p50, p99 = latency_ms(parser, texts[:500])
    assert parser.intents_ is not None
    return {
        "locale": locale,
        "train": len(train),
        "test": len(test),
        "encoder_option": encoder,
        "sentence_encoder": parser.intents_.use_encoder_,
        "intent_accuracy": result.intent_accuracy,
        "slot_f1": result.slot_f1,
        "slot_f1_paper": paper_slot_f1(test, parses)["all"],
        "exact_match": result.exact_match,
        "ece": result.ece,
        "train_seconds": seconds,
        "train_cpu_seconds": cpu,
        "throughput": throughput(parser, texts, repeats),
        "p50_ms": p50,
        "p99_ms": p99,
        **cpu_speed(parser, texts),
        "load_average": [load_before, load_average()],
    }


def bench_baseline(locale: str, limit: int | None = None) -> dict[str, Any]:
    train, _, test = splits(locale, limit)
    load_before = load_average()
    cpu = time.process_time()
    base = AfternoonBaseline().fit(train)
    cpu = time.process_time() - cpu
    parses = base.parse([u.text for u in test])
    result = evaluate(test, parses)
    return {
        "locale": locale,
        "intent_accuracy": result.intent_accuracy,
        "slot_f1": result.slot_f1,
        "slot_f1_paper": paper_slot_f1(test, parses)["all"],
        "exact_match": result.exact_match,
        "train_seconds": base.training_seconds,
        "train_cpu_seconds": cpu,
        "load_average": [load_before, load_average()],
    }


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _triple(t: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.1f}" for v in t)


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.fmean(values) if values else None


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _figures(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    return f"{_pct(r['intent_accuracy'])} / {_pct(r['slot_f1'])} / {_pct(r['exact_match'])}"


def _row(c: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """Cells of one row: classical figures and speed, then the baseline's."""
    c = c or {}
    wins = "-"
    if c.get("intent_accuracy") is not None and b is not None:
        more = c["intent_accuracy"] > b["intent_accuracy"]
        key = "train_cpu_seconds" if "train_cpu_seconds" in c and b else "train_seconds"
        faster = c[key] < b.get(key, b["train_seconds"])  # CPU seconds when both have them
        wins = "yes" if more and faster else f"no ({'acc' if not more else 'time'})"
    return [
        _figures(c) if c.get("intent_accuracy") is not None else "-",
        _num(c.get("slot_f1_paper") and 100 * c["slot_f1_paper"], ".2f"),
        f"{_num(c.get('train_cpu_seconds'), '.0f')} ({_num(c.get('train_seconds'), '.0f')})",
        _num(c.get("cpu_throughput"), ",.0f"),
        f"{_num(c.get('cpu_p50_ms'), '.2f')} / {_num(c.get('cpu_p99_ms'), '.2f')}",
        _figures(b),
        "-"
        if b is None
        else f"{_num(b.get('train_cpu_seconds'), '.0f')} ({b['train_seconds']:.0f})",
        wins,
    ]


def report(results: dict[str, dict[str, Any]]) -> str:
    """One Markdown table: a row per locale measured, plus averages: each model's over the
    locales it was measured on, the paper's over the classical model's locales.

    Training seconds are CPU seconds of the single-threaded process (wall seconds in
    brackets); speed is in CPU time, so it reads as a quiet core's even under load."""
    head = (
        "| locale | classical intent / slot F1 / EM | slot F1 paper conv. | train CPU s (wall) "
        "| utt/CPU s, batched | single p50 / p99 CPU ms | baseline intent / slot F1 / EM "
        "| baseline train CPU s (wall) | beats baseline | XLM-R Base | mT5 enc. |"
    )
    lines = [head, "|" + "---|" * (head.count(" | ") + 1)]
    rows = []
    for locale in LOCALES:
        c = results.get("classical", {}).get(locale)
        b = results.get("baseline", {}).get(locale)
        if c is not None or b is not None:
            rows.append((c, b, locale))
            paper = [_triple(XLMR_BASE[locale]), _triple(MT5_ENCODER[locale])]
            lines.append("| " + " | ".join([locale, *_row(c, b), *paper]) + " |")
    if rows:
        keys = (
            "intent_accuracy slot_f1 exact_match slot_f1_paper train_seconds train_cpu_seconds "
            "cpu_throughput cpu_p50_ms cpu_p99_ms"
        ).split()
        averages = []
        for k in (0, 1):
            measured = [r[k] for r in rows if r[k] is not None]
            means = {key: _mean(measured, key) for key in keys}
            averages.append({k: v for k, v in means.items() if v is not None} or None)
        cells = _row(averages[0], averages[1])
        both = [(c, b) for c, b, _ in rows if c is not None and b is not None]
        cells[7] = f"{sum(_row(c, b)[7] == 'yes' for c, b in both)} of {len(both)}"
        locales = [r[2] for r in rows if r[0] is not None] or [r[2] for r in rows]
        n_classical, n_baseline = (sum(r[k] is not None for r in rows) for k in (0, 1))

        def mean(table: dict[str, tuple[float, float, float]]) -> tuple[float, float, float]:
            a, b, c = (statistics.fmean(table[lo][i] for lo in locales) for i in range(3))
            return a, b, c

        paper = [_triple(mean(XLMR_BASE)), _triple(mean(MT5_ENCODER))]
        label = f"**average** (classical: {n_classical}, baseline: {n_baseline} locales)"
        lines.append(f"| {label} | " + " | ".join([*cells, *paper]) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--locales", default=",".join(LOCALES))
    ap.add_argument("--models", default="classical,baseline", help="classical, baseline or both")
    ap.add_argument("--encoder", default="auto", help="--sentence-encoder of the classical model")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, help="use only this many utterances per split")
    ap.add_argument("--json", type=Path, help="write figures here (after every locale)")
    ap.add_argument("--report", type=Path, nargs="+", help="print the table from JSON files")
    args = ap.parse_args()

    if args.report:
        merged: dict[str, dict[str, Any]] = {}
        for path in args.report:
            data = json.loads(path.read_text())
            print(f"{path}: {data['machine']}; {data['started']} - {data.get('updated')}")
            for model, rows in data["results"].items():
                merged.setdefault(model, {}).update(rows)
        print(report(merged))
        return
    figures: dict[str, Any] = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv),
        "results": {},
    }
    print(f"machine: {figures['machine']}; {figures['started']}", flush=True)
    for locale in args.locales.split(","):
        for model in args.models.split(","):
            if model == "classical":
                row = bench_classical(locale, args.encoder, args.repeats, args.limit)
            elif model == "baseline":
                row = bench_baseline(locale, args.limit)
            else:
                raise SystemExit(f"unknown model {model!r} (classical, baseline)")
            figures["results"].setdefault(model, {})[locale] = row
            figures["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
            print(json.dumps({"model": model, **row}), flush=True)
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(figures, indent=2))
    print(report(figures["results"]))


if __name__ == "__main__":
    main()
