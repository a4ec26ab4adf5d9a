"""Benchmark the transformer parser (MiniLM-L6 joint model) on SNIPS, ATIS and HWU64 fold 1.

Trains on train (dev for early stopping and calibration where the corpus has one; else a
held-out tenth of train, then again on all of train for the epochs chosen: `refit`), saves
the model, then reports on test through the public
`OnnxParser.parse` API for the fp32 and int8 ONNX files: intent accuracy (and the best
guess's, which counts a declined parse by its top intent, as papers do), slot F1, exact
match, ECE, training minutes, batched throughput and single-utterance p50/p99 latency
(tokenisation and span decoding included).

    python benchmarks/bench_transformer.py --corpora snips,atis
    python benchmarks/bench_transformer.py --max-epochs 8 --save-dir models/   # keep them
    python benchmarks/bench_transformer.py --load models/      # measure saved models again

Beside the public API's throughput it times the network alone (onnxruntime on the same
pre-tokenised batches of the model's batch size): the floor, measured in the same run, so
the cost of tokenisation and decoding around it shows.

Prints Markdown tables; --json FILE also writes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import CORPORA, latency_ms, machine, throughput  # noqa: E402

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.evaluate import evaluate  # noqa: E402
from voxloop.nlu.runtime import OUTPUTS, OnnxParser  # noqa: E402
from voxloop.nlu.transformer import TransformerParser  # noqa: E402

# Published JointBERT (Chen et al. 2019, "BERT for Joint Intent Classification and Slot
# Filling", Table 2; BERT-base, 110M parameters): intent accuracy / slot F1 / sentence acc.
JOINTBERT = {"snips": (0.986, 0.970, 0.928), "atis": (0.975, 0.961, 0.882)}


def bench_corpus(name: str, args: argparse.Namespace) -> dict[str, Any]:
    corpus = load_corpus(CORPORA[name])
    train, test = corpus.split("train"), corpus.split("test")
    dev = corpus.splits.get("dev")
    if args.limit:
        train = train[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        if args.load:
            path = args.load / name
            manifest = json.loads((path / "manifest.json").read_text())
            row = {"loaded": str(path), "train_minutes": manifest["training_seconds"] / 60}
        else:
            path = (args.save_dir or Path(tmp)) / name
            row = train_and_save(name, train, dev, path, args)
        row.update(corpus=name, train=len(train), dev=len(dev) if dev else None, test=len(test))
        measure(path, test, row, args)
    return row


def train_and_save(
    name: str, train: Any, dev: Any, path: Path, args: argparse.Namespace
) -> dict[str, Any]:
    parser = TransformerParser(
        max_epochs=args.max_epochs,
        batch_size=args.batch_size,
        threads=args.threads,
        seed=args.seed,
        refit=dev is None and not args.no_refit,
    )
    started = time.perf_counter()
    parser.fit(train, dev)
    minutes = (time.perf_counter() - started) / 60
    parser.save(path, {"corpus": CORPORA[name]})
    return {
        "train_minutes": minutes,
        "epochs_run": len(parser.history_),
        "history": parser.history_,
        "refit": parser.refit_ or None,
        "max_length": parser.max_length_,
        "temperature": parser.temperature_,
        "threshold": parser.threshold_,
        "dev_ece_before": parser.calibration_.get("ece_before"),
        "dev_ece_after": parser.calibration_.get("ece_after"),
        "export_max_abs_diff": parser.export_diff_,
    }


def network_throughput(parser: OnnxParser, texts: list[str], repeats: int) -> float:
    """Utterances/s through ``session.run`` alone, on the chunks `OnnxParser.parse` makes,
    tokenised beforehand."""
    feeds = [feed for _, feed in parser.feeds(parser.tokenizer_.encode_batch(texts))]
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for feed in feeds:
            parser.session_.run(OUTPUTS, feed)
        rates.append(len(texts) / (time.perf_counter() - started))
    return statistics.median(rates)


def measure(path: Path, test: Any, row: dict[str, Any], args: argparse.Namespace) -> None:
    """Accuracy, calibration, throughput and latency of the saved model, fp32 and int8."""
    texts = [u.text for u in test]
    row["size_mb"] = {
        f.name: round(f.stat().st_size / 1e6, 1) for f in path.iterdir() if f.suffix == ".onnx"
    }
    for precision in ("fp32", "int8"):
        loaded = OnnxParser.load(path, precision=precision, threads=args.threads)  # type: ignore[arg-type]
        result = evaluate(test, loaded.parse(texts))
        # Calibration on test without the temperature, for the ECE before/after figure.
        raw = OnnxParser.load(path, precision=precision, threads=args.threads)  # type: ignore[arg-type]
        raw.decoder_.temperature = 1.0
        raw.decoder_.threshold = 0.0
        uncalibrated = evaluate(test, raw.parse(texts))
        p50, p99 = latency_ms(loaded, texts[:500])
        row[precision] = {
            "intent_accuracy": result.intent_accuracy,
            "slot_f1": result.slot_f1,
            "exact_match": result.exact_match,
            "not_recognized": result.not_recognized,
            "ece": result.ece,
            "ece_uncalibrated": uncalibrated.ece,
            "best_guess_intent_accuracy": result.top_intent_accuracy,
            "throughput": throughput(loaded, texts, args.repeats),
            "network_only_throughput": network_throughput(loaded, texts, args.repeats),
            "p50_ms": p50,
            "p99_ms": p99,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", default="snips,atis,hwu64")
    ap.add_argument("--max-epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N utterances only")
    ap.add_argument(
        "--no-refit",
        action="store_true",
        help="corpora without a dev split (HWU64): keep the network trained on nine tenths "
        "of train instead of training again on all of it",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write all figures to this file")
    ap.add_argument("--save-dir", type=Path, help="keep each trained model in DIR/CORPUS")
    ap.add_argument(
        "--load", type=Path, help="measure the models saved in DIR/CORPUS instead of training"
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d')}\n", flush=True)
    figures: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "corpora": [],
    }
    rows = []
    for name in args.corpora.split(","):
        r = bench_corpus(name, args)
        figures["corpora"].append(r)
        rows.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "history"}, indent=1), flush=True)
    print(
        "\n| corpus | model | intent acc | slot F1 | exact match | best-guess intent | "
        "ECE test (raw → T) | "
        "train min | utt/s (batch) | network alone | p50 ms | p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for precision in ("fp32", "int8"):
            m = r[precision]
            print(
                f"| {r['corpus']} | MiniLM-L6 {precision} | {m['intent_accuracy']:.2%} | "
                f"{m['slot_f1']:.2%} | {m['exact_match']:.2%} | "
                f"{m['best_guess_intent_accuracy']:.2%} | "
                f"{m['ece_uncalibrated']:.3f} → {m['ece']:.3f} | {r['train_minutes']:.1f} | "
                f"{m['throughput']:,.0f} | {m['network_only_throughput']:,.0f} | "
                f"{m['p50_ms']:.2f} | {m['p99_ms']:.2f} |"
            )
        if r["corpus"] in JOINTBERT:
            i, s, e = JOINTBERT[r["corpus"]]
            print(
                f"| {r['corpus']} | JointBERT (published) | {i:.1%} | {s:.1%} | {e:.1%} | "
                f"{i:.1%} | | | | | | |"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
