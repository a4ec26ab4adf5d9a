"""Depth probe for the multilingual transformer: kept layers K and frozen layers F.

Trains TransformerParser(encoder="e5-small") for one epoch on the same seeded 6,000 MASSIVE
train utterances of four locales (en-US, de-DE, ja-JP, ar-SA) for each K:F pair and prints
the dev figures (800 seeded dev utterances of the same locales, torch model, no
calibration) with the training seconds, one JSON line per pair.

    python benchmarks/probe_e5_depth.py --pairs 4:0,6:0,6:3,8:3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import DATASETS  # noqa: E402

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.transformer import TransformerParser  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="4:0,6:0,6:3,8:3", help="K:F pairs")
    ap.add_argument("--locales", default="en-US,de-DE,ja-JP,ar-SA")
    ap.add_argument("--train", type=int, default=6000)
    ap.add_argument("--dev", type=int, default=800)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    corpus = load_corpus(f"massive:{DATASETS / 'massive'}", locales=args.locales.split(","))
    train = list(corpus.split("train"))
    random.Random(0).shuffle(train)
    dev = list(corpus.split("dev"))
    random.Random(1).shuffle(dev)
    train, dev = train[: args.train], dev[: args.dev]
    for pair in args.pairs.split(","):
        k, f = (int(x) for x in pair.split(":"))
        parser = TransformerParser(
            encoder="e5-small",
            layers=k,
            freeze_layers=f,
            max_epochs=1,
            threads=args.threads,
            progress=False,
        )
        started = time.perf_counter()
        parser.fit(train, dev)
        row = {
            "K": k,
            "F": f,
            "train": len(train),
            "fit_s": round(time.perf_counter() - started, 1),
            "load": os.getloadavg()[0],
            "vocab": parser.vocabulary_size_,
            **parser.history_[-1],
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
