"""Recognizers on real synthesised speech: n-best lists, silence, biasing, specs."""

from __future__ import annotations

import numpy as np
import pytest

from voxloop.cli import main
from voxloop.data import load_corpus
from voxloop.errors import ConfigError, ModelFormatError
from voxloop.speech.bias import Bias
from voxloop.speech.recognizers import (
    PocketsphinxRecognizer,
    Recognizer,
    WhisperRecognizer,
    load_recognizer,
)
from voxloop.speech.wer import word_error_rate


def test_whisper_transcribes_spoken_commands(whisper: WhisperRecognizer, spoken) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(whisper, Recognizer)
    texts = [t for t, _ in spoken]
    results = [whisper.recognize(s) for _, s in spoken]
    assert word_error_rate(texts, [r.text for r in results]) <= 0.25
    for r in results:
        scores = [h.score for h in r.hypotheses]
        assert 1 <= len(scores) <= 5 and scores == sorted(scores, reverse=True)
        assert len({h.text for h in r.hypotheses}) == len(r.hypotheses)  # no duplicates
        assert r.text == r.text.lower() and r.audio_seconds > 1 and r.seconds > 0


def test_silence_is_an_empty_transcript_without_running_the_model(
    whisper: WhisperRecognizer,
) -> None:
    r = whisper.recognize(np.zeros(16000 * 3, np.float32))
    assert r.hypotheses == () and r.text == "" and r.seconds < 0.5


def test_whisper_prompt_biases_toward_the_domain(spoken) -> None:  # type: ignore[no-untyped-def]
    bias = Bias.from_texts(["turn off the kitchen light", "set a timer for five minutes"] * 3)
    biased = load_recognizer("whisper", bias=bias)
    assert isinstance(biased, WhisperRecognizer) and "kitchen" in (biased.prompt or "")
    text, samples = spoken[0]
    assert biased.recognize(samples).text == text


def test_pocketsphinx_hears_the_commands_better_with_a_domain_lm(spoken) -> None:  # type: ignore[no-untyped-def]
    spoken = spoken[:2]  # pocketsphinx's general LM is slow: two commands are enough
    texts = [t for t, _ in spoken]
    plain = PocketsphinxRecognizer()
    train = [u.text for u in load_corpus("hass:en").split("train")]
    domain = load_recognizer("pocketsphinx", bias=Bias.from_texts(train + texts))
    wer_plain = word_error_rate(texts, [plain.recognize(s).text for _, s in spoken])
    wer_domain = word_error_rate(texts, [domain.recognize(s).text for _, s in spoken])
    assert wer_domain < wer_plain and wer_domain <= 0.7


def test_bad_specs_name_the_option(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="--recognizer: unknown recognizer 'vosk2'"):
        load_recognizer("vosk2")
    with pytest.raises(ConfigError, match="is not a directory"):
        load_recognizer(f"whisper:{tmp_path}/missing")
    with pytest.raises(ModelFormatError, match="no model.bin"):
        load_recognizer(f"whisper:{tmp_path}")
    with pytest.raises(ModelFormatError, match="not a pocketsphinx model"):
        load_recognizer(f"pocketsphinx:{tmp_path}")


@pytest.mark.parametrize("command", ["serve", "eval"])
def test_recognizer_help_lists_every_spec_load_recognizer_accepts(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        load_recognizer("nope")
    accepted = info.value.problem.partition("(")[2].rstrip(")").split(", ")
    assert "vosk:DIR" in accepted
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    recognizer_help = help_text.partition("--recognizer SPEC ")[2].partition(" --")[0]
    assert [spec for spec in accepted if spec not in recognizer_help] == []
