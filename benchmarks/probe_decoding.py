"""Decode a saved transformer model's dev and test splits with other decoding weights.

The network runs once per split; only the decoder changes: the weight of the training set's
tag bigrams on the Viterbi path, the weight of joint intent-slot rescoring, the cost of a
slot label the intent was never seen with (inf: forbidden, as models saved before
2026-12-06 decode; 0: no constraint), and the out-of-scope threshold (the saved one, or
none). A model saved before these steps existed
gets its bigrams counted from the corpus's train split, as training would have.

    python benchmarks/probe_decoding.py --model /work/models/snips --corpus snips
    python benchmarks/probe_decoding.py --model /work/models2/atis --corpus atis \\
        --bigram-weights 0,0.5 --joint-weights 0,0.3,1 --unseen-penalties inf,2,0
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_classical import CORPORA  # noqa: E402

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.evaluate import evaluate  # noqa: E402
from voxloop.nlu.runtime import OnnxParser, tag_bigrams  # noqa: E402
from voxloop.nlu.slot_tagger import bio_tags  # noqa: E402
from voxloop.nlu.tokenize import tokenize  # noqa: E402


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--corpus", required=True, choices=sorted(CORPORA))
    ap.add_argument("--precision", default="int8", choices=("int8", "fp32"))
    ap.add_argument("--bigram-weights", type=_floats, default=[0.0, 0.5])
    ap.add_argument("--joint-weights", type=_floats, default=[0.0, 0.3, 1.0])
    ap.add_argument("--unseen-penalties", type=_floats, default=[math.inf])
    args = ap.parse_args()

    corpus = load_corpus(CORPORA[args.corpus])
    parser = OnnxParser.load(args.model, precision=args.precision)
    saved = parser.decoder_
    bigrams = saved.bigrams
    if bigrams is None:  # saved before tag bigrams existed: count them as training would
        train = corpus.split("train")
        bigrams = tag_bigrams(saved.tags, (bio_tags(tokenize(u.text), u.slots) for u in train))
    print(f"saved: bigram weight, joint weight, threshold from {args.model}/manifest.json")
    print(
        "| split | bigram w | joint w | unseen cost | threshold | intent | best-guess intent "
        "| slot F1 | exact |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for split in [s for s in ("dev", "test") if s in corpus.splits]:
        data = corpus.split(split)
        texts = [u.text for u in data]
        offsets, intents, slot_rows = parser.logits(texts)  # one network pass per split
        grid = [
            (b, j, u)
            for b in args.bigram_weights
            for j in args.joint_weights
            for u in args.unseen_penalties
        ]
        for bigram_weight, joint_weight, penalty in grid:
            for threshold in sorted({saved.threshold, 0.0}, reverse=True):
                decoder = saved.replace(
                    threshold=threshold,
                    bigrams=bigrams,
                    bigram_weight=bigram_weight,
                    joint_weight=joint_weight,
                    unseen_penalty=penalty,
                )
                parses = [
                    decoder.decode([text], [offsets[i]], intents[i][None], slot_rows[i][None])[0]
                    for i, text in enumerate(texts)
                ]
                e = evaluate(data, parses)
                print(
                    f"| {split} | {bigram_weight:g} | {joint_weight:g} | {penalty:g} | "
                    f"{threshold:.3f} | {e.intent_accuracy:.2%} | {e.top_intent_accuracy:.2%} | "
                    f"{e.slot_f1:.2%} | {e.exact_match:.2%} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
