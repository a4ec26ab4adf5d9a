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
chosen on dev (0 turns them off; older models have none). All texts of a batch are decoded
in one vectorised pass that first weighs a few tags per word and widens only where it
cannot prove its path the best (`Decoder._best_paths`), so it returns exactly the path a
search over every tag would.
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
from voxloop.nlu.base import MANIFEST, read_manifest, staged_directory
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
BEAM = 6
"""Tags per word the Viterbi weighs when each word's single best tag does not make a path
that is provably the best (`Decoder._best_paths`; wider where this one cannot either)."""
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
MAX_POSITIONS = 512
"""The encoder's position embeddings: longer inputs are cut (their tail gets no slots)."""

Precision = Literal["int8", "fp32"]
OUTPUTS = ["intent_logits", "slot_logits"]
"""The ONNX model's outputs, in the order `OnnxParser` reads them."""


def _check_outputs(session: Any, model_file: Path, labels: dict[str, list[str]]) -> None:
    """Refuse an ONNX file whose outputs do not match ``labels.json`` (one copied from
    another model): each output's last dimension is the number of its labels."""
    shapes = {o.name: o.shape for o in session.get_outputs()}
    for name, names in labels.items():
        shape = shapes.get(name)
        if shape is None:
            raise ModelFormatError(f"{model_file}: no output {name!r}; not a voxloop model")
        if isinstance(shape[-1], int) and shape[-1] != len(names):
            raise ModelFormatError(
                f"{model_file}: output {name} has {shape[-1]} labels, {LABELS_FILE} lists "
                f"{len(names)}; the file belongs to another model"
            )


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
    n, width = scores.shape
    tags = np.broadcast_to(np.arange(width), (1, n, width))
    choice, _ = beam_viterbi(scores[None], tags, np.array([n]), transitions, start)
    return choice[0].tolist()


def beam_viterbi(
    scores: npt.NDArray[np.float64],
    tags: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    transitions: npt.NDArray[np.float64],
    start: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The best paths of M sequences at once, each position choosing among its own K tags:
    ``scores[m, i, k]`` is the score of tag ``tags[m, i, k]`` at position ``i`` of sequence
    ``m`` (positions past ``lengths[m]`` are ignored), ``transitions[s, t]`` and
    ``start[t]`` are indexed by tag. Returns the choices (indices into K, ``[M, n]``) and
    each best path's score (-inf when no path is possible). On a tie the lowest k wins."""
    m, n, k = scores.shape
    best = scores[:, 0] + start[tags[:, 0]]
    back = np.zeros((m, n, k), dtype=np.int64)
    steps = transitions[tags[:, :-1, :, None], tags[:, 1:, None, :]]  # [m, n - 1, k, k]
    ragged = bool((lengths < n).any())
    stay = np.arange(k)
    for i in range(1, n):
        candidates = best[:, :, None] + steps[:, i - 1]
        pointer = candidates.argmax(axis=1)
        value = candidates.max(axis=1) + scores[:, i]
        if ragged:  # a sequence that has ended keeps its scores and points to itself
            active = (i < lengths)[:, None]
            value = np.where(active, value, best)
            pointer = np.where(active, pointer, stay)
        best, back[:, i] = value, pointer
    choice = np.zeros((m, n), dtype=np.int64)
    choice[:, -1] = best.argmax(axis=1)
    rows = np.arange(m)
    for i in range(n - 1, 0, -1):
        choice[:, i - 1] = back[rows, i, choice[:, i]]
    return choice, best[rows, choice[:, -1]]


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


def _top(scores: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.int64]:
    """The columns of each row's ``k`` highest ``scores``, in column order."""
    width = scores.shape[1]
    if k >= width:
        return np.broadcast_to(np.arange(width), scores.shape)
    return np.sort(np.argpartition(scores, width - k, axis=1)[:, width - k :], axis=1)


class _Words(NamedTuple):
    """A text's words and the sub-words that score their tags."""

    tokens: list[Token]
    firsts: list[int]
    """Each word's first sub-word (-1: none)."""
    heads: list[int]
    """The words with scores of their own (not inside the previous word's sub-word)."""
    pieces: list[int]
    """The heads' first sub-words."""


class _Items(NamedTuple):
    """The (text, intent) pairs of a batch that get a tag path, and their rows: one per
    head word of the text, an item's rows adjacent."""

    text: npt.NDArray[np.int64]
    intent: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    """Rows (head words) per item."""
    first_row: npt.NDArray[np.int64]
    of_row: npt.NDArray[np.int64]
    """The item of each row."""
    position_of_row: npt.NDArray[np.int64]
    """The index of each row's head word among its text's heads."""


class _Paths(NamedTuple):
    """The best tag path of each (text, intent) item of a batch."""

    tags: npt.NDArray[np.int64]
    """Tag ids, ``[items, positions]`` (past an item's length: meaningless)."""
    emission: npt.NDArray[np.float64]
    """The sum of the path's tag scores, transitions excluded, ``[items]``."""
    total: npt.NDArray[np.float64]
    """The path's score, transitions included, ``[items]``."""


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
        self.options: dict[str, Any] = {
            "intents": intents,
            "tags": tags,
            "allowed": allowed,
            "temperature": temperature,
            "threshold": threshold,
            "domains": domains,
            "locale": locale,
            "ranking_size": ranking_size,
            "bigrams": bigrams,
            "bigram_weight": bigram_weight,
            "joint_weight": joint_weight,
            "unseen_penalty": unseen_penalty,
        }
        """The arguments this decoder was made with (see `replace`)."""
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
        outside = self.tags.index("O")
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
        # The most a tag can gain from the transition into it (see `_best_paths`).
        self._best_entry = self._transitions.max(axis=0)
        self._begin = np.array(
            [
                self.tags.index("B-" + t[2:]) if t.startswith("I-") else j
                for j, t in enumerate(self.tags)
            ]
        )
        self._empty = np.full(n, -np.inf)
        self._empty[outside] = 0.0  # a word without sub-words: "O"

    def replace(self, **changes: Any) -> Decoder:
        """A decoder made with this one's arguments but for ``changes`` (e.g. other weights)."""
        return Decoder(**{**self.options, **changes})

    def _words(self, text: str, offsets: Sequence[tuple[int, int]]) -> _Words:
        """The words of ``text`` and their sub-words (``offsets``: the sub-words').

        A word inside the same sub-word as the word before it (one piece covering several
        characters of a script without spaces, e.g. "明天") has no scores of its own."""
        tokens = tokenize(text)
        firsts = first_subwords(tokens, offsets) if tokens else []
        heads = [w for w, j in enumerate(firsts) if w == 0 or j < 0 or j != firsts[w - 1]]
        return _Words(tokens, firsts, heads, [firsts[w] for w in heads])

    def _costs(
        self,
        intents: npt.NDArray[np.int64],
        texts: npt.NDArray[np.int64],
        preferred: npt.NDArray[np.bool_] | None,
    ) -> npt.NDArray[np.float64]:
        """What each item's intent adds to each tag's log-probability, ``[items, tags]``:
        0 for a tag whose label the intent was seen with in training (every tag without
        that constraint), minus ``unseen_penalty`` for another tag that a word of the item's
        text prefers (``preferred[text, tag]``: its most likely tag, or the "B-" that tag's
        "I-" needs), -inf for the rest. No other unseen tag can outscore the intent's own
        but through transitions, so none is worth a place in the lattice."""
        if self.allowed is None:
            return np.zeros((len(intents), len(self.tags)))
        seen = self.allowed[intents]
        if preferred is None or math.isinf(self.unseen_penalty):
            return np.where(seen, 0.0, -np.inf)
        return np.where(seen, 0.0, np.where(preferred[texts], -self.unseen_penalty, -np.inf))

    def _viterbi(
        self,
        emissions: npt.NDArray[np.float64],
        tags: npt.NDArray[np.int64],
        item_of_row: npt.NDArray[np.int64],
        position_of_row: npt.NDArray[np.int64],
        lengths: npt.NDArray[np.int64],
    ) -> _Paths:
        """`beam_viterbi` over each row's candidate ``tags`` (``[rows, K]``), row r of
        ``emissions`` (``[rows, all tags]``) being position ``position_of_row[r]`` of item
        ``item_of_row[r]``."""
        m, n, k = len(lengths), int(lengths.max()), tags.shape[1]
        values = emissions[np.arange(len(tags))[:, None], tags]
        if len(tags) == m * n:  # all of one length: the rows are the items' positions
            scores, ids = values.reshape(m, n, k), tags.reshape(m, n, k)
        else:
            scores = np.full((m, n, k), -np.inf)
            scores[item_of_row, position_of_row] = values
            ids = np.zeros((m, n, k), dtype=np.int64)
            ids[item_of_row, position_of_row] = tags
        choice, total = beam_viterbi(scores, ids, lengths, self._transitions, self._start)
        at = np.arange(m)[:, None], np.arange(n), choice
        inside = np.arange(n) < lengths[:, None]
        return _Paths(ids[at], np.where(inside, scores[at], 0.0).sum(axis=1), total)

    def _greedy(
        self, emissions: npt.NDArray[np.float64], reach: npt.NDArray[np.float64], items: _Items
    ) -> _Paths:
        """Each position's tag of highest ``reach`` as a path (a beam of one, no search)."""
        best = reach.argmax(axis=1)
        chosen = emissions[np.arange(len(best)), best]
        entry = np.where(
            items.position_of_row == 0,
            self._start[best],
            self._transitions[np.concatenate((best[:1], best[:-1])), best],
        )
        tags = np.zeros((len(items.lengths), int(items.lengths.max())), dtype=np.int64)
        tags[items.of_row, items.position_of_row] = best
        return _Paths(
            tags,
            np.add.reduceat(chosen, items.first_row),
            np.add.reduceat(chosen + entry, items.first_row),
        )

    def _best_paths(self, emissions: npt.NDArray[np.float64], items: _Items) -> _Paths:
        """The best path of every item, ``emissions[r, tag]`` scoring row r (`_viterbi`).

        A path scores each position's tag plus the start or transition into it; call the
        most a tag can get that way (its score plus its start score, or plus the best
        transition from any tag) its reach. The first guess takes each position's tag of
        highest reach (`_greedy`). A path scoring at least as much as the path found must,
        at each position, use a tag whose reach is at least that score minus the best
        reach of every other position; the items where such tags fall outside the tags
        searched are searched again over more: `BEAM` per position, then up to 4x as
        many each time, up to all tags, until none does. So the beam changes the time
        taken, never the answer."""
        width = emissions.shape[1]
        item_of_row, position_of_row, lengths = items.of_row, items.position_of_row, items.lengths
        reach = emissions + self._best_entry
        reach[items.first_row] += self._start - self._best_entry  # a first word: no entry
        peak = reach.max(axis=1)
        paths = self._greedy(emissions, reach, items)
        ceiling = np.add.reduceat(peak, items.first_row)
        k = 1
        rows = np.arange(len(item_of_row))
        while k < width:
            need = (paths.total - ceiling)[item_of_row[rows]] + peak[rows]
            wanted = (reach[rows] >= need[:, None]).sum(axis=1)  # all: no path was found
            short = wanted > k
            if not short.any():
                break
            again = np.zeros(len(lengths), dtype=bool)
            again[item_of_row[rows][short]] = True
            todo, keep = np.flatnonzero(again), again[item_of_row[rows]]
            rows, k = rows[keep], min(int(wanted[keep].max()), max(4 * k, BEAM), width)
            redone = self._viterbi(
                emissions[rows],
                _top(reach[rows], k),
                np.searchsorted(todo, item_of_row[rows]),
                position_of_row[rows],
                lengths[todo],
            )
            paths.tags[todo, : redone.tags.shape[1]] = redone.tags
            paths.emission[todo] = redone.emission
            paths.total[todo] = redone.total
        return paths

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
        """``slot_logits[i, j]`` are the tag scores of sub-word ``j`` of ``texts[i]``.

        Every text is decoded with its most likely intent and, with joint decoding, with up
        to `JOINT_CANDIDATES` intents at least `JOINT_MIN_PROBABILITY` probable: one item
        per (text, intent), all of a batch's items in one Viterbi pass (`_best_paths`).
        A word's tag scores are its first sub-word's; a word without sub-words is "O"; a
        word inside the previous word's sub-word continues its slot ("I-") or stays "O".
        A tag's confidence is its probability among the tags the intent allows.
        """
        probabilities = softmax(intent_logits / self.temperature)
        words = [self._words(text, offsets[i]) for i, text in enumerate(texts)]
        ranked = np.argsort(-probabilities, axis=1, kind="stable")
        n_heads = np.array([len(w.heads) for w in words], dtype=np.int64)
        items = self._items(probabilities, ranked, n_heads)
        emissions = self._emissions(slot_logits, words, n_heads, items)
        tag_ids: list[list[int]] = [[] for _ in texts]
        shares: list[list[float]] = [[] for _ in texts]
        k = min(self.ranking_size, len(self.intents))
        rows, orders = list(probabilities), list(ranked[:, :k])
        if len(items.text):
            paths = self._best_paths(emissions, items)
            chosen = np.searchsorted(items.text, np.arange(len(texts)))
            n_items = np.bincount(items.text, minlength=len(texts))
            for i in np.flatnonzero(n_items > 1).tolist():
                span = slice(chosen[i], chosen[i] + n_items[i])
                rows[i] = self._joint(rows[i], items.intent[span], paths.emission[span])
                orders[i] = np.argsort(-rows[i], kind="stable")[:k]
                # The best is a candidate: the others score no better than the worst.
                chosen[i] += np.flatnonzero(items.intent[span] == orders[i][0])[0]
            decoded = np.flatnonzero(n_items > 0)
            self._chosen_tags(
                chosen[decoded], decoded, paths.tags, emissions, items, tag_ids, shares
            )
        out: list[Parse] = []
        for i, text in enumerate(texts):
            order = orders[i]
            ranking = tuple(
                IntentScore(self.intents[j], score)
                for j, score in zip(order.tolist(), rows[i][order].tolist(), strict=True)
            )
            top = ranking[0]
            tags, confidences = self._word_tags(words[i], tag_ids[i], shares[i])
            out.append(
                Parse(
                    text=text,
                    intent=top.intent if top.confidence >= self.threshold else None,
                    confidence=top.confidence,
                    ranking=ranking,
                    slots=spans_from_tags(text, words[i].tokens, tags, confidences),
                    domain=self.domains.get(top.intent),
                    locale=self.locale,
                )
            )
        return out

    def _items(
        self,
        probabilities: npt.NDArray[np.float64],
        ranked: npt.NDArray[np.int64],
        n_heads: npt.NDArray[np.int64],
    ) -> _Items:
        """The items of texts with ``n_heads`` head words: each text's most likely intent
        and, with joint decoding, the next ones among `JOINT_CANDIDATES` (``ranked``: the
        intents by probability) at least `JOINT_MIN_PROBABILITY` probable."""
        joint = self.joint_weight > 0 and self.allowed is not None
        candidates = ranked[:, : JOINT_CANDIDATES if joint else 1]
        # Those at least this probable are a prefix; the top intent is always kept.
        keep = probabilities[np.arange(len(ranked))[:, None], candidates] >= JOINT_MIN_PROBABILITY
        keep[:, 0] = True
        keep &= (n_heads > 0)[:, None]
        text, rank = np.nonzero(keep)  # a text's items are adjacent, best first
        lengths = n_heads[text]
        first_row = np.cumsum(lengths) - lengths
        of_row = np.repeat(np.arange(len(text)), lengths)
        position = np.arange(len(of_row)) - first_row[of_row]
        return _Items(text, candidates[text, rank], lengths, first_row, of_row, position)

    def _emissions(
        self,
        slot_logits: npt.NDArray[np.float32],
        words: Sequence[_Words],
        n_heads: npt.NDArray[np.int64],
        items: _Items,
    ) -> npt.NDArray[np.float64]:
        """Each item's tag scores at each of its rows, ``[rows, tags]``: the head word's
        first sub-word's log-probabilities plus the item intent's costs (`_costs`)."""
        text_of_head = np.repeat(np.arange(len(words)), n_heads)
        pieces = np.array([j for w in words for j in w.pieces], dtype=np.int64)
        heads = log_softmax(slot_logits[text_of_head, np.maximum(pieces, 0)])
        missing = pieces < 0
        preferred = None
        if self.allowed is not None and not math.isinf(self.unseen_penalty):
            preferred = np.zeros((len(words), len(self.tags)), dtype=bool)
            best = heads[~missing].argmax(axis=1)
            owner = text_of_head[~missing]
            preferred[owner, best] = True
            preferred[owner, self._begin[best]] = True
        first_head = np.cumsum(n_heads) - n_heads
        head_of_row = first_head[items.text][items.of_row] + items.position_of_row
        costs = self._costs(items.intent, items.text, preferred)
        emissions = heads[head_of_row] + costs[items.of_row]
        emissions[missing[head_of_row]] = self._empty
        return emissions

    def _chosen_tags(
        self,
        items: npt.NDArray[np.int64],
        texts: npt.NDArray[np.int64],
        paths: npt.NDArray[np.int64],
        emissions: npt.NDArray[np.float64],
        layout: _Items,
        tag_ids: list[list[int]],
        shares: list[list[float]],
    ) -> None:
        """Fill ``tag_ids[text]`` and ``shares[text]`` with the path of the item chosen for
        each text (``items[j]`` for ``texts[j]``, rows as in ``layout``): its head words' tag
        ids and each tag's probability among the tags the item's intent allows."""
        ids = paths[layout.of_row, layout.position_of_row]  # every item's: fewer calls
        peak = emissions.max(axis=1)
        share = np.exp(emissions[np.arange(len(ids)), ids] - peak)
        share /= np.exp(emissions - peak[:, None]).sum(axis=1)
        id_list, share_list = ids.tolist(), share.tolist()
        starts, counts = layout.first_row[items].tolist(), layout.lengths[items].tolist()
        for text, start, count in zip(texts.tolist(), starts, counts, strict=True):
            tag_ids[text] = id_list[start : start + count]
            shares[text] = share_list[start : start + count]

    def _word_tags(
        self, words: _Words, path: Sequence[int], shares: Sequence[float]
    ) -> tuple[list[str], list[float]]:
        """BIO tags and confidences of ``words`` from their heads' ``path`` (tag ids) and
        the chosen tags' ``shares`` (see `decode`)."""
        heads = len(words.heads)
        tags: list[str] = []
        out: list[float] = []
        row = -1
        for w in range(len(words.firsts)):
            if row + 1 < heads and words.heads[row + 1] == w:
                row += 1
                tags.append(self.tags[path[row]])
            else:
                tags.append("O" if tags[-1] == "O" else "I-" + tags[-1][2:])
            out.append(shares[row])
        return tags, out


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
    A parse does not depend on the other texts of its batch (confidences to float rounding,
    ~1e-5), in fp32 and in int8 files whose activation scales were fixed at training time
    (``int8_calibration``, the default). Other int8 files quantise dynamically, one
    activation scale per batch: there 2-5% of SNIPS and HWU64 test parses change intent or
    slots against one text at a time (equal accuracy overall); ``batch_size=1`` makes those
    reproducible.
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
        _check_outputs(session, model_file, {"intent_logits": intents, "slot_logits": tags})
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
        with staged_directory(target) as staging:
            shutil.copytree(source, staging, dirs_exist_ok=True)
