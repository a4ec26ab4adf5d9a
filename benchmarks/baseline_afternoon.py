"""The reference the classical model must beat: "an afternoon's" TF-IDF + logistic
regression for intents and an L-BFGS CRF with the textbook word-window features for slots.

It lives in benchmarks/ only, so the same run measures voxloop and its baseline side by
side on the same machine.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pycrfsuite
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union

from voxloop.nlu.slot_tagger import bio_tags, spans_from_tags
from voxloop.nlu.tokenize import tokenize
from voxloop.schema import IntentScore, Parse, Utterance


def _token_features(words: Sequence[str]) -> list[list[str]]:
    out = []
    for i, w in enumerate(words):
        f = ["bias", "w=" + w.lower(), "suf3=" + w[-3:], "pre3=" + w[:3], f"digit={w.isdigit()}"]
        f += ["w-1=" + (words[i - 1].lower() if i > 0 else "BOS")]
        f += ["w+1=" + (words[i + 1].lower() if i + 1 < len(words) else "EOS")]
        out.append(f)
    return out


class AfternoonBaseline:
    """TF-IDF (words 1-2, chars 2-5) + logistic regression; CRF (L-BFGS, 100 iterations)."""

    def fit(self, train: Sequence[Utterance]) -> AfternoonBaseline:
        started = time.perf_counter()
        self.intents = make_pipeline(
            make_union(
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            ),
            LogisticRegression(C=10, max_iter=1000),
        ).fit([u.text for u in train], [u.intent for u in train])
        trainer = pycrfsuite.Trainer(algorithm="lbfgs", verbose=False)
        trainer.set_params({"c1": 0.1, "c2": 0.01, "max_iterations": 100})
        for u in train:
            tokens = tokenize(u.text)
            trainer.append(_token_features([t for t, _, _ in tokens]), bio_tags(tokens, u.slots))
        self._dir = tempfile.TemporaryDirectory()
        path = str(Path(self._dir.name) / "crf")
        trainer.train(path)
        self.tagger = pycrfsuite.Tagger()
        self.tagger.open(path)
        self.training_seconds = time.perf_counter() - started
        return self

    def parse(self, texts: Sequence[str]) -> list[Parse]:
        probabilities = self.intents.predict_proba(list(texts))
        classes = self.intents.classes_
        out = []
        for text, row in zip(texts, probabilities, strict=True):
            best = int(row.argmax())
            tokens = tokenize(text)
            tags = self.tagger.tag(_token_features([t for t, _, _ in tokens])) if tokens else []
            out.append(
                Parse(
                    text,
                    str(classes[best]),
                    float(row[best]),
                    (IntentScore(str(classes[best]), float(row[best])),),
                    spans_from_tags(text, tokens, tags),
                )
            )
        return out
