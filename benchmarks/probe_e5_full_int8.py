"""A saved MASSIVE model's int8 file against the one written before 2026-12-06.

Writes, from the model's own fp32 file, the int8 file e5-small had until session 14 (8-bit
weights, one activation scale per batch: ``int8_reduce_range=False, int8_calibration=0``)
and compares it with the model's int8 file as trained (7-bit weights, fixed scales): pooled
intent / slot F1 / exact match over the test texts of ``--locales``, parses that differ from
fp32, and parses that change when a text is parsed alone instead of in batches (on the first
``--alone`` test texts of each locale). Accuracy only; the speed of both files is the same
(RESULTS.md, "7-bit weights and fixed activation scales for e5-small").

    python benchmarks/probe_e5_full_int8.py --model /work/mtrans15/full12f4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import machine, parses_differ  # noqa: E402
from probe_int8_static import massive, requantized  # noqa: E402

from voxloop.nlu.evaluate import evaluate  # noqa: E402
from voxloop.nlu.runtime import OnnxParser  # noqa: E402

LOCALES = "ar-SA,de-DE,en-US,es-ES,fr-FR,hi-IN,it-IT,ja-JP,ko-KR,pl-PL,ru-RU,sw-KE,tr-TR,zh-CN"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="written by --save")
    ap.add_argument("--locales", default=LOCALES)
    ap.add_argument("--test-limit", type=int, default=10_000, help="per locale")
    ap.add_argument("--alone", type=int, default=200, help="per locale, parsed one at a time")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    print(machine(), flush=True)
    test, train = massive(args.locales, args.test_limit)
    texts = [u.text for u in test]
    per_locale = len(test) // len(args.locales.split(","))
    few = [i for i in range(len(test)) if i % per_locale < args.alone]
    with tempfile.TemporaryDirectory() as tmp:
        before = requantized(args.model, Path(tmp) / "before", train, 0, reduce_range=False)
        fp32 = OnnxParser.load(args.model, precision="fp32", threads=args.threads)
        reference = fp32.parse(texts)
        r = evaluate(test, reference)
        print(f"fp32: {r.intent_accuracy:.2%} / {r.slot_f1:.2%} / {r.exact_match:.2%}")
        del fp32
        files = (("int8 as trained", args.model), ("8-bit, scale per batch (before)", before))
        for name, path in files:
            parser = OnnxParser.load(path, precision="int8", threads=args.threads)
            parses = parser.parse(texts)
            r = evaluate(test, parses)
            alone = [parser.parse([texts[i]])[0] for i in few]
            moved = parses_differ([parses[i] for i in few], alone)
            print(
                f"{name}: {r.intent_accuracy:.2%} / {r.slot_f1:.2%} / {r.exact_match:.2%}; "
                f"differ from fp32 {parses_differ(parses, reference)} of {len(parses)}; "
                f"batched != alone {moved} of {len(few)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
