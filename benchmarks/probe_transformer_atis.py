"""Hyperparameter probe for the transformer parser on ATIS: one setting changed at a time.

Trains `TransformerParser` for 8 epochs on ATIS train (early stopping on its dev split) for
each probe and prints one JSON line: the best dev epoch and figures (what the choice should
be made on) and, for the record, intent / slot F1 / exact match on test (int8). The
baseline is `bench_transformer.py --corpora atis --max-epochs 8`.

    python benchmarks/probe_transformer_atis.py
    python benchmarks/probe_transformer_atis.py --probes slot_loss_weight=2.0,learning_rate=1e-4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from voxloop.data import load_corpus
from voxloop.nlu.evaluate import evaluate
from voxloop.nlu.transformer import TransformerParser

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def value(text: str) -> Any:
    """A probe's value: a bool, a number, or the text itself."""
    if text in ("True", "False"):
        return text == "True"
    try:
        return float(text)
    except ValueError:
        return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", default="freeze_embeddings=False,slot_loss_weight=2.0")
    ap.add_argument("--max-epochs", type=int, default=8)
    args = ap.parse_args()
    corpus = load_corpus(f"atis:{DATASETS / 'atis'}")
    train, dev, test = corpus.split("train"), corpus.split("dev"), corpus.split("test")
    for probe in args.probes.split(","):
        key, _, text = probe.partition("=")
        started = time.perf_counter()
        parser = TransformerParser(
            max_epochs=args.max_epochs, threads=2, seed=0, progress=False, **{key: value(text)}
        ).fit(train, dev)
        best = max(parser.history_, key=lambda h: h["dev_exact_match"])
        result = evaluate(test, parser.parse([u.text for u in test]))
        row = {
            "probe": probe,
            "minutes": round((time.perf_counter() - started) / 60, 1),
            "best_dev": {
                k: round(best[k], 4)
                for k in ("epoch", "dev_intent_accuracy", "dev_slot_f1", "dev_exact_match")
            },
            "test_int8": [
                round(result.intent_accuracy, 4),
                round(result.slot_f1, 4),
                round(result.exact_match, 4),
            ],
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
