"""Spoken test sets by synthesis with Debian's ``espeak-ng`` (GPL-3.0 program, run as a
separate process: nothing of it is linked into voxloop).

Voices and rates rotate over the utterances, so a test set is not one speaker at one speed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from voxloop.errors import ConfigError
from voxloop.speech.audio import decode_audio

__all__ = ["RATES", "VOICES", "speak", "voice_for"]

VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp", "en-us+m3")
"""espeak-ng voices used in turn: American and British, male and female variants."""
RATES = (150, 170, 135, 185)
"""Words per minute used in turn (espeak-ng's default is 175)."""


def voice_for(
    index: int, voices: Sequence[str] = VOICES, rates: Sequence[int] = RATES
) -> tuple[str, int]:
    """The (voice, rate) of the ``index``-th utterance of a test set."""
    return voices[index % len(voices)], rates[index % len(rates)]


def speak(text: str, *, voice: str = "en-us", rate: int = 160) -> npt.NDArray[np.float32]:
    """``text`` spoken by espeak-ng → 16 kHz mono float32 samples."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError(
            "espeak-ng is not installed (Debian: apt-get install espeak-ng)", key="--speech"
        )
    done = subprocess.run(
        [exe, "-v", voice, "-s", str(rate), "--stdout", text],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode(errors="replace").strip()
        raise ConfigError(f"espeak-ng failed for voice {voice!r}: {message}", key="--speech")
    return decode_audio(done.stdout, max_seconds=120, name=f"espeak-ng {voice}")
