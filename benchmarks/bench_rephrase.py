"""How well the rephrase KPI measures, corpus by corpus, against the generator's truth.

    python benchmarks/bench_rephrase.py --corpora slurp,snips,hass:en --turns 200000

For each corpus: a classical model (no sentence encoder) trained on its dev split (hass:
its train split), a fast simulated log of --turns turns over its test utterances
(`generate_log_fast`, threshold 0.3, seed 0), the KPI library's ``turn_facts`` on DuckDB,
and the detector's precision and recall against the turns the simulated users really
rephrased (overall and per kind: repeat, edit, paraphrase), with the KPI's rephrase rate
beside the true one. The detector needs no failure before a rephrase (the definition:
the same user again within the window with similar text), so a corpus whose utterances of
one intent share many words — a user asking two similar things in a row — lowers its
precision.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kpi import rephrase_quality  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("VOXLOOP_DATASETS", REPO.parent / "shared" / "datasets"))


def measure(name: str, turns: int, workdir: Path) -> dict[str, float | int | None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from voxloop.data import load_corpus
    from voxloop.log.engines import DuckDBEngine
    from voxloop.log.generate import ModelArm, generate_log_fast
    from voxloop.log.kpi import KpiOptions, materialize_facts
    from voxloop.log.store import LogStore
    from voxloop.nlu.classical import ClassicalParser

    spec = name if ":" in name else f"{name}:{DATASETS / name}"
    corpus = load_corpus(spec)
    fit = corpus.split("dev") if "dev" in corpus.splits else corpus.split("train")
    model = ClassicalParser(sentence_encoder="none", seed=0).fit(fit)
    log = workdir / name.replace(":", "-")
    made = generate_log_fast(log, corpus.split("test"), ModelArm(model, "m"), turns=turns,
                             days=7, threshold=0.3, seed=0)  # fmt: skip
    truth = log.with_suffix(".truth.parquet")
    pq.write_table(pa.table({"turn_id": list(made.rephrase_kinds),
                             "kind": list(made.rephrase_kinds.values())}), truth)  # fmt: skip
    engine = DuckDBEngine(LogStore(log), threads=2)
    try:
        materialize_facts(engine, KpiOptions())
        quality = rephrase_quality(engine, str(truth))
    finally:
        engine.close()
    quality["turns"] = made.turns
    quality["wrong"] = made.wrong
    return quality


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora", default="slurp,snips,hass:en", help="comma-separated")
    p.add_argument("--turns", type=int, default=200_000, help="turns per simulated log")
    args = p.parse_args()
    print("| corpus | turns | misrecognised | rephrased (true) | flagged | precision | recall | "
          "recall: repeat / edit / paraphrase |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.corpora.split(","):
            started = time.perf_counter()
            q = measure(name, args.turns, Path(tmp))
            kinds = " / ".join(f"{q.get(f'recall_{k}', 0):.2f}"
                               for k in ("repeat", "edit", "paraphrase"))  # fmt: skip
            print(f"| {name} | {q['turns']:,} | {q['wrong'] / q['turns']:.1%} | "
                  f"{q['true']:,} | {q['flagged']:,} | {q['precision']:.3f} | "
                  f"{q['recall']:.3f} | {kinds} |", flush=True)  # fmt: skip
            print(f"({name}: {time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
