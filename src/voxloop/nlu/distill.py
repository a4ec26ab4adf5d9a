"""Soft targets from trained transformer parsers, for knowledge distillation.

A student network (`voxloop.nlu.transformer.TransformerParser` with ``teachers``) learns
from the one-hot labels and from the probabilities one or more saved models (the
teachers: a larger encoder, or several seeds) give the same training texts, softened by
a temperature — the task-specific distillation of DistilBERT and TinyBERT. The teachers
run here with onnxruntime (their fp32 files), once, before training.

Teacher and student need not share a tokenizer: slot probabilities are taken at each
word's first sub-word in the teacher's pieces and handed to the student at that word's
first sub-word in its own, the position its slot label sits at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxloop.errors import ConfigError
from voxloop.nlu.runtime import OnnxParser, first_subwords, softmax
from voxloop.nlu.tokenize import tokenize

__all__ = ["SoftTargets", "TeacherMemo", "soft_targets"]

_Outputs = tuple[list[tuple[int, int]], npt.NDArray[np.float32], npt.NDArray[np.float32]]
TeacherMemo = dict[str, dict[str, _Outputs]]
"""Teachers' outputs kept between calls of `soft_targets`: per teacher directory, per
text, its sub-word offsets, intent logits and slot logits."""


@dataclass(frozen=True, slots=True)
class SoftTargets:
    """Teacher probabilities for a list of texts: ``intents[i]`` over the student's
    intents; ``words[i][k]`` over the student's tags for word ``k`` of text ``i``
    (a row of NaN where no teacher saw the word, e.g. past its truncation)."""

    intents: npt.NDArray[np.float32]
    words: list[npt.NDArray[np.float32]]


def _columns(names: Sequence[str], teacher: Sequence[str], what: str, where: Path) -> list[int]:
    index = {n: i for i, n in enumerate(teacher)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ConfigError(
            f"{where}: the teacher does not know {len(missing)} of the student's {what} "
            f"(first: {missing[0]!r}); train it on the same labels",
            key="teachers",
        )
    return [index[n] for n in names]


def soft_targets(
    teachers: Sequence[str | Path],
    texts: Sequence[str],
    intents: Sequence[str],
    tags: Sequence[str],
    *,
    temperature: float,
    threads: int | None = None,
    memo: TeacherMemo | None = None,
) -> SoftTargets:
    """The mean over ``teachers`` (saved transformer model directories) of their
    temperature-softened intent and per-word slot probabilities for ``texts``, in the
    student's label order (a teacher must know every student label; its others are
    dropped before the softmax). With a ``memo``, a teacher runs only on the texts it
    has not seen in an earlier call with the same memo (a refit's second pass: none)."""
    if not teachers:
        raise ConfigError("give at least one teacher model directory", key="teachers")
    if temperature <= 0:
        raise ConfigError(f"must be positive, not {temperature}", key="distill_temperature")
    tokens = [tokenize(t) for t in texts]
    intent_sum = np.zeros((len(texts), len(intents)), dtype=np.float64)
    word_sums = [np.zeros((len(w), len(tags)), dtype=np.float64) for w in tokens]
    seen = [np.zeros(len(w), dtype=np.int64) for w in tokens]
    for path in teachers:
        teacher = OnnxParser.load(path, precision="fp32", threads=threads)
        intent_cols = _columns(intents, teacher.decoder_.intents, "intents", Path(path))
        tag_cols = _columns(tags, teacher.decoder_.tags, "slot tags", Path(path))
        seen_texts = None if memo is None else memo.setdefault(str(path), {})
        offsets, intent_logits, slot_logits = _logits(teacher, texts, seen_texts)
        intent_sum += softmax(intent_logits[:, intent_cols] / temperature, axis=-1)
        for i, (text_tokens, rows) in enumerate(zip(tokens, slot_logits, strict=True)):
            firsts = np.array(first_subwords(text_tokens, offsets[i]), dtype=np.int64)
            found = firsts >= 0
            word_sums[i][found] += softmax(rows[firsts[found]][:, tag_cols] / temperature)
            seen[i][found] += 1
    per_word: list[npt.NDArray[np.float32]] = []
    for sums, count in zip(word_sums, seen, strict=True):
        with np.errstate(invalid="ignore", divide="ignore"):
            per_word.append((sums / count[:, None]).astype(np.float32))
    return SoftTargets((intent_sum / len(teachers)).astype(np.float32), per_word)


def _logits(
    teacher: OnnxParser, texts: Sequence[str], memo: dict[str, _Outputs] | None
) -> tuple[list[list[tuple[int, int]]], npt.NDArray[np.float32], list[npt.NDArray[np.float32]]]:
    """The teacher's `OnnxParser.logits` for ``texts``, running it only on the distinct
    texts not yet in ``memo`` and adding them."""
    if memo is None:
        return teacher.logits(texts)
    todo = [t for t in dict.fromkeys(texts) if t not in memo]
    if todo:
        offsets, intents, slots = teacher.logits(todo)
        for text, pieces, intent, slot in zip(todo, offsets, intents, slots, strict=True):
            memo[text] = (pieces, intent, slot)
    kept = [memo[t] for t in texts]
    return [k[0] for k in kept], np.stack([k[1] for k in kept]), [k[2] for k in kept]
