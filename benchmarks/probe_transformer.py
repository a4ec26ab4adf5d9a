"""Hyperparameter probe for the transformer parser: one setting changed at a time.

Trains `TransformerParser` for 8 epochs on a corpus's train split (early stopping on its dev
split, or a tenth of train held out where it has none) for each probe and prints one JSON
line: the best dev epoch and figures (what the choice should be made on) and, for the
record, intent / slot F1 / exact match on test (int8). A probe is ``key=value`` settings
joined by ``+``; ``baseline`` changes nothing. The baseline is also
`bench_transformer.py --corpora CORPUS --max-epochs 8`.

    python benchmarks/probe_transformer.py
    python benchmarks/probe_transformer.py --corpus snips --probes baseline,slot_loss_weight=2.0
    python benchmarks/probe_transformer.py --probes max_epochs=12+patience=2
    python benchmarks/probe_transformer.py --corpus hwu64 --probes seed=1,seed=2
    python benchmarks/probe_transformer.py --corpus snips --probes teachers=DIR1:DIR2

(``teachers``: saved models, separated by ``:``, to distil from.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import CORPORA  # noqa: E402

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.evaluate import evaluate  # noqa: E402
from voxloop.nlu.transformer import TransformerParser  # noqa: E402


def value(text: str) -> Any:
    """A probe's value: a bool, a number, or the text itself."""
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", default="freeze_embeddings=False,slot_loss_weight=2.0")
    ap.add_argument("--corpus", default="atis", choices=sorted(CORPORA))
    ap.add_argument("--max-epochs", type=int, default=8)
    ap.add_argument("--save-dir", type=Path, help="save each probe's model in DIR/<probe>")
    args = ap.parse_args()
    corpus = load_corpus(CORPORA[args.corpus])
    train, dev, test = corpus.split("train"), corpus.splits.get("dev"), corpus.split("test")
    for probe in args.probes.split(","):
        settings: dict[str, Any] = {"max_epochs": args.max_epochs, "seed": 0}
        for item in probe.split("+"):
            if item != "baseline":
                key, _, text = item.partition("=")
                settings[key] = text.split(":") if key == "teachers" else value(text)
        started = time.perf_counter()
        parser = TransformerParser(threads=2, progress=False, **settings).fit(train, dev)
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
        if args.save_dir:
            target = args.save_dir / probe.replace("/", "_")[:100]
            parser.save(target, {"version": target.name})
            row["saved"] = str(target)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
