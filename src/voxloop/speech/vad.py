"""Voice activity detection with webrtcvad (its model ships in ``webrtcvad-wheels``).

Used to skip the recognizer on silence and to trim leading/trailing silence.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voxloop.speech.audio import SAMPLE_RATE, to_pcm16

__all__ = ["speech_frames", "speech_span"]

FRAME_MS = 30


def speech_frames(
    samples: npt.NDArray[np.floating], *, aggressiveness: int = 2
) -> npt.NDArray[np.bool_]:
    """One flag per 30 ms frame of 16 kHz audio: is it speech? (A partial last frame is
    ignored.) Near-silent frames (RMS below -50 dBFS) are never speech."""
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)
    n = SAMPLE_RATE * FRAME_MS // 1000
    frames = len(samples) // n
    flags = np.zeros(frames, dtype=bool)
    pcm = to_pcm16(samples[: frames * n])
    for i in range(frames):
        chunk = samples[i * n : (i + 1) * n]
        if float(np.sqrt(np.mean(np.square(chunk)))) < 0.003:
            continue
        flags[i] = vad.is_speech(pcm[2 * i * n : 2 * (i + 1) * n], SAMPLE_RATE)
    return flags


def speech_span(
    samples: npt.NDArray[np.floating], *, pad_ms: int = 300, min_speech_ms: int = 90
) -> tuple[int, int] | None:
    """Sample range from the first to the last speech frame, padded by ``pad_ms``; None when
    there is less than ``min_speech_ms`` of speech in all (silence, noise clicks)."""
    flags = speech_frames(samples)
    if flags.sum() * FRAME_MS < min_speech_ms:
        return None
    n = SAMPLE_RATE * FRAME_MS // 1000
    idx = np.flatnonzero(flags)
    pad = SAMPLE_RATE * pad_ms // 1000
    return max(0, int(idx[0]) * n - pad), min(len(samples), (int(idx[-1]) + 1) * n + pad)
