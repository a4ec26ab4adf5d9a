"""Choose the n-best rescoring weights on SLURP devel (never on test).

For three Whisper tiny.en configurations (no bias, domain prompt, prompt + hotwords), speak
the first N devel utterances with espeak-ng, recognise, parse every hypothesis, and grid
search the (domain LM, NLU confidence) weights by intent accuracy of the picked parse.

    python benchmarks/bench_speech_tune.py --model /tmp/massive-en --limit 150
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxloop.data import load_corpus
from voxloop.nlu.base import load_parser
from voxloop.speech.bias import Bias
from voxloop.speech.recognizers import WhisperRecognizer
from voxloop.speech.rescore import tune_weights
from voxloop.speech.spoken import evaluate_spoken, format_spoken, recognize_set, synthesized

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--limit", type=int, default=150)
    ap.add_argument("--data", default=f"slurp:{DATASETS / 'slurp'}")
    ap.add_argument("--bias-data", default=f"massive:{DATASETS / 'massive' / 'en-US.jsonl'}")
    args = ap.parse_args()
    parser = load_parser(args.model)
    bias = Bias.from_texts(u.text for u in load_corpus(args.bias_data).split("train"))
    dev = load_corpus(args.data).split("dev")[: args.limit]
    configs = {
        "none": {},
        "prompt": {"prompt": bias.prompt},
        "prompt+hot": {"prompt": bias.prompt, "hotwords": bias.hotwords},
    }
    for name, kw in configs.items():
        items = recognize_set(parser, WhisperRecognizer(**kw), dev, synthesized())
        weights, acc = tune_weights(
            [i.recognition.hypotheses for i in items],
            [i.parses for i in items],
            [i.gold.intent for i in items],
            bias.lm,
        )
        result = evaluate_spoken(parser, items, lm=bias.lm, weights=weights, examples=0)
        print("==", name, weights, acc)
        print(format_spoken(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
