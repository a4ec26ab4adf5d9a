"""``voxloop eval --speech``: spoken-LU evaluation from the command line (arguments in,
report out). The CLI adds these options to ``voxloop eval`` and calls `run`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from voxloop.errors import ConfigError, VoxloopError

__all__ = ["RECOGNIZER_SPECS", "add_arguments", "bias_for_model", "run"]

RECOGNIZER_SPECS = (
    "whisper (Whisper tiny.en), whisper:DIR (a CTranslate2 Whisper model), pocketsphinx, "
    "pocketsphinx:DIR, vosk:DIR (a Vosk model; pip install vosk)"
)
"""What `voxloop.speech.recognizers.load_recognizer` accepts, for ``--recognizer`` help."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--speech`` options of ``voxloop eval``."""
    p.add_argument(
        "--speech",
        action="store_true",
        help="spoken-LU evaluation: speak the utterances with espeak-ng, recognise, parse, "
        "report WER, intent accuracy and slot scores on recognised vs gold text",
    )
    p.add_argument(
        "--recognizer",
        default="whisper",
        metavar="SPEC",
        help=f"{RECOGNIZER_SPECS} (default: %(default)s)",
    )
    p.add_argument(
        "--speech-bias",
        default="auto",
        metavar="SPEC",
        help="bias the recognizer toward this corpus's train split; auto: the model's own "
        "training data (from its manifest); none: no biasing (default: auto)",
    )
    p.add_argument(
        "--rescore",
        default="0.2,0.2",
        metavar="LM,NLU",
        help="weights of the domain LM and the NLU confidence for the n-best pick; "
        "'none' to skip it (default: %(default)s, chosen on SLURP devel)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="only the first N utterances")
    p.add_argument(
        "--voices",
        metavar="V1,V2",
        help="espeak-ng voices used in turn (default: en-us,en-gb,en-us+f3,en-gb-x-rp,en-us+m3)",
    )
    p.add_argument(
        "--rates",
        metavar="R1,R2",
        help="speaking rates in words/min used in turn (default: 150,170,135,185)",
    )


def bias_for_model(model: str, spec: str) -> Any:
    """The `Bias` ``--speech-bias`` asks for: none, a corpus spec, or auto (the model's
    training data as its manifest records it; none when it cannot be read)."""
    from voxloop.data import load_corpus
    from voxloop.nlu.base import read_manifest
    from voxloop.speech.bias import Bias

    if spec == "none":
        return None
    split = "train"
    if spec == "auto":
        data = read_manifest(model).get("training_data") or {}
        spec, split = str(data.get("spec") or ""), str(data.get("split") or "train")
        if not spec:
            print(
                "voxloop: the model does not record its training data; no biasing", file=sys.stderr
            )
            return None
    try:
        texts = [u.text for u in load_corpus(spec).split(split)]
    except VoxloopError as e:
        raise ConfigError(f"cannot read the bias corpus: {e}", key="--speech-bias") from None
    return Bias.from_texts(texts)


def _weights(value: str) -> Any:
    from voxloop.speech.rescore import RescoreWeights

    if value == "none":
        return None
    try:
        lm, nlu = (float(x) for x in value.split(","))
    except ValueError:
        raise ConfigError(f"expected two numbers LM,NLU, got {value!r}", key="--rescore") from None
    return RescoreWeights(lm, nlu)


def run(args: argparse.Namespace) -> int:
    """Recognise and score; prints a report (or one JSON object with ``--json``)."""
    from tqdm import tqdm

    from voxloop.data import load_corpus
    from voxloop.nlu.base import load_parser
    from voxloop.speech.recognizers import load_recognizer
    from voxloop.speech.spoken import evaluate_spoken, format_spoken, recognize_set, synthesized
    from voxloop.speech.synth import RATES, VOICES

    weights = _weights(args.rescore)
    voices = args.voices.split(",") if args.voices else list(VOICES)
    try:
        rates = [int(r) for r in args.rates.split(",")] if args.rates else list(RATES)
    except ValueError:
        raise ConfigError(f"expected integers, got {args.rates!r}", key="--rates") from None
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"must be at least 1, got {args.limit}", key="--limit")
    parser = load_parser(args.model)
    locales = [x.strip() for x in args.locales.split(",") if x.strip()] if args.locales else None
    gold = load_corpus(args.data, locales=locales).split(args.split)
    if args.limit is not None:
        gold = gold[: args.limit]
    bias = bias_for_model(args.model, args.speech_bias)
    recognizer = load_recognizer(args.recognizer, bias=bias)
    with tqdm(total=len(gold), desc="recognising", unit="utt", file=sys.stderr, leave=False) as bar:
        items = recognize_set(
            parser, recognizer, gold, synthesized(voices, rates), on_item=lambda _: bar.update()
        )
    result = evaluate_spoken(parser, items, lm=bias.lm if bias else None, weights=weights)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        title = (
            f"{args.model} on {args.data} [{args.split}], spoken "
            f"({args.recognizer}, bias {args.speech_bias})"
        )
        print(format_spoken(result, title))
    return 0
