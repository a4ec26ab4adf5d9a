"""Serving a trained transformer parser with onnxruntime, tokenizers and numpy (no torch).

A model directory written by `voxloop.nlu.transformer.TransformerParser` holds:

- ``model.onnx`` (fp32) and ``model.int8.onnx`` (dynamic int8 quantisation): inputs
  ``input_ids`` and ``attention_mask`` (int64, ``[batch, tokens]``), outputs
  ``intent_logits`` (``[batch, intents]``) and ``slot_logits`` (``[batch, tokens, tags]``);
- ``tokenizer.json``: the encoder's WordPiece tokenizer (the ``tokenizers`` format);
- ``labels.json``: intent names, BIO slot tags, which slot labels each intent was seen
  with in training, and the tag bigram log-probabilities of the training set;
- ``manifest.json``: format version, ``"model_type": "transformer"``, the temperature,
  out-of-scope threshold and bigram weight chosen on dev, domains, locales,
  hyperparameters and metrics.

Slot tags are predicted per sub-word; the tag of a word (a `voxloop.nlu.tokenize` token) is
the tag of its first sub-word, and BIO chunks of words become character spans with
`spans_from_tags`, so a span's offsets always index the original text exactly. The word
tags are one Viterbi path: BIO rules, plus the training set's tag bigrams times a weight
chosen on dev (0 turns them off; older models have none).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, Self

import numpy as np
import numpy.typing as npt

from voxloop.errors import ModelFormatError
from voxloop.nlu.base import MANIFEST, read_manifest
from voxloop.nlu.slot_tagger import spans_from_tags
from voxloop.nlu.tokenize import Token, tokenize
from voxloop.schema import DEFAULT_LOCALE, IntentScore, Parse

__all__ = [
    "FP32_FILE",
    "INT8_FILE",
    "LABELS_FILE",
    "MODEL_TYPE",
    "OUTPUTS",
    "TOKENIZER_FILE",
    "Decoder",
    "OnnxParser",
    "first_subwords",
    "load_tokenizer",
    "log_softmax",
    "shortest_first",
    "softmax",
    "tag_bigrams",
    "viterbi",
]

MODEL_TYPE = "transformer"
JOINT_CANDIDATES = 3
"""How many of the most probable intents joint decoding rescores by their slot paths."""
JOINT_MIN_PROBABILITY = 0.01
"""Only intents at least this probable are rescored (most texts then need one path)."""
_MAX_LATTICES = 10_000
"""Lattices a decoder keeps (per intent and set of unseen tags) before starting afresh."""
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
MAX_POSITIONS = 512
"""The encoder's position embeddings: longer inputs are cut (their tail gets no slots)."""

Precision = Literal["int8", "fp32"]
OUTPUTS = ["intent_logits", "slot_logits"]
"""The ONNX model's outputs, in the order `OnnxParser` reads them."""


def load_tokenizer(path: Path, max_length: int = MAX_POSITIONS) -> Any:
    """A `tokenizers.Tokenizer` from ``tokenizer.json``: truncating, never padding."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as e:  # the tokenizers library raises a bare Exception
        raise ModelFormatError(f"{path}: unreadable tokenizer ({e})") from None
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


def softmax(x: npt.NDArray[np.float32], axis: int = -1) -> npt.NDArray[np.float64]:
    """A numerically stable softmax in float64."""
    z = x.astype(np.float64)
    z -= z.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def log_softmax(x: npt.NDArray[np.float32], axis: int = -1) -> npt.NDArray[np.float64]:
    """A numerically stable log-softmax in float64 (``-inf`` entries stay ``-inf``)."""
    z = x.astype(np.float64)
    z -= z.max(axis=axis, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return z


def viterbi(
    scores: npt.NDArray[np.float64],
    transitions: npt.NDArray[np.float64],
    start: npt.NDArray[np.float64],
) -> list[int]:
    """The best tag path: ``scores[i, t]`` per position, ``transitions[s, t]``, ``start[t]``."""
    return viterbi_stacked(scores[None], transitions[None], start[None])[0].tolist()


def viterbi_stacked(
    scores: npt.NDArray[np.float64],
    transitions: npt.NDArray[np.float64],
    start: npt.NDArray[np.float64],
) -> npt.NDArray[np.int64]:
    """`viterbi` for K lattices at once (``scores[k, i, t]``, ``transitions[k, s, t]``,
    ``start[k, t]``; pad narrower lattices with -inf): the paths, ``[K, positions]``."""
    k, n, width = scores.shape
    best = scores[:, 0] + start
    back = np.zeros((k, n, width), dtype=np.int64)
    for i in range(1, n):
        candidates = best[:, :, None] + transitions
        back[:, i] = candidates.argmax(axis=1)
        best = candidates.max(axis=1) + scores[:, i]
    paths = np.zeros((k, n), dtype=np.int64)
    paths[:, -1] = best.argmax(axis=1)
    rows = np.arange(k)
    for i in range(n - 1, 0, -1):
        paths[:, i - 1] = back[rows, i, paths[:, i]]
    return paths


def first_subwords(tokens: Sequence[Token], offsets: Sequence[tuple[int, int]]) -> list[int]:
    """For each token, the index of the first sub-word overlapping it (-1 when none).

    ``offsets`` are the sub-words' character offsets (special tokens are ``(0, 0)`` and
    never match). Both sequences are in text order, so one forward pass suffices.
    """
    out: list[int] = []
    j = 0
    n = len(offsets)
    for _, start, end in tokens:
        while j < n and (offsets[j][1] <= start or offsets[j][0] == offsets[j][1]):
            j += 1
        out.append(j if j < n and offsets[j][0] < end else -1)
    return out


def tag_bigrams(
    tags: Sequence[str], sequences: Iterable[Sequence[str]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Log P(tag | previous tag) ``[n, n]`` and log P(first tag) ``[n]``, counted over the
    word-level BIO ``sequences`` of a training set (add-one smoothed; unknown tags as "O")."""
    index = {t: i for i, t in enumerate(tags)}
    outside = index["O"]
    n = len(tags)
    pairs = np.ones((n, n))
    first = np.ones(n)
    for sequence in sequences:
        ids = [index.get(t, outside) for t in sequence]
        if ids:
            first[ids[0]] += 1
            np.add.at(pairs, (ids[:-1], ids[1:]), 1)
    return np.log(pairs / pairs.sum(1, keepdims=True)), np.log(first / first.sum())


def unseen_penalty(calibration: dict[str, Any]) -> float:
    """The saved ``unseen_penalty`` of a manifest's calibration: ``null`` or absent (models
    saved before it existed) is infinite, a tag never seen with the intent is forbidden."""
    value = calibration.get("unseen_penalty")
    return math.inf if value is None else float(value)


class _Lattice(NamedTuple):
    cols: npt.NDArray[np.int64]
    transitions: npt.NDArray[np.float64]
    start: npt.NDArray[np.float64]
    empty: npt.NDArray[np.float64]
    bias: npt.NDArray[np.float64]


class Decoder:
    """Turns the network's logits into `Parse` values (shared by training and serving)."""

    def __init__(
        self,
        *,
        intents: Sequence[str],
        tags: Sequence[str],
        allowed: npt.NDArray[np.bool_] | None,
        temperature: float,
        threshold: float,
        domains: dict[str, str],
        locale: str,
        ranking_size: int,
        bigrams: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None,
        bigram_weight: float = 0.0,
        joint_weight: float = 0.0,
        unseen_penalty: float = math.inf,
    ) -> None:
        if not unseen_penalty >= 0:
            raise ModelFormatError(f"unseen_penalty must be >= 0, not {unseen_penalty!r}")
        self.intents = list(intents)
        self.tags = list(tags)
        # A tag whose label an intent was never seen with in training: forbidden with that
        # intent (inf), allowed at a cost of ``unseen_penalty`` on its log-probability, or
        # as likely as any other (0: no constraint).
        self.allowed = None if unseen_penalty == 0 else allowed
        self.unseen_penalty = unseen_penalty
        self.temperature = temperature
        self.threshold = threshold
        self.domains = domains
        self.locale = locale
        self.ranking_size = ranking_size
        self.bigrams = bigrams
        self.joint_weight = joint_weight
        # BIO transitions: "I-x" only after "B-x" or "I-x", never first.
        n = len(self.tags)
        self._all = np.arange(n)
        self._outside = self.tags.index("O")
        self._start = np.array([-np.inf if t.startswith("I-") else 0.0 for t in self.tags])
        self._transitions = np.zeros((n, n))
        for j, t in enumerate(self.tags):
            if t.startswith("I-"):
                for i, u in enumerate(self.tags):
                    if u == "O" or u[2:] != t[2:]:
                        self._transitions[i, j] = -np.inf
        if bigrams is not None and bigram_weight:
            # Learned transitions (tag_bigrams of the training set) on top of the BIO rules:
            # the softmax head scores each word alone; these score the tag sequence.
            self._transitions = self._transitions + bigram_weight * bigrams[0]
            self._start = self._start + bigram_weight * bigrams[1]
        self._begin = np.array(
            [
                self.tags.index("B-" + t[2:]) if t.startswith("I-") else j
                for j, t in enumerate(self.tags)
            ]
        )
        self._lattices: dict[tuple[int, tuple[int, ...]], _Lattice] = {}

    def _lattice(self, intent: int, unseen: tuple[int, ...] = ()) -> _Lattice:
        """The lattice of ``intent``: the tags it was seen with (all without a constraint)
        and the ``unseen`` tags at a cost of ``unseen_penalty`` each; their transitions,
        start scores and costs (cached)."""
        key = (intent, unseen)
        lattice = self._lattices.get(key)
        if lattice is None:
            cols = self._all
            if self.allowed is not None:
                cols = np.union1d(np.flatnonzero(self.allowed[intent]), unseen).astype(np.int64)
            bias = np.where(np.isin(cols, unseen), -self.unseen_penalty, 0.0)
            empty = np.full(len(cols), -np.inf)
            empty[np.searchsorted(cols, self._outside)] = 0.0  # a word without pieces: "O"
            lattice = _Lattice(
                cols, self._transitions[np.ix_(cols, cols)], self._start[cols], empty, bias
            )
            if len(self._lattices) >= _MAX_LATTICES:
                self._lattices.clear()
            self._lattices[key] = lattice
        return lattice

    def _preferred(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.int64] | None:
        """The tags that are some word's most likely (with the "B-" an "I-" needs): the only
        tags an intent not seen with them needs in its lattice at a finite cost, since no
        other can outscore its own tags but through transitions. None when there is no
        finite cost."""
        if self.allowed is None or math.isinf(self.unseen_penalty) or not len(rows):
            return None
        best = np.unique(rows.argmax(axis=1))
        return np.union1d(best, self._begin[best])

    def _unseen(self, intent: int, preferred: npt.NDArray[np.int64] | None) -> tuple[int, ...]:
        """The ``preferred`` tags (`_preferred`) that ``intent`` was not seen with."""
        if preferred is None or self.allowed is None:
            return ()
        return tuple(preferred[~self.allowed[intent, preferred]].tolist())

    def _paths(
        self,
        firsts: Sequence[int],
        slot_logp: npt.NDArray[np.float64],
        intents: npt.NDArray[np.int64],
    ) -> tuple[list[int], list[_Lattice], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The best tag path of each of ``intents`` (its lattice: `_lattice`) over the words
        whose first sub-words are ``firsts``, in one stacked Viterbi pass: the head words
        (those with scores of their own), the lattices, the paths (columns of each
        lattice, ``[intents, heads]``) and the scores they were found in (``[intents,
        heads, columns]``, -inf past a lattice's width).

        ``slot_logp``: sub-words x all tags. Renormalising it over an intent's tags shifts
        each word's scores by a constant, so the path is the same either way.
        """
        heads = [w for w, j in enumerate(firsts) if w == 0 or j < 0 or j != firsts[w - 1]]
        pieces = np.array([firsts[w] for w in heads])
        rows = slot_logp[np.maximum(pieces, 0)]
        missing = pieces < 0
        preferred = self._preferred(rows[~missing])
        lattices = [self._lattice(int(k), self._unseen(int(k), preferred)) for k in intents]
        blocks = []
        for lattice in lattices:
            block = rows[:, lattice.cols] + lattice.bias
            block[missing] = lattice.empty  # a word without pieces: "O"
            blocks.append(block)
        if len(lattices) == 1:  # nothing to pad (most texts: one candidate)
            scores = blocks[0][None]
            paths = viterbi_stacked(scores, lattices[0].transitions[None], lattices[0].start[None])
            return heads, lattices, paths, scores
        width = max(len(lattice.cols) for lattice in lattices)
        scores = np.full((len(lattices), len(heads), width), -np.inf)
        transitions = np.full((len(lattices), width, width), -np.inf)
        start = np.full((len(lattices), width), -np.inf)
        for k, (lattice, block) in enumerate(zip(lattices, blocks, strict=True)):
            m = len(lattice.cols)
            scores[k, :, :m] = block
            transitions[k, :m, :m] = lattice.transitions
            start[k, :m] = lattice.start
        return heads, lattices, viterbi_stacked(scores, transitions, start), scores

    def _word_tags(
        self,
        firsts: Sequence[int],
        heads: Sequence[int],
        cols: npt.NDArray[np.int64],
        path: npt.NDArray[np.int64],
        scores: npt.NDArray[np.float64],
    ) -> tuple[list[str], list[float]]:
        """BIO tags and confidences of the words whose first sub-words are ``firsts``, from
        one lattice's path and scores (`_paths`).

        A word's scores are its first sub-word's; a word without sub-words is "O". A word
        inside the same sub-word as the word before it (one piece covering several
        characters of a script without spaces, e.g. "明天") has no scores of its own: it
        continues the previous word's slot ("I-" of its label) or stays "O". A tag's
        confidence is its probability among the tags the lattice allows.
        """
        probabilities = np.exp(scores)
        chosen = (probabilities[np.arange(len(path)), path] / probabilities.sum(axis=1)).tolist()
        tags: list[str] = []
        confidences: list[float] = []
        row = -1
        for w in range(len(firsts)):
            if row + 1 < len(heads) and heads[row + 1] == w:
                row += 1
                tags.append(self.tags[cols[path[row]]])
            else:
                tags.append("O" if tags[-1] == "O" else "I-" + tags[-1][2:])
            confidences.append(chosen[row])
        return tags, confidences

    def _joint(
        self,
        probabilities: npt.NDArray[np.float64],
        candidates: npt.NDArray[np.int64],
        path_scores: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """Intent probabilities reweighted by how well each candidate intent explains the
        words: ``p(intent) * exp(joint_weight * path score)``, the path score being the
        log-probability of the best tag path among the tags that intent allows; the other
        intents score as the worst candidate."""
        top = path_scores.max()
        weights = np.full(len(probabilities), self.joint_weight * (path_scores.min() - top))
        weights[candidates] = self.joint_weight * (path_scores - top)
        joint = probabilities * np.exp(weights)
        return joint / joint.sum()

    def decode(
        self,
        texts: Sequence[str],
        offsets: Sequence[Sequence[tuple[int, int]]],
        intent_logits: npt.NDArray[np.float32],
        slot_logits: npt.NDArray[np.float32],
    ) -> list[Parse]:
        """``slot_logits[i, j]`` are the tag scores of sub-word ``j`` of ``texts[i]``."""
        probabilities = softmax(intent_logits / self.temperature)
        slot_logp = log_softmax(slot_logits)
        k = min(self.ranking_size, len(self.intents))
        n_candidates = JOINT_CANDIDATES if self.joint_weight > 0 and self.allowed is not None else 1
        out: list[Parse] = []
        for i, text in enumerate(texts):
            tokens = tokenize(text)
            firsts = first_subwords(tokens, offsets[i]) if tokens else []
            row = probabilities[i]
            tags: list[str] = []
            confidences: list[float] = []
            if firsts:
                candidates = np.argsort(-row, kind="stable")[:n_candidates]
                # Intents the network all but rules out are not worth a path each (those at
                # least this probable are a prefix; the top intent is always kept).
                likely = int((row[candidates] >= JOINT_MIN_PROBABILITY).sum())
                candidates = candidates[: max(1, likely)]
                heads, lattices, paths, scores = self._paths(firsts, slot_logp[i], candidates)
                c = 0
                if len(candidates) > 1:
                    steps = np.arange(len(heads))
                    path_scores = scores[np.arange(len(candidates))[:, None], steps, paths]
                    row = self._joint(row, candidates, path_scores.sum(axis=1))
                    # The best is a candidate: the others score no better than the worst.
                    c = int(np.flatnonzero(candidates == int(np.argmax(row)))[0])
                width = len(lattices[c].cols)
                tags, confidences = self._word_tags(
                    firsts, heads, lattices[c].cols, paths[c], scores[c, :, :width]
                )
            order = np.argsort(-row, kind="stable")[:k]
            ranking = tuple(IntentScore(self.intents[j], float(row[j])) for j in order)
            top = ranking[0]
            out.append(
                Parse(
                    text=text,
                    intent=top.intent if top.confidence >= self.threshold else None,
                    confidence=top.confidence,
                    ranking=ranking,
                    slots=spans_from_tags(text, tokens, tags, confidences),
                    domain=self.domains.get(top.intent),
                    locale=self.locale,
                )
            )
        return out


def shortest_first(ids: Sequence[Sequence[int]], size: int) -> Iterator[list[int]]:
    """Indices of ``ids`` in chunks of ``size``, shortest first (a stable sort), so that each
    chunk pads to about its own items' length."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for b in range(0, len(order), size):
        yield order[b : b + size]


def pad_batch(
    ids: Sequence[Sequence[int]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Right-pad id lists to the longest one; returns ``(input_ids, attention_mask)``."""
    width = max(len(x) for x in ids)
    input_ids = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return input_ids, mask


class OnnxParser:
    """A trained transformer parser served by onnxruntime.

    ``batch_size`` texts go through the network at once, padded to the longest of them.
    Dynamic int8 quantisation picks one activation scale per tensor, so with
    ``batch_size > 1`` an int8 parse depends on the other texts of its batch: on SNIPS and
    HWU64 test, 2-5% of parses change intent or slots and confidences move by 0.001
    (median) to 0.23 (max) against one text at a time, with equal accuracy overall.
    ``batch_size=1`` (or ``precision="fp32"``, batch-independent to 1e-7) makes every parse
    independent of its batch.
    """

    def __init__(
        self,
        session: Any,
        tokenizer: Any,
        decoder: Decoder,
        *,
        precision: Precision,
        batch_size: int,
        manifest: dict[str, Any],
        directory: Path,
    ) -> None:
        self.directory_ = directory
        self.session_ = session
        self.tokenizer_ = tokenizer
        self.decoder_ = decoder
        self.precision = precision
        self.batch_size = batch_size
        self.manifest_ = manifest

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        precision: Precision = "int8",
        batch_size: int | None = None,
        threads: int | None = None,
    ) -> Self:
        """Open a model directory; ``precision`` picks ``model.int8.onnx`` or ``model.onnx``.

        ``batch_size`` defaults to the one the model was saved with; ``threads`` to
        onnxruntime's choice.
        """
        import onnxruntime as ort

        directory = Path(path)
        manifest = read_manifest(directory)
        if manifest.get("model_type") != MODEL_TYPE:
            raise ModelFormatError(
                f"{directory}: not a transformer model ({manifest.get('model_type')!r})"
            )
        if precision not in ("int8", "fp32"):
            raise ModelFormatError(f"precision must be 'int8' or 'fp32', not {precision!r}")
        model_file = directory / (INT8_FILE if precision == "int8" else FP32_FILE)
        try:
            labels = json.loads((directory / LABELS_FILE).read_text("utf-8"))
            intents = list(labels["intents"])
            tags = list(labels["tags"])
            allowed = None
            if labels.get("allowed") is not None:
                allowed = np.array(labels["allowed"], dtype=bool).reshape(len(intents), len(tags))
            bigrams = None
            if labels.get("bigrams") is not None:
                bigrams = (
                    np.array(labels["bigrams"]["transitions"], dtype=np.float64).reshape(
                        len(tags), len(tags)
                    ),
                    np.array(labels["bigrams"]["start"], dtype=np.float64).reshape(len(tags)),
                )
            calibration = manifest["calibration"]
            locales = list(manifest["locales"])
            decoder = Decoder(
                intents=intents,
                tags=tags,
                allowed=allowed,
                temperature=float(calibration["temperature"]),
                threshold=float(calibration["threshold"]),
                domains=dict(manifest["domains"]),
                locale=locales[0] if len(locales) == 1 else DEFAULT_LOCALE,
                ranking_size=int(manifest["hyperparameters"]["ranking_size"]),
                bigrams=bigrams,
                bigram_weight=float(calibration.get("bigram_weight", 0.0)),
                joint_weight=float(calibration.get("joint_weight", 0.0)),
                unseen_penalty=unseen_penalty(calibration),
            )
            saved_batch = int(manifest["hyperparameters"].get("inference_batch_size", 32))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelFormatError(
                f"{directory}: incomplete transformer model ({type(e).__name__}: {e}); "
                f"check {LABELS_FILE} and {MANIFEST}"
            ) from None
        if not model_file.is_file():
            raise ModelFormatError(f"{model_file}: missing ONNX model file")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(
                str(model_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelFormatError(f"{model_file}: unreadable ONNX model ({e})") from None
        tokenizer = load_tokenizer(directory / TOKENIZER_FILE)
        return cls(
            session,
            tokenizer,
            decoder,
            precision=precision,
            batch_size=batch_size or saved_batch,
            manifest=manifest,
            directory=directory,
        )

    def feeds(self, encodings: Sequence[Any]) -> Iterator[tuple[list[int], dict[str, Any]]]:
        """The network's inputs for tokenised texts: chunks of ``batch_size``, shortest
        first, so that a chunk is padded to about its texts' own length (on SNIPS test,
        chunks in the given order are 80% padding and run 1.5x slower). Each comes with
        the indices of its texts in ``encodings``."""
        for chunk in shortest_first([e.ids for e in encodings], self.batch_size):
            input_ids, mask = pad_batch([encodings[i].ids for i in chunk])
            yield chunk, {"input_ids": input_ids, "attention_mask": mask}

    def logits(
        self, texts: Sequence[str]
    ) -> tuple[list[list[tuple[int, int]]], npt.NDArray[np.float32], list[npt.NDArray[np.float32]]]:
        """Sub-word offsets, intent logits and per-text slot logits (for tests and tools)."""
        encodings = self.tokenizer_.encode_batch(list(texts))
        intent_rows: list[Any] = [None] * len(encodings)
        slot_rows: list[Any] = [None] * len(encodings)
        for chunk, feed in self.feeds(encodings):
            intent, slots = self.session_.run(OUTPUTS, feed)
            for r, i in enumerate(chunk):
                intent_rows[i] = intent[r]
                slot_rows[i] = slots[r, : len(encodings[i].ids)]
        return [e.offsets for e in encodings], np.stack(intent_rows), slot_rows

    def parse(self, texts: Sequence[str]) -> list[Parse]:
        """Parse a batch of texts (the fast path; one text is a batch of one), in chunks
        as `feeds` makes them; answers keep the given order."""
        if not texts:
            return []
        texts = list(texts)
        encodings = self.tokenizer_.encode_batch(texts)
        out: list[Parse | None] = [None] * len(texts)
        for chunk, feed in self.feeds(encodings):
            intent, slots = self.session_.run(OUTPUTS, feed)
            parses = self.decoder_.decode(
                [texts[i] for i in chunk], [encodings[i].offsets for i in chunk], intent, slots
            )
            for i, parse in zip(chunk, parses, strict=True):
                out[i] = parse
        return out  # type: ignore[return-value]

    # The Parser protocol: a loaded model is for serving, not for training.
    def fit(self, train: Sequence[Any], dev: Sequence[Any] | None = None) -> Self:
        raise ModelFormatError(
            "a loaded transformer model cannot be retrained; train a new one with "
            "voxloop.nlu.transformer.TransformerParser"
        )

    def save(self, path: str | Path) -> None:
        """Copy the model directory this parser was loaded from."""
        import shutil

        source = self.directory_
        target = Path(path)
        if target.resolve() == source.resolve():
            return
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)
