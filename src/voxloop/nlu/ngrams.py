"""TF-IDF word and character n-gram features, with a transform fast enough for serving.

Fitting uses scikit-learn's ``TfidfVectorizer`` (vocabulary and IDF weights); transforming
is done here in plain Python, because scikit-learn's input validation costs about a
millisecond per call — more than the features themselves for the one-utterance requests a
voice assistant serves — and because a server then never imports scikit-learn. Each block
(words, characters) is sublinear-TF × IDF and L2-normalised, exactly as
``TfidfVectorizer.transform`` gives it (tested).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from voxloop.nlu.tokenize import fold, tokenize

__all__ = ["NgramFeatures", "char_wb_ngrams", "word_ngrams"]


def word_ngrams(text: str) -> list[str]:
    """Word 1–3-grams of ``text`` (`fold`-ed tokens)."""
    words = [fold(t) for t, _, _ in tokenize(text)]
    grams = list(words)
    grams += [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    grams += [f"{a} {b} {c}" for a, b, c in zip(words, words[1:], words[2:], strict=False)]
    return grams


def char_wb_ngrams(text: str, min_n: int = 1, max_n: int = 5) -> list[str]:
    """Character n-grams inside space-padded words (scikit-learn's ``char_wb``, over the
    `fold`-ed text)."""
    grams: list[str] = []
    for word in fold(text).split():
        w = f" {word} "
        for n in range(min_n, max_n + 1):
            if len(w) <= n:  # a short word counts once, whole
                grams.append(w)
                break
            grams.extend(w[i : i + n] for i in range(len(w) - n + 1))
    return grams


_LOG = [0.0] + [math.log(c) for c in range(1, 64)]

_ANALYZERS: tuple[Callable[[str], list[str]], ...] = (word_ngrams, char_wb_ngrams)


class NgramFeatures:
    """Word 1–3-grams and character 1–5-grams (within word boundaries), TF-IDF weighted."""

    def __init__(self) -> None:
        self.vocabularies: list[dict[str, int]] = []
        self.idfs: list[np.ndarray] = []

    @property
    def n_features(self) -> int:
        return sum(len(v) for v in self.vocabularies)

    def fit(self, texts: Sequence[str]) -> NgramFeatures:
        """Learn the vocabularies and IDF weights from ``texts``."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vocabularies, self.idfs = [], []
        for analyzer in _ANALYZERS:
            v = TfidfVectorizer(analyzer=analyzer, sublinear_tf=True).fit(texts)
            self.vocabularies.append(dict(v.vocabulary_))
            self.idfs.append(np.asarray(v.idf_, dtype=np.float64))
        return self

    @classmethod
    def from_state(
        cls, vocabularies: Sequence[Sequence[str]], idfs: Sequence[np.ndarray]
    ) -> NgramFeatures:
        """Rebuild from terms (in column order) and IDF weights, as `state` gives them."""
        features = cls()
        features.vocabularies = [{t: j for j, t in enumerate(terms)} for terms in vocabularies]
        features.idfs = [np.asarray(idf, dtype=np.float64) for idf in idfs]
        if [len(v) for v in features.vocabularies] != [len(i) for i in features.idfs]:
            raise ValueError("vocabulary and IDF sizes differ")
        return features

    def state(self) -> tuple[list[list[str]], list[np.ndarray]]:
        """Terms of each block in column order, and the IDF weights."""
        terms = [sorted(v, key=v.__getitem__) for v in self.vocabularies]
        return terms, list(self.idfs)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """One L2-normalised row per text (float32 CSR)."""
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        blocks = list(zip(_ANALYZERS, self.vocabularies, self.idfs, strict=True))
        for text in texts:
            offset = 0
            for analyze, vocabulary, idf in blocks:
                known = [
                    (j, c)
                    for gram, c in Counter(analyze(text)).items()
                    if (j := vocabulary.get(gram)) is not None
                ]
                if known:
                    weights = [
                        (1.0 + _LOG[c] if c < 64 else 1.0 + math.log(c)) * idf[j] for j, c in known
                    ]
                    norm = math.sqrt(sum(w * w for w in weights))
                    indices.extend(j + offset for j, _ in known)
                    data.extend(w / norm for w in weights)
                offset += len(vocabulary)
            indptr.append(len(indices))
        return sp.csr_matrix(
            (np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int32), indptr),
            shape=(len(texts), self.n_features),
        )
