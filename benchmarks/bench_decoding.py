"""Decoding alone: the time `Decoder.decode` takes on a saved transformer model's outputs,
and (with ``--against REV``) whether an older decoder gives the same parses.

    python benchmarks/bench_decoding.py --models /work/models5
    python benchmarks/bench_decoding.py --models /work/models5 --against f7d7923 --settings

The network runs once per corpus (test split, and dev where there is one); its outputs are
decoded 256 texts per call and one text per call, by this tree's decoder and, with
``--against``, by the decoder of ``src/voxloop/nlu/runtime.py`` at that git revision,
alternating, ``--repeats`` times; medians are printed in ms per utterance. The two
decoders' parses are compared (intents, rankings, slot spans; confidences to 1e-9) under
the model's own decoding weights, and with ``--settings`` also under bigram weight 0 / 1 x
joint weight 0 / 2 x unseen-label cost inf / 2 / 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import CORPORA  # noqa: E402

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu import runtime  # noqa: E402
from voxloop.schema import Parse  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def runtime_at(revision: str, workdir: Path) -> ModuleType:
    """``voxloop.nlu.runtime`` as it was at ``revision``, imported under another name."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{revision}:src/voxloop/nlu/runtime.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = workdir / "runtime_then.py"
    path.write_text(source, "utf-8")
    spec = importlib.util.spec_from_file_location("runtime_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def same(a: Parse, b: Parse) -> bool:
    """Equal parses, confidences to 1e-9 (summation order may differ)."""
    if (a.text, a.intent, a.domain, a.locale, a.slots) != (
        b.text,
        b.intent,
        b.domain,
        b.locale,
        b.slots,
    ):
        return False
    if [r.intent for r in a.ranking] != [r.intent for r in b.ranking]:
        return False
    ranks = ([r.confidence for r in a.ranking], [r.confidence for r in b.ranking])
    slots = ([s.confidence for s in a.slots], [s.confidence for s in b.slots])
    return all(np.allclose(x, y, rtol=1e-9, atol=1e-12) for x, y in (ranks, slots))


def decode_all(decoder: Any, texts: list[str], outputs: tuple[Any, ...], batch: int) -> list[Parse]:
    offsets, intents, slots, rows = outputs
    out: list[Parse] = []
    for i in range(0, len(texts), batch):
        j = i + batch
        slot_batch = slots[i:j] if batch > 1 else rows[i][None]
        out += decoder.decode(texts[i:j], offsets[i:j], intents[i:j], slot_batch)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, required=True, help="a directory of DIR/CORPUS models")
    ap.add_argument("--corpora", default="snips,atis,hwu64")
    ap.add_argument("--against", help="a git revision whose decoder to compare with")
    ap.add_argument("--settings", action="store_true", help="also compare under 12 settings")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        then = runtime_at(args.against, Path(tmp)) if args.against else None
        for name in args.corpora.split(","):
            model = args.models / name
            parser = runtime.OnnxParser.load(model)
            corpus = load_corpus(CORPORA[name])
            texts = [u.text for s in ("test", "dev") if s in corpus.splits for u in corpus.split(s)]
            offsets, intents, rows = parser.logits(texts)
            slots = np.zeros((len(texts), max(len(r) for r in rows), rows[0].shape[1]), np.float32)
            for i, r in enumerate(rows):
                slots[i, : len(r)] = r
            outputs = (offsets, intents, slots, rows)
            options = parser.decoder_.options
            decoders = {"now": parser.decoder_}
            if then is not None:
                decoders["then"] = then.Decoder(**options)
            times: dict[tuple[str, int], list[float]] = {}
            for _ in range(args.repeats):
                for label, decoder in decoders.items():
                    for batch in (256, 1):
                        started = time.perf_counter()
                        decode_all(decoder, texts, outputs, batch)
                        elapsed = (time.perf_counter() - started) / len(texts) * 1e3
                        times.setdefault((label, batch), []).append(elapsed)
            line = f"{name} ({len(texts)} texts): ms/utt"
            for (label, batch), values in sorted(
                times.items(), key=lambda kv: (-kv[0][1], kv[0][0] != "then")
            ):
                line += f"  {label} {'batched' if batch > 1 else 'one text'} {statistics.median(values):.3f}"
            print(line, flush=True)
            if then is None:
                continue
            grid = [{}]
            if args.settings:
                grid += [
                    {"bigram_weight": b, "joint_weight": j, "unseen_penalty": u}
                    for b, j, u in itertools.product((0.0, 1.0), (0.0, 2.0), (math.inf, 2.0, 0.0))
                ]
            for changes in grid:
                both = {**options, **changes}
                a = decode_all(then.Decoder(**both), texts, outputs, 256)
                b = decode_all(parser.decoder_.replace(**changes), texts, outputs, 256)
                differ = sum(not same(x, y) for x, y in zip(a, b, strict=True))
                print(f"  {changes or 'model weights'}: {differ} of {len(texts)} parses differ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
