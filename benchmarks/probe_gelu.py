"""One Gelu node per layer against the exporter's five, on saved transformer models.

For each ``--models DIR/CORPUS`` exported before `voxloop.nlu.onnx_export.fuse_gelu`
existed (2026-12-06, session 14), two copies get their int8 file written again with
`TransformerParser.quantize` (the current int8 settings): one from the fp32 file as it was
exported, one after fusing its GELUs — the files training writes now.
Reports on the test split, fp32 and int8: accuracy of both, parses that differ between
them, onnxruntime's node count after its own optimisations, and batched and single-text
speed in alternating rounds (`print_alternating_speed`).

    python benchmarks/probe_gelu.py --models /work/models13 --corpora snips,atis,hwu64
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import (  # noqa: E402
    CORPORA,
    figure_cells,
    machine,
    parses_differ,
    print_alternating_speed,
    probe_arguments,
)
from probe_int8_static import requantized  # noqa: E402

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.evaluate import evaluate  # noqa: E402
from voxloop.nlu.onnx_export import fuse_gelu  # noqa: E402
from voxloop.nlu.runtime import OnnxParser  # noqa: E402


def optimised_nodes(parser: OnnxParser, precision: str) -> int:
    """How many nodes onnxruntime runs for the parser's file, after its graph fusions."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        options.log_severity_level = 3
        name = "model.int8.onnx" if precision == "int8" else "model.onnx"
        ort.InferenceSession(str(parser.directory_ / name), options)
        return len(onnx.load(options.optimized_model_filepath).graph.node)


def probe(directory: Path, name: str, args: argparse.Namespace, tmp: Path) -> None:
    corpus = load_corpus(CORPORA[name])
    test = corpus.split("test")
    texts = [u.text for u in test]
    train_texts = [u.text for u in corpus.split("train")]
    files = {
        "as exported": requantized(directory, tmp / f"{name}-exported", train_texts, None),
        "one Gelu per layer": requantized(
            directory, tmp / f"{name}-gelu", train_texts, None, fuse_gelu
        ),
    }
    print(f"\n### {name} ({directory})\n")
    print("| model | nodes run | intent (best guess) | slot F1 | exact match | ≠ as exported |")
    print("|---|---|---|---|---|---|")
    for precision in ("fp32", "int8"):
        parsers = {}
        before = None
        for label, path in files.items():
            parser = OnnxParser.load(path, precision=precision, threads=args.threads)
            parsers[f"{precision}, {label}"] = parser
            parses = parser.parse(texts)
            r = evaluate(test, parses)
            differ = "" if before is None else f"{parses_differ(parses, before)} of {len(texts)}"
            before = before or parses
            nodes = optimised_nodes(parser, precision)
            print(f"| {precision}, {label} | {nodes} | {figure_cells(r)} | {differ} |")
        print_alternating_speed(parsers, texts, args.rounds)


def main() -> None:
    args = probe_arguments(__doc__, rounds=7).parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.corpora.split(","):
            probe(args.models / name, name, args, Path(tmp))


if __name__ == "__main__":
    main()
