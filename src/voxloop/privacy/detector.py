"""A high-recall detector of personal words, the fallback when the NLU misses them.

The NLU's slot tagger is tuned for F1; redaction needs recall. This detector scores each
token's probability of being personal, trained on a corpus's own personal slots, with one
of two encoders:

- ``hashed`` (the default): a multinomial logistic regression per token (classes: ``O``
  and each personal slot type) over hashed features of the word and its neighbours (word,
  affixes, shape, ±2 words, the bigrams around it). Saved as ``detector.json`` +
  ``detector.npz``; inference is numpy only.
- ``transformer``: the MiniLM joint model of `voxloop.nlu.transformer` fine-tuned to tag
  only the personal slot types (its intent is "has personal data or not"); a token's score
  is 1 - P(O) of its first sub-word. Needs ``voxloop[train]`` to train; saved as
  ``detector.json`` + the ONNX model directory ``encoder/``, served by onnxruntime (int8).

A token is personal when its score >= ``threshold``; the threshold is chosen on held-out
data as the largest one that hides ``target_recall`` of the held-out personal spans (every
token of a span flagged). Adjacent flagged tokens form one region, labelled with their most
probable type. No pickle either way.
"""

from __future__ import annotations

import json
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from voxloop.errors import ConfigError, ModelFormatError
from voxloop.nlu.tokenize import Token, tokenize
from voxloop.schema import Utterance

__all__ = ["ENCODERS", "PersonalDetector"]

FORMAT_VERSION = 1
_BITS = 18
Encoder = Literal["hashed", "transformer"]
ENCODERS: tuple[Encoder, ...] = ("hashed", "transformer")
_ENCODER_DIR = "encoder"
_HAS, _HAS_NOT = "personal", "not_personal"


def _shape(word: str) -> str:
    if word.isdigit():
        return "d" if len(word) < 3 else "ddd"
    if word.isalpha():
        return "a"
    return "x"


def _features(words: Sequence[str], i: int) -> list[str]:
    w = words[i]
    prev1 = words[i - 1] if i >= 1 else "<s>"
    prev2 = words[i - 2] if i >= 2 else "<s>"
    next1 = words[i + 1] if i + 1 < len(words) else "</s>"
    next2 = words[i + 2] if i + 2 < len(words) else "</s>"
    return [
        "b",
        "w=" + w,
        "p2=" + w[:2],
        "p3=" + w[:3],
        "s2=" + w[-2:],
        "s3=" + w[-3:],
        "sh=" + _shape(w),
        "l=" + str(min(len(w), 8)),
        "w-1=" + prev1,
        "w-2=" + prev2,
        "w+1=" + next1,
        "w+2=" + next2,
        "b-1=" + prev1 + "|" + w,
        "b+1=" + w + "|" + next1,
        "c=" + prev1 + "|" + next1,
        "pp=" + prev2 + "|" + prev1,
        "nn=" + next1 + "|" + next2,
    ]


def _hash_rows(rows: Iterable[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """CSR indptr and indices of hashed binary features (zlib.crc32: stable everywhere)."""
    mask = (1 << _BITS) - 1
    indptr = [0]
    indices: list[int] = []
    for feats in rows:
        indices.extend(zlib.crc32(f.encode()) & mask for f in feats)
        indptr.append(len(indices))
    return np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64)


def _words(tokens: Sequence[Token]) -> list[str]:
    return [t[0].lower() for t in tokens]


def _token_labels(u: Utterance, tokens: Sequence[Token], labels: set[str]) -> list[str]:
    out = []
    for _, start, end in tokens:
        label = "O"
        for s in u.slots:
            if s.label in labels and s.start < end and start < s.end:
                label = s.label
                break
        out.append(label)
    return out


class PersonalDetector:
    """Personal-word detector (see the module docstring); ``fit`` then `regions`."""

    def __init__(
        self,
        labels: Iterable[str],
        *,
        target_recall: float = 0.99,
        C: float = 4.0,
        encoder: Encoder = "hashed",
        epochs: int = 3,
    ):
        if encoder not in ENCODERS:
            raise ConfigError(
                f"must be one of {', '.join(ENCODERS)}, not {encoder!r}", key="encoder"
            )
        self.labels = sorted(set(labels))
        self.target_recall = target_recall
        self.C = C
        self.encoder = encoder
        self.epochs = epochs
        self.runtime_: Any = None  # the ONNX model of the transformer encoder
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.classes_: list[str] = []
        self.weights_: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self.bias_: np.ndarray = np.zeros(0, dtype=np.float32)
        self.threshold_: float = 0.5
        self.heldout_recall_: float | None = None

    # --- training -------------------------------------------------------------------
    def _matrix(self, utterances: Sequence[Utterance]) -> tuple[Any, list[str], list[int]]:
        import scipy.sparse as sp

        rows, y, owner = [], [], []
        for n, u in enumerate(utterances):
            tokens = tokenize(u.text)
            words = _words(tokens)
            rows += [_features(words, i) for i in range(len(words))]
            y += _token_labels(u, tokens, set(self.labels))
            owner += [n] * len(words)
        indptr, indices = _hash_rows(rows)
        data = np.ones(len(indices), dtype=np.float32)
        x = sp.csr_matrix((data, indices, indptr), shape=(len(rows), 1 << _BITS))
        x.sum_duplicates()
        x.data[:] = 1.0
        return x, y, owner

    def fit(self, train: Sequence[Utterance], heldout: Sequence[Utterance]) -> PersonalDetector:
        """Train on ``train``; choose the threshold on ``heldout`` for the target recall."""
        if self.encoder == "transformer":
            self._fit_transformer(train, heldout)
        else:
            self._fit_hashed(train)
        self.choose_threshold(heldout)
        return self

    def _personal_only(self, u: Utterance) -> Utterance:
        slots = tuple(s for s in u.slots if s.label in self.labels)
        return Utterance(u.text, _HAS if slots else _HAS_NOT, slots, None, u.locale, u.id)

    def _fit_transformer(self, train: Sequence[Utterance], heldout: Sequence[Utterance]) -> None:
        from voxloop.nlu.runtime import OnnxParser
        from voxloop.nlu.transformer import TransformerParser

        parser = TransformerParser(max_epochs=self.epochs, progress=False)
        parser.fit(
            [self._personal_only(u) for u in train], [self._personal_only(u) for u in heldout]
        )
        self._workdir = tempfile.TemporaryDirectory(prefix="voxloop-detector-")
        path = Path(self._workdir.name) / _ENCODER_DIR
        parser.save(path, {"purpose": "personal-data detector"})
        self.runtime_ = OnnxParser.load(path)
        self.classes_ = ["O", *self.labels]

    def _fit_hashed(self, train: Sequence[Utterance]) -> None:
        from sklearn.linear_model import LogisticRegression

        x, y, _ = self._matrix(train)
        used = np.unique(x.indices)  # fit on the buckets that occur: far fewer columns
        model = LogisticRegression(C=self.C, max_iter=300)
        model.fit(x[:, used], y)
        self.classes_ = [str(c) for c in model.classes_]
        coef = model.coef_.T.astype(np.float32)
        bias = model.intercept_.astype(np.float32)
        if len(self.classes_) == 2:  # binary: sklearn keeps one column for classes_[1]
            coef = np.hstack([-coef / 2, coef / 2])
            bias = np.array([-bias[0] / 2, bias[0] / 2], dtype=np.float32)
        self.weights_ = np.zeros((1 << _BITS, len(self.classes_)), dtype=np.float32)
        self.weights_[used] = coef
        self.bias_ = bias

    def choose_threshold(self, heldout: Sequence[Utterance]) -> None:
        """Set the threshold that hides ``target_recall`` of ``heldout``'s personal spans."""
        lowest: list[float] = []  # per gold span: the lowest P(personal) of its tokens
        tokenized = [tokenize(u.text) for u in heldout]
        scored = self._probas([u.text for u in heldout], tokenized)
        for u, tokens, (personal, _) in zip(heldout, tokenized, scored, strict=True):
            for s in u.slots:
                if s.label not in self.labels:
                    continue
                inside = [i for i, (_, a, b) in enumerate(tokens) if a < s.end and s.start < b]
                if inside:
                    lowest.append(float(min(personal[i] for i in inside)))
        if not lowest:
            self.threshold_ = 0.5
            return
        lowest.sort()
        k = int(np.floor((1 - self.target_recall) * len(lowest)))
        self.threshold_ = max(1e-4, min(0.5, lowest[k] * 0.999))
        self.heldout_recall_ = float(np.mean(np.asarray(lowest) >= self.threshold_))

    # --- inference ------------------------------------------------------------------
    def _probas(
        self, texts: Sequence[str], tokenized: Sequence[Sequence[Token]]
    ) -> list[tuple[np.ndarray, list[str]]]:
        """Per text: P(personal) per token and its most probable personal type (one batched
        network call for the transformer)."""
        if not texts:
            return []
        if self.runtime_ is not None:
            return self._transformer_probas(texts, tokenized)
        return [self._hashed_proba(tokens) for tokens in tokenized]

    def _hashed_proba(self, tokens: Sequence[Token]) -> tuple[np.ndarray, list[str]]:
        words = _words(tokens)
        if not words:
            return np.zeros(0), []
        indptr, indices = _hash_rows(_features(words, i) for i in range(len(words)))
        # (a rare hash collision inside one token counts twice: harmless for a detector)
        scores = np.add.reduceat(self.weights_[indices], indptr[:-1], axis=0) + self.bias_
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=1, keepdims=True)
        o = self.classes_.index("O") if "O" in self.classes_ else -1
        personal = 1 - p[:, o] if o >= 0 else np.ones(len(words))
        if o >= 0:
            p[:, o] = -1
        return personal, [self.classes_[int(k)] for k in p.argmax(axis=1)]

    def _transformer_probas(
        self, texts: Sequence[str], tokenized: Sequence[Sequence[Token]]
    ) -> list[tuple[np.ndarray, list[str]]]:
        from voxloop.nlu.runtime import first_subwords, softmax

        offsets, _, slot_logits = self.runtime_.logits(texts)
        tags: list[str] = self.runtime_.decoder_.tags
        outside = tags.index("O")
        out = []
        for tokens, text_offsets, logits in zip(tokenized, offsets, slot_logits, strict=True):
            p = softmax(logits)
            personal = np.zeros(len(tokens))
            labels = [self.labels[0]] * len(tokens)
            for i, j in enumerate(first_subwords(tokens, text_offsets)):
                if j < 0:
                    continue
                personal[i] = 1.0 - p[j, outside]
                row = p[j].copy()
                row[outside] = -1.0
                labels[i] = tags[int(row.argmax())][2:]
            out.append((personal, labels))
        return out

    def regions(self, text: str) -> list[tuple[int, int, str]]:
        """The personal regions of ``text``: runs of flagged tokens, with their type."""
        return self.regions_many([text])[0]

    def regions_many(self, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """`regions` of each text, scored in one batch (what the log writer's thread does).

        A text's scores do not depend on its batch-mates, except in int8 detectors saved
        before ``int8_calibration`` (see `voxloop.nlu.runtime.OnnxParser`); the threshold is
        chosen with texts batched the same way.
        """
        tokenized = [tokenize(t) for t in texts]
        busy = [i for i, tokens in enumerate(tokenized) if tokens]
        scored = self._probas([texts[i] for i in busy], [tokenized[i] for i in busy])
        out: list[list[tuple[int, int, str]]] = [[] for _ in texts]
        for i, (personal, best) in zip(busy, scored, strict=True):
            runs: list[tuple[int, int, str]] = []
            for k, (_, start, end) in enumerate(tokenized[i]):
                if personal[k] < self.threshold_:
                    continue
                if runs and k > 0 and personal[k - 1] >= self.threshold_:
                    runs[-1] = (runs[-1][0], end, runs[-1][2])
                else:
                    runs.append((start, end, best[k]))
            out[i] = runs
        return out

    # --- persistence ----------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "format": "voxloop-personal-detector",
            "format_version": FORMAT_VERSION,
            "labels": self.labels,
            "classes": self.classes_,
            "threshold": self.threshold_,
            "target_recall": self.target_recall,
            "heldout_recall": self.heldout_recall_,
            "hash_bits": _BITS,
            "encoder": self.encoder,
        }
        if self.runtime_ is not None:
            self.runtime_.save(directory / _ENCODER_DIR)
        else:
            np.savez(directory / "detector.npz", weights=self.weights_, bias=self.bias_)
        (directory / "detector.json").write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> PersonalDetector:
        directory = Path(directory)
        try:
            state = json.loads((directory / "detector.json").read_text())
            encoder = state.get("encoder", "hashed")
            if encoder == "transformer":
                from voxloop.nlu.runtime import OnnxParser

                # one thread: it runs beside the server's model, on the log writer's thread
                runtime = OnnxParser.load(directory / _ENCODER_DIR, threads=1)
            else:
                arrays = np.load(directory / "detector.npz", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ModelFormatError(f"{directory}: not a personal-data detector ({e})") from None
        if (
            state.get("format") != "voxloop-personal-detector"
            or state.get("format_version") != FORMAT_VERSION
            or state.get("hash_bits") != _BITS
        ):
            raise ModelFormatError(
                f"{directory}: not a personal-data detector of format {FORMAT_VERSION}; "
                "train it again"
            )
        detector = cls(state["labels"], target_recall=state["target_recall"], encoder=encoder)
        detector.classes_ = list(state["classes"])
        detector.threshold_ = float(state["threshold"])
        detector.heldout_recall_ = state.get("heldout_recall")
        if encoder == "transformer":
            detector.runtime_ = runtime
        else:
            detector.weights_ = arrays["weights"]
            detector.bias_ = arrays["bias"]
        return detector


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m voxloop.privacy.detector --data FORMAT:PATH --out DIR``: train one."""
    import argparse
    import random
    import sys

    from voxloop.data import load_corpus
    from voxloop.errors import VoxloopError
    from voxloop.privacy.config import DEFAULT_SLOT_TYPES

    p = argparse.ArgumentParser(prog="python -m voxloop.privacy.detector")
    p.add_argument("--data", required=True, help="FORMAT:PATH of a corpus with personal slots")
    p.add_argument("--out", required=True, help="detector directory to write")
    p.add_argument("--slot-types", default=",".join(DEFAULT_SLOT_TYPES))
    p.add_argument("--target-recall", type=float, default=0.95)
    p.add_argument("--encoder", choices=ENCODERS, default="hashed")
    p.add_argument("--epochs", type=int, default=3, help="transformer encoder: training epochs")
    args = p.parse_args(argv)
    try:
        train = list(load_corpus(args.data).split("train"))
        random.Random(0).shuffle(train)
        cut = int(len(train) * 0.85)
        detector = PersonalDetector(
            args.slot_types.split(","),
            target_recall=args.target_recall,
            encoder=args.encoder,
            epochs=args.epochs,
        )
        detector.fit(train[:cut], train[cut:]).save(args.out)
    except VoxloopError as e:
        print(f"voxloop: error: {e}", file=sys.stderr)
        return 1
    recall = detector.heldout_recall_
    recall_text = "n/a (no personal span held out)" if recall is None else f"{recall:.3f}"
    print(f"saved {args.out}: threshold {detector.threshold_:.4g}, held-out span recall "
          f"{recall_text}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
