"""Domain biasing from the training utterances: what the assistant expects to hear.

`Bias.from_texts` builds, from the same utterances the NLU was trained on:

- ``prompt`` — Whisper's initial prompt: a few of the most typical training utterances
  (lower case, comma-separated), which steers tiny models toward the domain's words and
  toward writing numbers as words;
- ``hotwords`` — the domain's most frequent content words (faster-whisper ``hotwords``);
- ``lm`` — a word trigram model (`DomainLM`) that scores n-best hypotheses (`rescore`);
- `Bias.arpa_file` — the same utterances as an ARPA LM for pocketsphinx.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from voxloop.speech.normalize import spoken_form

__all__ = ["Bias", "DomainLM"]

_STOP = frozenset(
    "a an the to of for in on at me my i you is it and or be do please what can will with "
    "this that are from about up set".split()
)


@dataclass
class DomainLM:
    """Interpolated absolute-discounting word trigram (discount 0.75) over spoken forms.

    ``logprob(text)`` is the natural-log probability of the sentence including its end;
    unseen words get a floor probability from a uniform share of the unigram mass.
    """

    discount: float = 0.75
    unigrams: Counter[str] = field(default_factory=Counter)
    bigrams: Counter[tuple[str, str]] = field(default_factory=Counter)
    trigrams: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    _context1: Counter[str] = field(default_factory=Counter)
    _context2: Counter[tuple[str, str]] = field(default_factory=Counter)
    _follow1: Counter[str] = field(default_factory=Counter)
    _follow2: Counter[tuple[str, str]] = field(default_factory=Counter)
    _total: int = 0

    @classmethod
    def fit(cls, texts: Iterable[str]) -> DomainLM:
        lm = cls()
        for text in texts:
            words = ["<s>", "<s>", *spoken_form(text).split(), "</s>"]
            for i in range(2, len(words)):
                lm.unigrams[words[i]] += 1
                lm.bigrams[(words[i - 1], words[i])] += 1
                lm.trigrams[(words[i - 2], words[i - 1], words[i])] += 1
        for (a, _), _n in lm.bigrams.items():
            lm._context1[a] += _n
            lm._follow1[a] += 1
        for (a, b, _), _n in lm.trigrams.items():
            lm._context2[(a, b)] += _n
            lm._follow2[(a, b)] += 1
        lm._total = sum(lm.unigrams.values())
        return lm

    def _p1(self, w: str) -> float:
        vocab = len(self.unigrams) + 1
        return (self.unigrams.get(w, 0) + 0.5) / (self._total + 0.5 * vocab)

    def _p2(self, a: str, w: str) -> float:
        n = self._context1.get(a, 0)
        if n == 0:
            return self._p1(w)
        d = self.discount
        lam = d * self._follow1[a] / n
        return max(self.bigrams.get((a, w), 0) - d, 0) / n + lam * self._p1(w)

    def _p3(self, a: str, b: str, w: str) -> float:
        n = self._context2.get((a, b), 0)
        if n == 0:
            return self._p2(b, w)
        d = self.discount
        lam = d * self._follow2[(a, b)] / n
        return max(self.trigrams.get((a, b, w), 0) - d, 0) / n + lam * self._p2(b, w)

    def logprob(self, text: str) -> float:
        words = ["<s>", "<s>", *text.split(), "</s>"]
        return sum(
            math.log(self._p3(words[i - 2], words[i - 1], words[i])) for i in range(2, len(words))
        )


@dataclass
class Bias:
    """Everything a recognizer can be biased with, built from training utterances."""

    prompt: str
    hotwords: str
    lm: DomainLM
    texts: Sequence[str]
    _arpa: Path | None = field(default=None, repr=False)

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], *, prompt_utterances: int = 12, hotwords: int = 30
    ) -> Bias:
        """Build the bias from training texts (order does not matter; duplicates count)."""
        spoken = [s for s in (spoken_form(t) for t in texts) if s]
        lm = DomainLM.fit(spoken)
        words = Counter(w for s in spoken for w in s.split() if w not in _STOP and len(w) > 2)

        # The most typical utterances: short ones made of frequent words, all different.
        def typicality(s: str) -> float:
            ws = s.split()
            return sum(math.log(words.get(w, 0) + 1) for w in ws) / len(ws) - 0.15 * len(ws)

        chosen: list[str] = []
        used: set[str] = set()
        for s in sorted(set(spoken), key=lambda s: (-typicality(s), s)):
            key = " ".join(s.split()[:2])  # vary how they start
            if key in used or len(s.split()) < 3:
                continue
            used.add(key)
            chosen.append(s)
            if len(chosen) == prompt_utterances:
                break
        prompt = ", ".join(chosen)
        top = " ".join(w for w, _ in words.most_common(hotwords))
        return cls(prompt=prompt, hotwords=top, lm=lm, texts=spoken)

    def arpa_file(self) -> Path:
        """The training texts as an ARPA trigram LM (pocketsphinx's builder), written once to
        a temporary directory."""
        if self._arpa is None:
            from pocketsphinx.lm import ArpaBoLM

            lm = ArpaBoLM(text="\n".join(self.texts), case="lower", add_start=True)
            lm.compute()
            folder = Path(tempfile.mkdtemp(prefix="voxloop-lm-"))
            self._arpa = folder / "domain.arpa"
            lm.write_file(str(self._arpa))
        return self._arpa
