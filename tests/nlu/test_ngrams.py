"""The fast n-gram transform gives what scikit-learn's TfidfVectorizer gives."""

from pathlib import Path

import numpy as np

from voxloop.data import load_corpus
from voxloop.nlu.ngrams import NgramFeatures, _vectorizers


def test_transform_equals_scikit_learn_on_real_text(datasets: Path) -> None:
    corpus = load_corpus(f"hwu64:{datasets / 'hwu64'}")
    train = [u.text for u in corpus.split("train")[:2000]]
    test = [u.text for u in corpus.split("test")[:300]] + ["", "zzzz qqqq", "今週は午前"]
    ours = NgramFeatures().fit(train).transform(test).toarray()
    reference = np.hstack([v.fit(train).transform(test).toarray() for v in _vectorizers()])
    np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_state_round_trip_gives_the_same_rows() -> None:
    texts = ["turn on the light", "set a timer for five minutes", "what's the weather"]
    features = NgramFeatures().fit(texts)
    again = NgramFeatures.from_state(*features.state())
    assert (features.transform(texts) != again.transform(texts)).nnz == 0
