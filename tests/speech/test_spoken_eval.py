"""``voxloop eval --speech``: synthesise, recognise, parse, score — end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voxloop.cli import main


def test_eval_speech_reports_wer_and_understanding_on_recognised_vs_gold(
    hass_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "eval",
            "--model",
            str(hass_model),
            "--data",
            "hass:en",
            "--speech",
            "--speech-bias",
            "hass:en",
            "--limit",
            "5",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 5 and out["recognizer"] == "whisper"
    assert 0.0 <= out["wer"] <= 0.5 and 0.0 <= out["wer_unnormalized"] <= 1.0
    assert out["gold"]["wer"] == 0.0
    assert 0.0 < out["gold"]["intent_accuracy"] <= 1.0
    assert 0.0 <= out["recognized"]["intent_accuracy"] <= 1.0
    assert out["picked"] is not None and out["weights"] == {"lm": 0.2, "nlu": 0.2}
    assert out["audio_seconds"] > 5 and out["real_time_factor"] > 0
    assert set(out["recognized"]["slots"]) == {"span_f1", "word_f1", "char_f1", "slu_f1"}


def test_eval_speech_bad_recognizer_is_one_line(
    hass_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "--model", str(hass_model), "--data", "hass:en", "--speech"]
    assert main([*args, "--recognizer", "nope"]) == 1
    assert "--recognizer: unknown recognizer 'nope'" in capsys.readouterr().err
    assert main([*args, "--rescore", "x"]) == 1
    assert "--rescore" in capsys.readouterr().err
