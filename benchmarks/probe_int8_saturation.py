"""Does this CPU's int8 arithmetic saturate, and how much does it move a saved model's parses?

onnxruntime's int8 matrix products multiply uint8 activations by int8 weights. On x86 CPUs
without VNNI (AVX2, AVX-512 without VNNI) the kernel adds pairs of those products in 16 bits
(``vpmaddubsw``), which saturates when a pair exceeds 32,767 (255 x 127 x 2 does); with VNNI
the products are summed in 32 bits, exactly. So the same int8 model can answer differently by
CPU. This probe measures both halves on the machine it runs on:

1. ``MatMulInteger`` on random uint8 activations against numpy's exact int32 product, with
   full-range int8 weights (what `voxloop.nlu.quantize` writes), 7-bit int8 weights
   (``reduce_range``) and uint8 weights (zero point 128): how many sums differ.
2. For each saved transformer model (``--models DIR`` with DIR/CORPUS), the shipped int8 file
   against the same file with every int8 weight rewritten as uint8 + 128 (zero point + 128):
   the same integers, computed by the uint8 x uint8 kernels, which do not saturate. Test
   figures of fp32, shipped int8 and exact int8; parses that differ between them (test, and
   the first 5,000 training texts); batched and single-text speed of both int8 sessions,
   alternating.

    python benchmarks/probe_int8_saturation.py
    python benchmarks/probe_int8_saturation.py --models /work/models8 --corpora snips,atis,hwu64
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import (  # noqa: E402
    CORPORA,
    figure_cells,
    machine,
    parses_differ,
    print_alternating_speed,
    probe_arguments,
)

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.evaluate import evaluate  # noqa: E402
from voxloop.nlu.runtime import INT8_FILE, OnnxParser  # noqa: E402


def matmul_mismatches(weights: np.ndarray, zero_point: int, rows: int = 64) -> int:
    """Sums of onnxruntime's ``MatMulInteger`` that differ from the exact int32 product."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    k, n = weights.shape
    activations = np.random.default_rng(1).integers(0, 256, size=(rows, k), dtype=np.uint8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w", "az", "wz"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [rows, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [rows, n])],
        [
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.array(128, np.uint8), "az"),
            numpy_helper.from_array(np.array(zero_point, weights.dtype), "wz"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"a": activations})[0]
    exact = (activations.astype(np.int32) - 128) @ (weights.astype(np.int32) - zero_point)
    return int((got != exact).sum())


def write_exact_int8(path: Path) -> int:
    """Rewrite the int8 ONNX file so that every int8 weight (and weight zero point) of its
    ``MatMulInteger`` and ``QAttention`` nodes is stored as uint8 + 128: the same products,
    computed without 16-bit saturation. Returns the number of tensors rewritten."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    initializers = {i.name: i for i in model.graph.initializer}
    # weight and weight-zero-point inputs of each integer op (ONNX / com.microsoft specs)
    inputs = {"MatMulInteger": (1, 3), "QAttention": (1, 7)}
    rewritten: set[str] = set()
    for node in model.graph.node:
        for index in inputs.get(node.op_type, ()):
            name = node.input[index] if index < len(node.input) else ""
            if not name or name in rewritten or name not in initializers:
                continue
            values = numpy_helper.to_array(initializers[name])
            if values.dtype != np.int8:
                continue
            shifted = (values.astype(np.int16) + 128).astype(np.uint8)
            initializers[name].CopyFrom(numpy_helper.from_array(shifted, name))
            rewritten.add(name)
    onnx.save(model, str(path))
    return len(rewritten)


def probe_model(directory: Path, corpus_name: str, args: argparse.Namespace, tmp: Path) -> None:
    corpus = load_corpus(CORPORA[corpus_name])
    test = corpus.split("test")
    texts = [u.text for u in test]
    train_texts = [u.text for u in corpus.split("train")][: args.train_texts]
    exact = tmp / corpus_name
    shutil.copytree(directory, exact)
    n = write_exact_int8(exact / INT8_FILE)
    parsers = {
        "fp32": OnnxParser.load(directory, precision="fp32", threads=args.threads),
        "int8 shipped": OnnxParser.load(directory, precision="int8", threads=args.threads),
        "int8 exact": OnnxParser.load(exact, precision="int8", threads=args.threads),
    }
    print(f"\n### {corpus_name} ({directory}; {n} int8 tensors rewritten for the exact run)\n")
    on_test = {name: p.parse(texts) for name, p in parsers.items()}
    on_train = {name: p.parse(train_texts) for name, p in parsers.items()}
    print("| model | intent (best guess) | slot F1 | exact match |")
    print("|---|---|---|---|")
    for name, parses in on_test.items():
        r = evaluate(test, parses)
        print(f"| {name} | {figure_cells(r)} |")
    for label, by_model, total in (
        ("test", on_test, len(texts)),
        ("train", on_train, len(train_texts)),
    ):
        shipped, exact_sums, reference = (
            by_model[k] for k in ("int8 shipped", "int8 exact", "fp32")
        )
        print(
            f"\nparses that differ on {label} ({total}): shipped vs exact "
            f"{parses_differ(shipped, exact_sums)}, shipped vs fp32 {parses_differ(shipped, reference)}, "
            f"exact vs fp32 {parses_differ(exact_sums, reference)}"
        )
    del parsers["fp32"]  # an idle session's threads would share the cores with the timing
    print_alternating_speed(parsers, texts, args.rounds)


def main() -> None:
    ap = probe_arguments(__doc__, rounds=3, models_required=False)
    ap.add_argument("--train-texts", type=int, default=5000)
    args = ap.parse_args()
    print(f"{machine()}\n")
    rng = np.random.default_rng(0)
    k, n = 384, 1536
    total = 64 * n
    cases = (
        ("int8 weights, full range", rng.integers(-128, 128, size=(k, n), dtype=np.int8), 0),
        ("int8 weights, 7 bits", rng.integers(-64, 64, size=(k, n), dtype=np.int8), 0),
        ("uint8 weights, zero point 128", rng.integers(0, 256, size=(k, n), dtype=np.uint8), 128),
    )
    print(f"MatMulInteger, 64 x {k} uint8 activations by {k} x {n} weights ({total} sums):")
    for label, weights, zero_point in cases:
        print(f"  {label}: {matmul_mismatches(weights, zero_point)} sums differ from exact")
    if args.models:
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.corpora.split(","):
                probe_model(args.models / name, name, args, Path(tmp))


if __name__ == "__main__":
    main()
