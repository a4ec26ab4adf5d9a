"""Quantise a saved transformer model to int8 again, with chosen nodes left in fp32.

A probe for where the int8 loss comes from (RESULTS.md, "Where the int8 loss is" and
"Fused attention ..."): copies ``--model`` to ``--out`` and rewrites ``model.int8.onnx``
with `voxloop.nlu.quantize.quantize_int8` (per channel unless ``--per-matrix``), leaving in
fp32 the nodes of the lowest ``--fp32-layers`` encoder layers whose role is in
``--fp32-roles`` (comma-separated: ``attention``, ``attention_output``, ``intermediate``,
``output``; empty for every node of those layers). Layers and roles come from the module
names the exporter records, so the same command works on graphs exported before and after
attention was fused (before, ``attention`` covers the Q/K/V projections, the score
MatMuls and the attention output). Evaluate the result with
``bench_massive_transformer.py --model OUT --precisions int8``.

    python benchmarks/probe_int8_layers.py --model /tmp/f5c-fused --fp32-layers 6 \\
        --fp32-roles output --out /tmp/f5c-out6
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from voxloop.nlu.quantize import quantize_int8
from voxloop.nlu.runtime import FP32_FILE, INT8_FILE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="a saved transformer model")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fp32-layers", type=int, required=True)
    ap.add_argument("--fp32-roles", default="", help="comma-separated; empty: every node")
    ap.add_argument("--per-matrix", action="store_true", help="one int8 scale per matrix")
    args = ap.parse_args()

    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.model, args.out, ignore=shutil.ignore_patterns(INT8_FILE))
    kept = quantize_int8(
        args.out / FP32_FILE,
        args.out / INT8_FILE,
        per_channel=not args.per_matrix,
        fp32_layers=args.fp32_layers,
        fp32_roles=[r for r in args.fp32_roles.split(",") if r],
    )
    size = (args.out / INT8_FILE).stat().st_size / 1e6
    print(f"{args.out}: {len(kept)} nodes left in fp32; {INT8_FILE} {size:.1f} MB")


if __name__ == "__main__":
    main()
