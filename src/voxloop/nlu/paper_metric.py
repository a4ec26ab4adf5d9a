"""Slot F1 the way the MASSIVE paper computes it, to put our figures beside its tables.

voxloop's slot F1 (`voxloop.nlu.evaluate`) compares exact character spans, so it means the
same in every script. The MASSIVE paper (FitzGerald et al., ACL 2023) scores BIO tags over
*words* with seqeval: whitespace-separated words, except in ja-JP and zh-CN (written without
spaces), where every character is a word. A span that covers part of a word then counts as
the whole word. `paper_slot_f1` does that to gold and predicted spans and returns seqeval's
micro F1 overall and per locale; in ja-JP and zh-CN it equals the character-span F1
whenever no span edge falls on a space. It does not reproduce two behaviours of the MASSIVE
release's scorer, which its published figures include: adjacent words of one label merge
into one slot, and in ja-JP and zh-CN a slot value written in ASCII does not end its slot
(117 of the 2,974 ja-JP test golds run on to the end of the utterance);
``benchmarks/massive_official_score.py`` scores the release's way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from voxloop.errors import DataError
from voxloop.nlu.slot_tagger import bio_tags, spans_from_tags
from voxloop.nlu.tokenize import Token
from voxloop.schema import Parse, Span, Utterance

__all__ = ["CHARACTER_LOCALES", "format_paper_f1", "paper_slot_f1", "paper_words"]

CHARACTER_LOCALES = frozenset({"ja-JP", "zh-CN"})
"""Locales the paper splits into characters instead of whitespace words."""

_WORD = re.compile(r"\S+")
_CHAR = re.compile(r"\S")


def paper_words(text: str, locale: str) -> list[Token]:
    """The paper's words of ``text``: non-space characters in `CHARACTER_LOCALES`,
    whitespace-separated words elsewhere; offsets into ``text``."""
    pattern = _CHAR if locale in CHARACTER_LOCALES else _WORD
    return [(m.group(), m.start(), m.end()) for m in pattern.finditer(text)]


def _chunks(text: str, words: Sequence[Token], spans: Iterable[Span]) -> set[tuple[str, int, int]]:
    return {(s.label, s.start, s.end) for s in spans_from_tags(text, words, bio_tags(words, spans))}


def paper_slot_f1(gold: Sequence[Utterance], predicted: Sequence[Parse]) -> dict[str, float]:
    """Micro slot F1 over the paper's words: ``{"all": f1, locale: f1, ...}`` (0.0 when a
    locale has neither gold nor predicted slots, as seqeval)."""
    if len(gold) != len(predicted):
        raise DataError(f"{len(gold)} gold utterances but {len(predicted)} predictions")
    counts: dict[str, list[int]] = {}
    for utt, parse in zip(gold, predicted, strict=True):
        words = paper_words(utt.text, utt.locale)
        g = _chunks(utt.text, words, utt.slots)
        p = _chunks(utt.text, words, parse.slots)
        for key in ("all", utt.locale):
            c = counts.setdefault(key, [0, 0, 0])
            c[0] += len(g & p)
            c[1] += len(g)
            c[2] += len(p)
    return {
        key: (2 * correct / (n_gold + n_pred) if n_gold + n_pred else 0.0)
        for key, (correct, n_gold, n_pred) in sorted(counts.items())
    }


def format_paper_f1(scores: dict[str, float]) -> str:
    """A small plain-text table of `paper_slot_f1`'s figures, overall first."""
    rows = [("all", scores.get("all", 0.0))] + [(k, v) for k, v in scores.items() if k != "all"]
    if len(rows) == 2:  # one locale: its figure is the overall one
        rows = rows[1:]
    width = max(len(k) for k, _ in rows)
    lines = ["slot F1 in the MASSIVE paper's convention (words; characters in ja-JP, zh-CN)"]
    lines += [f"  {k.ljust(width)}  {100 * v:6.2f}%" for k, v in rows]
    return "\n".join(lines)
