"""Decoding and resampling, and what bad audio gets: a clear error, bounded memory."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import wav_bytes
from voxloop.speech.audio import AudioError, decode_audio, pcm_to_float, to_pcm16
from voxloop.speech.vad import speech_span


def tone(seconds: float, rate: int, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100])
def test_any_format_and_rate_becomes_16k_mono(fmt: str, rate: int) -> None:
    stereo = np.stack([tone(1.0, rate), tone(1.0, rate)], axis=1)
    out = decode_audio(wav_bytes(stereo, rate, fmt))
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 16000) <= 2
    # the 440 Hz tone survives resampling: its spectrum peaks at 440 Hz
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16000 / len(out) - 440) < 5


def test_empty_body_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="empty"):
        decode_audio(b"")


def test_garbage_is_not_readable_audio() -> None:
    with pytest.raises(AudioError, match="not readable as WAV, FLAC or OGG"):
        decode_audio(b"RIFF\x00\x00garbage" * 10, name="upload.wav")


def test_truncated_wav_decodes_what_is_there_or_says_why() -> None:
    data = wav_bytes(tone(2.0, 16000))
    for cut in (10, 44, 1000, len(data) // 2 + 1):
        try:
            out = decode_audio(data[:cut])
        except AudioError as e:
            assert "audio" in str(e)
        else:
            assert 0 < len(out) <= 32000


def test_ten_minutes_is_refused_from_the_header_without_decoding() -> None:
    data = wav_bytes(np.zeros(600 * 8000, np.float32), 8000)
    started = time.perf_counter()
    with pytest.raises(AudioError, match="600.0 s long; the limit is 30 s"):
        decode_audio(data, max_seconds=30)
    assert time.perf_counter() - started < 0.5


def test_header_only_wav_has_no_samples() -> None:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(0, np.float32), 16000, format="WAV")
    with pytest.raises(AudioError, match="no samples"):
        decode_audio(buf.getvalue())


def test_pcm_round_trip_and_truncated_frame() -> None:
    x = tone(0.5, 16000)
    pcm = to_pcm16(x)
    back = pcm_to_float(pcm + b"\x01", rate=16000)  # a stray byte is dropped
    assert np.allclose(back, x, atol=1e-4)
    assert len(pcm_to_float(to_pcm16(tone(0.5, 48000)), rate=48000)) == 8000
    with pytest.raises(AudioError, match="width"):
        pcm_to_float(pcm, rate=16000, width=3)


def test_vad_finds_no_speech_in_silence_and_finds_the_spoken_command(spoken) -> None:  # type: ignore[no-untyped-def]
    assert speech_span(np.zeros(32000, np.float32)) is None
    rng = np.random.default_rng(0)
    assert speech_span((rng.normal(0, 0.001, 32000)).astype(np.float32)) is None
    _, samples = spoken[0]
    padded = np.concatenate([np.zeros(16000, np.float32), samples, np.zeros(16000, np.float32)])
    span = speech_span(padded)
    assert span is not None
    assert 16000 - 8000 <= span[0] <= 16000 + 4000
    assert span[1] >= 16000 + len(samples) - 8000
