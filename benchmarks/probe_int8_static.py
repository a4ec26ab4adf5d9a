"""Fixed int8 activation scales against per-batch ones, on saved transformer models.

For each ``--models DIR/CORPUS``, the int8 file is written twice from the model's own fp32
file with `TransformerParser.quantize` and the model's int8 settings: with activation scales
fixed on ``--calibration`` (2,000) training texts (MiniLM's ``int8_calibration`` default,
what training writes since 2026-12-06) and with dynamic quantisation's scale per batch
(``int8_calibration=0``, before). ``--massive LOCALES`` probes one model trained on those
MASSIVE locales (the first ``--test-limit`` test texts of each). Reports on the test split: accuracy of fp32 and both int8 files; parses that differ from
fp32 on test and on the first 5,000 training texts; test parses that change when a text is
parsed alone instead of in batches of the model's batch size; batched and single-text speed
of both int8 files, alternating rounds in one process.

    python benchmarks/probe_int8_static.py --models /work/models13 --corpora snips,atis,hwu64
    python benchmarks/probe_int8_static.py --models /work/mtrans14/f10 --massive de-DE,ja-JP
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import (  # noqa: E402
    CORPORA,
    DATASETS,
    figure_cells,
    machine,
    parses_differ,
    print_alternating_speed,
    probe_arguments,
)

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.base import read_manifest  # noqa: E402
from voxloop.nlu.evaluate import evaluate  # noqa: E402
from voxloop.nlu.runtime import OnnxParser  # noqa: E402
from voxloop.nlu.transformer import TransformerParser  # noqa: E402
from voxloop.schema import Utterance  # noqa: E402


def requantized(
    model: Path,
    out: Path,
    train_texts: list[str],
    calibration: int | None,
    rewrite: Callable[[Path], object] | None = None,
    reduce_range: bool | None = None,
) -> Path:
    """A copy of ``model`` whose int8 file is written again with ``int8_calibration``
    (after ``rewrite`` of its fp32 file, when given), with ``int8_reduce_range`` when given
    (else the model's own)."""
    shutil.copytree(model, out)
    if rewrite is not None:
        rewrite(out / "model.onnx")
    hyper = dict(read_manifest(model)["hyperparameters"])
    hyper.update(int8_calibration=calibration, progress=False)
    if reduce_range is not None:
        hyper.update(int8_reduce_range=reduce_range)
    TransformerParser(**hyper).quantize(out, train_texts)
    return out


def probe(
    directory: Path,
    name: str,
    test: list[Utterance],
    train_texts: list[str],
    args: argparse.Namespace,
    tmp: Path,
) -> None:
    texts = [u.text for u in test]
    criterion = train_texts[: args.train_texts]
    files = {
        "int8, fixed scales": requantized(
            directory, tmp / f"{name}-fixed", train_texts, args.calibration
        ),
        "int8, scale per batch": requantized(directory, tmp / f"{name}-dynamic", train_texts, 0),
    }
    fp32 = OnnxParser.load(directory, precision="fp32", threads=args.threads)
    reference = {"test": fp32.parse(texts), "train": fp32.parse(criterion)}
    del fp32  # an idle session's threads would share the cores with the timings below
    print(f"\n### {name} ({directory})\n")
    print(
        "| model | intent (best guess) | slot F1 | exact match | ≠ fp32 test / train "
        "| batched ≠ alone |"
    )
    print("|---|---|---|---|---|---|")
    r = evaluate(test, reference["test"])
    print(f"| fp32 | {figure_cells(r)} | | |")
    parsers = {}
    for label, path in files.items():
        parser = OnnxParser.load(path, precision="int8", threads=args.threads)
        parsers[label] = parser
        parses = parser.parse(texts)
        alone = [parser.parse([t])[0] for t in texts]
        r = evaluate(test, parses)
        print(
            f"| {label} | {figure_cells(r)} | {parses_differ(parses, reference['test'])} / "
            f"{parses_differ(parser.parse(criterion), reference['train'])} | "
            f"{parses_differ(parses, alone)} of {len(texts)} |"
        )
    print_alternating_speed(parsers, texts, args.rounds)


def main() -> None:
    ap = probe_arguments(__doc__, rounds=5)
    ap.add_argument("--train-texts", type=int, default=5000)
    ap.add_argument(
        "--massive",
        help="LOCALES: --models is one model trained on these MASSIVE locales (comma-separated)",
    )
    ap.add_argument("--test-limit", type=int, default=300, help="per MASSIVE locale")
    ap.add_argument("--calibration", type=int, default=2000, help="texts fixing the scales")
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        if args.massive:
            test, train = massive(args.massive, args.test_limit)
            probe(args.models, "massive", test, train, args, Path(tmp))
            return
        for name in args.corpora.split(","):
            corpus = load_corpus(CORPORA[name])
            train = [u.text for u in corpus.split("train")]
            probe(args.models / name, name, list(corpus.split("test")), train, args, Path(tmp))


def massive(locales: str, test_limit: int) -> tuple[list[Utterance], list[str]]:
    """The first ``test_limit`` test utterances of each MASSIVE locale, and the training
    texts of all of them in a seeded order (the criterion takes its first N)."""
    test: list[Utterance] = []
    train: list[str] = []
    for locale in locales.split(","):
        corpus = load_corpus(f"massive:{DATASETS / 'massive' / locale}.jsonl")
        test += list(corpus.split("test"))[:test_limit]
        train += [u.text for u in corpus.split("train")]
    random.Random(0).shuffle(train)
    return test, train


if __name__ == "__main__":
    main()
