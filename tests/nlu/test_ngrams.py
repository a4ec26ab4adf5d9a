"""The fast n-gram transform gives what scikit-learn's TfidfVectorizer gives."""

from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from voxloop.data import load_corpus
from voxloop.nlu.ngrams import NgramFeatures, word_ngrams


def _reference() -> list[TfidfVectorizer]:
    """What the features must equal: scikit-learn's own vectorizers."""
    return [
        TfidfVectorizer(analyzer=word_ngrams, sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True),
    ]


def test_transform_equals_scikit_learn_on_real_text(datasets: Path) -> None:
    corpus = load_corpus(f"hwu64:{datasets / 'hwu64'}")
    train = [u.text for u in corpus.split("train")[:2000]]
    test = [u.text for u in corpus.split("test")[:300]] + [
        "",
        "zzzz qqqq",
        "今週は午前",
        "a  b\tCD",
    ]
    ours = NgramFeatures().fit(train).transform(test).toarray()
    reference = np.hstack([v.fit(train).transform(test).toarray() for v in _reference()])
    np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_state_round_trip_gives_the_same_rows() -> None:
    texts = ["turn on the light", "set a timer for five minutes", "what's the weather"]
    features = NgramFeatures().fit(texts)
    again = NgramFeatures.from_state(*features.state())
    assert (features.transform(texts) != again.transform(texts)).nnz == 0
