"""Real-time factor of Whisper tiny.en, as wall time and as CPU time per audio second.

On a shared machine wall time depends on everyone else's load; CPU seconds per audio
second do much less, and bound the wall RTF on an idle 2-core machine from above (a
single-threaded run) and from below (half of it, perfect use of both cores).

    OMP_NUM_THREADS=2 python benchmarks/bench_speech_rtf.py --clips 30 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from voxloop.data import load_corpus
from voxloop.speech.bias import Bias
from voxloop.speech.recognizers import WhisperRecognizer
from voxloop.speech.spoken import synthesized

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=30, help="first N SLURP test utterances")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    gold = load_corpus(f"slurp:{DATASETS / 'slurp'}").split("test")[: args.clips]
    source = synthesized()
    audio = [source(i, u) for i, u in enumerate(gold)]
    train = load_corpus(f"massive:{DATASETS / 'massive' / 'en-US.jsonl'}").split("train")
    bias = Bias.from_texts(u.text for u in train)
    recognizers = {
        "whisper": WhisperRecognizer(cpu_threads=2),
        "whisper+bias": WhisperRecognizer(cpu_threads=2, prompt=bias.prompt),
    }
    for name, rec in recognizers.items():
        rec.recognize(audio[0])  # warm-up
        for rep in range(args.repeats):
            wall = cpu = seconds = 0.0
            for x in audio:
                w0, c0 = time.perf_counter(), time.process_time()
                rec.recognize(x)
                wall += time.perf_counter() - w0
                cpu += time.process_time() - c0
                seconds += len(x) / 16000
            print(
                f"{name} repeat {rep}: wall RTF {wall / seconds:.3f}, CPU s per audio s "
                f"{cpu / seconds:.3f} ({seconds:.0f} s of audio, load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
