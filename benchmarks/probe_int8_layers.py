"""Quantise a saved transformer model to int8 with its lowest layers left in fp32.

A probe for where the int8 loss of the multilingual model comes from (RESULTS.md, "Where the
int8 loss is"): copies ``--model`` to ``--out`` and rewrites ``model.int8.onnx`` with ONNX
Runtime's dynamic quantisation (per channel), leaving the MatMul/Gemm nodes of the first
``--fp32-layers`` encoder layers in fp32. A layer is found by counting: in the dynamo
export of a BERT encoder each layer is 8 consecutive MatMul/Gemm nodes in graph order
(``--nodes-per-layer``). Evaluate the result with
``bench_massive_transformer.py --model OUT --precisions int8``.

    python benchmarks/probe_int8_layers.py --model /work/mtrans/full12f5c --fp32-layers 6 \
        --out /tmp/q-first6
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="a saved transformer model")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fp32-layers", type=int, required=True)
    ap.add_argument("--nodes-per-layer", type=int, default=8)
    args = ap.parse_args()

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(args.model / "model.onnx"), load_external_data=False).graph
    matmuls = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm")]
    keep = matmuls[: args.nodes_per_layer * args.fp32_layers]
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.model, args.out, ignore=shutil.ignore_patterns("model.int8.onnx"))
    quantize_dynamic(
        str(args.model / "model.onnx"),
        str(args.out / "model.int8.onnx"),
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=keep,
    )
    size = (args.out / "model.int8.onnx").stat().st_size / 1e6
    print(f"{args.out}: {len(keep)} of {len(matmuls)} MatMul/Gemm nodes in fp32; {size:.1f} MB")


if __name__ == "__main__":
    main()
