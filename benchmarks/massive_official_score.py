"""Score a saved model on MASSIVE the way the MASSIVE release scores, beside voxloop's figures.

    python benchmarks/massive_official_score.py --model DIR [--locales ja-JP,zh-CN,...]

The MASSIVE paper's figures come from its release's own pipeline, not from character spans:
``scripts/create_hf_dataset.py`` turns each ``annot_utt`` into words and bare slot labels
(whitespace words; in ja-JP, zh-CN and zh-TW every character, except that a chunk of ASCII
characters stays one word), and ``training_utils.eval_preds`` scores BIO tags built from
those labels by ``convert_to_bio`` (adjacent words of one label merge into one slot) with
seqeval's micro F1, and exact match as intent right and the whole tag list equal. This
script rebuilds that gold from the raw files, quirks included — after an ASCII slot value
in ja-JP/zh-CN the release does not end the slot (``[artist_name : aiko] の曲`` makes every
later character part of it) — gives each of a word the label of the predicted span that
overlaps it, and prints per locale: intent accuracy (top of the ranking, as the release's
argmax), slot F1 and exact match that way, beside voxloop's own slot F1 (exact character
spans) and exact match.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
if TYPE_CHECKING:
    from voxloop.schema import Span

DATASETS = Path(os.environ.get("VOXLOOP_DATASETS", REPO.parent / "shared" / "datasets"))
CHARACTER_LOCALES = ("ja-JP", "zh-CN", "zh-TW")


def release_words(locale: str, utt: str, annot: str) -> tuple[list[str], list[str]]:
    """Words and labels ("Other" outside slots) as the release's create_hf_dataset.py."""
    words: list[str] = []
    labels: list[str] = []
    label = "Other"
    if locale in CHARACTER_LOCALES:
        skip_colon = False
        for chunk in annot.split():
            if chunk.startswith("["):
                label, skip_colon = chunk.lstrip("["), True
            elif chunk == ":" and skip_colon:
                skip_colon = False
            elif chunk.isascii():  # kept whole; its "]" does not end the slot (the quirk)
                words.append(chunk.strip().rstrip("]"))
                labels.append(label)
            else:
                for ch in chunk.strip():
                    if ch == "]":
                        label = "Other"
                    else:
                        words.append(ch)
                        labels.append(label)
        return words, labels
    pieces, i = annot.split(), 0
    while i < len(pieces):
        if pieces[i].startswith("["):
            label, i = pieces[i].lstrip("["), i + 2
        elif pieces[i].endswith("]"):
            labels.append(label)
            label, i = "Other", i + 1
        else:
            labels.append(label)
            i += 1
    words = utt.split()
    if len(words) != len(labels):
        raise ValueError(f"{locale}: {len(words)} words but {len(labels)} labels: {annot!r}")
    return words, labels


def offsets(words: list[str], text: str) -> list[tuple[int, int]]:
    """Each word's character offsets in ``text``, read left to right."""
    out, pos = [], 0
    for w in words:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if text[pos : pos + len(w)] != w:
            raise ValueError(f"word {w!r} is not at {pos} of {text!r}")
        out.append((pos, pos + len(w)))
        pos += len(w)
    return out


def word_labels(words: list[tuple[int, int]], slots: Iterable[Span]) -> list[str]:
    """Each word's label: that of the (last) slot overlapping it, "Other" outside slots."""
    labels = ["Other"] * len(words)
    for s in slots:
        for i, (a, b) in enumerate(words):
            if a < s.end and s.start < b:
                labels[i] = s.label
    return labels


def to_bio(labels: list[str]) -> list[str]:
    """The release's convert_to_bio: a run of one label is one slot."""
    out, previous = [], None
    for label in labels:
        if label == "Other":
            out.append("O")
        else:
            out.append(("I-" if label == previous else "B-") + label)
        previous = label
    return out


def chunks(tags: list[str]) -> set[tuple[str, int, int]]:
    """Slots of a BIO list as conlleval (and seqeval's default mode) reads them."""
    out, current = set(), None
    for i, tag in enumerate([*tags, "O"]):
        continues = tag.startswith("I-") and current is not None and current[0] == tag[2:]
        if not continues:
            if current is not None:
                out.add((current[0], current[1], i - 1))
            current = (tag[2:], i) if tag != "O" else None
    return out


def main() -> None:
    from voxloop.data import load_corpus
    from voxloop.nlu.base import load_parser, read_manifest
    from voxloop.nlu.evaluate import evaluate

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a saved voxloop model directory")
    p.add_argument("--locales", help="comma-separated (default: every locale of the model)")
    args = p.parse_args()
    parser = load_parser(args.model)
    locales = (
        args.locales.split(",") if args.locales else list(read_manifest(args.model)["locales"])
    )
    print("| locale | intent | slot F1: release / voxloop | exact match: release / voxloop |"
          " test utterances whose release gold differs from the annotation |")  # fmt: skip
    print("|---|---|---|---|---|")
    totals = []
    for locale in locales:
        rows = [json.loads(line) for line in open(DATASETS / "massive" / f"{locale}.jsonl",
                                                   encoding="utf-8")]  # fmt: skip
        rows = [r for r in rows if r["partition"] == "test"]
        gold = list(
            load_corpus(f"massive:{DATASETS / 'massive' / f'{locale}.jsonl'}").split("test")
        )
        assert [u.text for u in gold] == [r["utt"] for r in rows]
        parses = parser.parse([r["utt"] for r in rows])
        ours = evaluate(gold, parses)
        correct = found = expected = exact = intents = differs = 0
        for r, utt, parse in zip(rows, gold, parses, strict=True):
            words, labels = release_words(locale, r["utt"], r["annot_utt"])
            spans = offsets(words, r["utt"])
            g, q = to_bio(labels), to_bio(word_labels(spans, parse.slots))
            gc, qc = chunks(g), chunks(q)
            correct, found, expected = correct + len(gc & qc), found + len(qc), expected + len(gc)
            top = parse.ranking[0].intent if parse.ranking else parse.intent
            intents += top == r["intent"]
            exact += top == r["intent"] and g == q
            differs += chunks(to_bio(word_labels(spans, utt.slots))) != gc
        n = len(rows)
        f1 = 2 * correct / (found + expected) if found + expected else 0.0
        totals.append((intents / n, f1, exact / n, ours.slot_f1, ours.exact_match))
        print(f"| {locale} | {100 * intents / n:.2f} | {100 * f1:.2f} / {100 * ours.slot_f1:.2f} | "
              f"{100 * exact / n:.2f} / {100 * ours.exact_match:.2f} | {differs} |", flush=True)  # fmt: skip
    k = len(totals)
    mean = [sum(t[i] for t in totals) / k for i in range(5)]
    print(f"| **average of {k}** | {100 * mean[0]:.2f} | {100 * mean[1]:.2f} / {100 * mean[3]:.2f} | "
          f"{100 * mean[2]:.2f} / {100 * mean[4]:.2f} | |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
