"""Fixtures of the speech tests: a few utterances spoken by espeak-ng, a small model."""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxloop.data import load_corpus
from voxloop.nlu.classical import ClassicalParser
from voxloop.speech.synth import speak

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))  # servers.py

COMMANDS = [
    "turn off the kitchen light",
    "what is the weather like today",
    "set a timer for five minutes",
]


@pytest.fixture(scope="session")
def spoken() -> list[tuple[str, np.ndarray]]:
    """Three commands spoken by two espeak-ng voices (16 kHz mono float32)."""
    voices = ["en-us", "en-gb", "en-us+f3"]
    return [(t, speak(t, voice=v, rate=150)) for t, v in zip(COMMANDS, voices, strict=True)]


@pytest.fixture(scope="session")
def whisper():  # type: ignore[no-untyped-def]
    from voxloop.speech.recognizers import WhisperRecognizer

    return WhisperRecognizer(cpu_threads=1)


@pytest.fixture(scope="session")
def hass_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Home Assistant model (English), as the serving tests train it."""
    train = list(load_corpus("hass:en").split("train"))
    random.Random(0).shuffle(train)
    path = tmp_path_factory.mktemp("speech-model") / "hass"
    ClassicalParser(
        sentence_encoder="none", crf_epochs=10, gazetteer_folds=2, threshold=0.2, seed=0
    ).fit(train[:400]).save(path)
    return path


def wav_bytes(samples: np.ndarray, rate: int = 16000, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt)
    return buf.getvalue()
