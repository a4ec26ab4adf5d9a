"""Re-export a saved transformer model with the current ONNX export and int8 settings.

Rebuilds the torch joint model from the fp32 ONNX file of ``--model`` (its initializers
carry every trained weight), checks that it reproduces that file's outputs, then writes
``--out`` with `voxloop.nlu.onnx_export.export_onnx` (fused attention) and
`TransformerParser.quantize` with the model's own int8 settings from its manifest (one saved
before 2026-12-06 has ``int8_per_channel: null``: per matrix for MiniLM, per channel for
e5-small), and ``--int8-fp32-layers`` / ``--int8-fp32-roles`` (default: as training chooses).
Lets a model trained before an export change be measured with it, without retraining.

    python benchmarks/reexport_transformer.py --model /work/mtrans/full12f5c \\
        --out /tmp/f5c-out6
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from voxloop.nlu.base import MANIFEST, read_manifest, write_json_atomic
from voxloop.nlu.encoders import resolve_encoder
from voxloop.nlu.quantize import name_scopes
from voxloop.nlu.runtime import (
    FP32_FILE,
    INT8_FILE,
    LABELS_FILE,
    TOKENIZER_FILE,
    load_tokenizer,
    pad_batch,
)
from voxloop.nlu.transformer import EXPORT_TOLERANCE, TransformerParser, _build_model

SAMPLE = ["wake me up at five am", "what is the weather like in berlin today", "hi"]


def state_from_onnx(path: Path) -> dict[str, np.ndarray]:
    """The torch parameters of a dynamo-exported joint model: named initializers as they
    are, and each Linear weight from the MatMul/Gemm node whose module scope names it."""
    import onnx
    from onnx.numpy_helper import to_array

    graph = onnx.load(str(path)).graph
    arrays = {i.name: to_array(i) for i in graph.initializer}
    state = {k: v for k, v in arrays.items() if not k.startswith("val_")}
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm") or node.input[1] not in arrays:
            continue
        scopes = name_scopes(node)
        weight = arrays[node.input[1]]
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        state[f"{scopes[-2]}.weight"] = weight if trans_b else weight.T
    return state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--int8-fp32-layers", type=int, help="default: as training chooses")
    ap.add_argument("--int8-fp32-roles", default="output", help="comma-separated; empty: all")
    args = ap.parse_args()

    import torch

    from voxloop.nlu.onnx_export import export_difference, export_onnx

    manifest = read_manifest(args.model)
    hyper = manifest["hyperparameters"]
    labels = json.loads((args.model / LABELS_FILE).read_text())
    state = {
        k: torch.from_numpy(v.copy()) for k, v in state_from_onnx(args.model / FP32_FILE).items()
    }
    vocabulary = state["encoder.embeddings.word_embeddings.weight"].shape[0]
    model = _build_model(
        torch,
        resolve_encoder(hyper["encoder"]).directory,
        len(labels["intents"]),
        len(labels["tags"]),
        hyper["dropout"],
        layers=hyper["layers"],
        kept_pieces=np.arange(vocabulary),
    )
    model.load_state_dict(state, strict=False)
    missing = set(model.state_dict()) - set(state)
    if missing - {"encoder.embeddings.position_ids", "encoder.embeddings.token_type_ids"}:
        sys.exit(f"{args.model}: weights not found in {FP32_FILE}: {sorted(missing)}")
    model.eval()

    tokenizer = load_tokenizer(args.model / TOKENIZER_FILE)
    ids, mask = pad_batch([e.ids for e in tokenizer.encode_batch(SAMPLE)])
    rebuilt = export_difference(model, args.model / FP32_FILE, ids, mask)
    if rebuilt > EXPORT_TOLERANCE:
        sys.exit(f"the rebuilt torch model differs from {args.model / FP32_FILE} by {rebuilt:.3g}")
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    for name in (TOKENIZER_FILE, LABELS_FILE):
        shutil.copy2(args.model / name, args.out / name)
    export_onnx(model, ids, mask, args.out / FP32_FILE)
    exported = export_difference(model, args.out / FP32_FILE, ids, mask)
    if exported > EXPORT_TOLERANCE:
        sys.exit(f"the new export differs from torch by {exported:.3g}")
    roles = [r for r in args.int8_fp32_roles.split(",") if r]
    hyper = {**hyper, "int8_fp32_layers": args.int8_fp32_layers, "int8_fp32_roles": roles}
    kept = TransformerParser(**hyper).quantize(args.out)
    manifest["hyperparameters"] = hyper
    manifest["export_max_abs_diff"] = exported
    manifest["reexported_from"] = str(args.model)
    write_json_atomic(args.out / MANIFEST, manifest)
    print(
        f"{args.out}: rebuilt torch vs old ONNX {rebuilt:.2g}, new ONNX vs torch {exported:.2g}; "
        f"{len(kept)} nodes left in fp32 in {INT8_FILE}"
    )


if __name__ == "__main__":
    main()
