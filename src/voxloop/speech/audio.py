"""Audio in: WAV/FLAC/OGG bytes or files, or raw PCM → 16 kHz mono float32.

Every decoder checks the length *before* reading samples, so a 10-minute file costs a
header read, not 10 minutes of samples in memory. Problems raise `AudioError`, which
names what is wrong and where.
"""

from __future__ import annotations

import io
from math import gcd
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxloop.errors import DataError

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "decode_audio",
    "pcm_to_float",
    "resample",
    "to_pcm16",
]

SAMPLE_RATE = 16_000
"""What every recognizer takes: 16 kHz mono float32 in [-1, 1]."""

Samples = npt.NDArray[np.float32]


class AudioError(DataError):
    """Audio that cannot be used: unreadable, empty, too long, or of a wrong format."""


def resample(samples: npt.NDArray[np.floating], rate: int, target: int = SAMPLE_RATE) -> Samples:
    """Polyphase resampling (scipy) from ``rate`` to ``target`` Hz."""
    if rate <= 0:
        raise AudioError(f"sample rate must be positive, got {rate}")
    if rate == target or samples.size == 0:
        return np.ascontiguousarray(samples, dtype=np.float32)
    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return np.ascontiguousarray(resample_poly(samples, target // g, rate // g), dtype=np.float32)


def _mono(samples: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def decode_audio(
    source: bytes | str | Path, *, max_seconds: float = 30.0, name: str | None = None
) -> Samples:
    """A WAV, FLAC or OGG file (path or bytes) → 16 kHz mono float32 samples.

    Raises `AudioError` for empty or unreadable data and for audio longer than
    ``max_seconds`` (checked from the header, before decoding). ``name`` labels errors.
    """
    import soundfile as sf

    where = name or (str(source) if not isinstance(source, bytes) else "audio")
    if isinstance(source, bytes):
        if not source:
            raise AudioError("no audio: the body is empty", file=where)
        handle: io.BytesIO | str = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise AudioError("no such file", file=where)
        handle = str(path)
    try:
        with sf.SoundFile(handle) as f:
            rate, frames = f.samplerate, f.frames
            if frames <= 0 or frames > 1 << 40:  # unknown/absurd length (a truncated stream)
                data = _read_bounded(f, rate, max_seconds, where)
            else:
                _check_length(frames / rate, max_seconds, where)
                data = f.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        why = e.error_string if isinstance(e, sf.LibsndfileError) else str(e)  # no file repr
        raise AudioError(f"not readable as WAV, FLAC or OGG audio: {why}", file=where) from None
    samples = _mono(data)
    if samples.size == 0:
        raise AudioError("no audio: the file has no samples", file=where)
    if not np.all(np.isfinite(samples)):
        raise AudioError("the audio has NaN or infinite samples", file=where)
    return resample(samples, rate)


def _read_bounded(f: object, rate: int, max_seconds: float, where: str) -> npt.NDArray[np.float32]:
    """Read a stream of unknown length block by block, stopping past ``max_seconds``."""
    blocks: list[npt.NDArray[np.float32]] = []
    total, limit = 0, int(max_seconds * rate) + 1
    for block in f.blocks(blocksize=rate, dtype="float32", always_2d=True):  # type: ignore[attr-defined]
        total += len(block)
        if total > limit:
            _check_length(total / rate, max_seconds, where)
        blocks.append(block)
    return np.concatenate(blocks) if blocks else np.zeros((0, 1), np.float32)


def _check_length(seconds: float, max_seconds: float, where: str) -> None:
    if seconds > max_seconds:
        raise AudioError(
            f"audio is {seconds:.1f} s long; the limit is {max_seconds:g} s", file=where
        )


def pcm_to_float(
    pcm: bytes, *, rate: int, width: int = 2, channels: int = 1, name: str = "audio"
) -> Samples:
    """Raw little-endian PCM (``width`` 1, 2 or 4 bytes) → 16 kHz mono float32."""
    if width not in (1, 2, 4):
        raise AudioError(f"sample width must be 1, 2 or 4 bytes, got {width}", file=name)
    if channels < 1:
        raise AudioError(f"channels must be at least 1, got {channels}", file=name)
    frame = width * channels
    usable = len(pcm) - len(pcm) % frame  # a truncated last frame is dropped
    if width == 1:
        data = (np.frombuffer(pcm[:usable], np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        data = np.frombuffer(pcm[:usable], "<i2").astype(np.float32) / 32768
    else:
        data = np.frombuffer(pcm[:usable], "<i4").astype(np.float32) / 2147483648
    return resample(_mono(data.reshape(-1, channels)), rate)


def to_pcm16(samples: npt.NDArray[np.floating]) -> bytes:
    """Float samples → 16-bit little-endian PCM bytes (clipped to [-1, 1])."""
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
