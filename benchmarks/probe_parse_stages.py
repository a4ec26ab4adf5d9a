"""Where a transformer parse spends its time: tokenising, the network, decoding.

For each ``--models DIR/CORPUS``, on the test split: one text per call (what a server's
single request pays), the median over ``--rounds`` passes of the per-text microseconds of
each stage as `OnnxParser.parse` runs them; and the decoding of whole batches
(``inference_batch_size`` texts, as `parse` feeds them), per text. The network's outputs
are computed once and decoded again each round, so decoding is timed alone.

To compare the code of two commits, run the probe from each checkout in turn, e.g.
``PYTHONPATH=/path/to/other/checkout/src python benchmarks/probe_parse_stages.py ...``,
alternating a few times: this machine's speed drifts by 20% from one minute to the next.

    python benchmarks/probe_parse_stages.py --models /work/models14g --corpora snips,atis,hwu64
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import CORPORA, machine, probe_arguments  # noqa: E402

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.runtime import OUTPUTS, OnnxParser  # noqa: E402


def stage_times(parser: OnnxParser, texts: list[str], rounds: int) -> dict[str, float]:
    """Median per-text microseconds of each stage, one text per call and in batches."""
    singles: list[tuple[str, Any, Any, Any]] = []
    tokenise, network = [], []
    for _ in range(rounds):
        tok = net = 0.0
        singles = []
        for text in texts:
            started = time.perf_counter()
            encodings = parser.tokenizer_.encode_batch([text])
            ((_, feed),) = list(parser.feeds(encodings))
            tokenised = time.perf_counter()
            intent, slots = parser.session_.run(OUTPUTS, feed)
            tok += tokenised - started
            net += time.perf_counter() - tokenised
            singles.append((text, encodings[0].offsets, intent, slots))
        tokenise.append(tok / len(texts))
        network.append(net / len(texts))
    encodings = parser.tokenizer_.encode_batch(texts)
    batches = []
    for chunk, feed in parser.feeds(encodings):
        intent, slots = parser.session_.run(OUTPUTS, feed)
        batches.append(
            ([texts[i] for i in chunk], [encodings[i].offsets for i in chunk], intent, slots)
        )
    decode_one, decode_batched = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for text, offsets, intent, slots in singles:
            parser.decoder_.decode([text], [offsets], intent, slots)
        decode_one.append((time.perf_counter() - started) / len(texts))
        started = time.perf_counter()
        for batch in batches:
            parser.decoder_.decode(*batch)
        decode_batched.append((time.perf_counter() - started) / len(texts))
    return {
        name: statistics.median(values) * 1e6
        for name, values in (
            ("tokenise", tokenise),
            ("network", network),
            ("decode", decode_one),
            ("decode, batched", decode_batched),
        )
    }


def main() -> None:
    args = probe_arguments(__doc__, rounds=5).parse_args()
    print(machine())
    print(f"code: {Path(sys.modules['voxloop'].__file__ or '').parent}")
    print("| corpus | tokenise µs | network µs | decode µs | decode µs/text, batched |")
    print("|---|---|---|---|---|")
    for name in args.corpora.split(","):
        parser = OnnxParser.load(args.models / name, threads=args.threads)
        texts = [u.text for u in load_corpus(CORPORA[name]).split("test")]
        t = stage_times(parser, texts, args.rounds)
        print(
            f"| {name} | {t['tokenise']:.0f} | {t['network']:.0f} | {t['decode']:.0f} | "
            f"{t['decode, batched']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
