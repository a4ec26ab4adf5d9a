"""The runtime's decoder on scripts without spaces: one sub-word covering several words."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from voxloop.errors import ModelFormatError
from voxloop.nlu import runtime
from voxloop.nlu.runtime import Decoder, tag_bigrams
from voxloop.schema import Parse

TAGS = ["B-date", "B-weather", "I-date", "I-weather", "O"]


def _decoder(**changes: Any) -> Decoder:
    """A decoder over `TAGS` with one intent and no learned weights, but for ``changes``."""
    options: dict[str, Any] = {
        "intents": ["weather_query"],
        "tags": TAGS,
        "allowed": None,
        "temperature": 1.0,
        "threshold": 0.0,
        "domains": {},
        "locale": "zh-CN",
        "ranking_size": 1,
    }
    return Decoder(**{**options, **changes})


def _logits(*rows: str) -> np.ndarray:
    """Slot logits favouring the given tag at each sub-word (specials get "O")."""
    out = np.zeros((1, len(rows), len(TAGS)), dtype=np.float32)
    for j, tag in enumerate(rows):
        out[0, j, TAGS.index(tag)] = 8.0
    return out


def test_a_piece_covering_two_characters_gives_one_span_over_both() -> None:
    text = "明天下雨吗"  # one word per character; pieces: <s> 明天 下雨 吗 </s>
    offsets = [[(0, 0), (0, 2), (2, 4), (4, 5), (0, 0)]]
    slots = _logits("O", "B-date", "B-weather", "O", "O")
    parse = _decoder().decode([text], offsets, np.zeros((1, 1), np.float32), slots)[0]
    assert [(s.label, s.value, s.start, s.end) for s in parse.slots] == [
        ("date", "明天", 0, 2),
        ("weather", "下雨", 2, 4),
    ]


def test_a_piece_tagged_outside_keeps_all_its_characters_outside() -> None:
    text = "明天下雨吗"
    offsets = [[(0, 0), (0, 2), (2, 4), (4, 5), (0, 0)]]
    slots = _logits("O", "O", "B-weather", "O", "O")
    parse = _decoder().decode([text], offsets, np.zeros((1, 1), np.float32), slots)[0]
    assert [(s.label, s.value) for s in parse.slots] == [("weather", "下雨")]


# --- learned tag bigrams --------------------------------------------------------------
def test_tag_bigrams_are_smoothed_log_probabilities_of_the_training_sequences() -> None:
    transitions, start = tag_bigrams(TAGS, [["B-date", "I-date", "O"], ["B-date", "O"], ["O"]])
    assert np.allclose(np.exp(transitions).sum(axis=1), 1.0)
    assert np.isclose(np.exp(start).sum(), 1.0)
    b_date, i_date, outside = TAGS.index("B-date"), TAGS.index("I-date"), TAGS.index("O")
    assert start[b_date] > start[outside] > start[i_date]  # 2, 1, 0 sequences start so
    # After B-date: I-date once and O once, the unseen tags only by smoothing.
    assert transitions[b_date, i_date] == transitions[b_date, outside]
    assert transitions[b_date, i_date] > transitions[b_date, TAGS.index("B-weather")]


def test_bigrams_with_weight_join_a_word_the_head_alone_leaves_outside() -> None:
    # "next week": the head is sure of "next" (B-date), unsure of "week" (O 1.0, I-date 0.9).
    text, offsets = "next week", [[(0, 0), (0, 4), (5, 9), (0, 0)]]
    slots = np.zeros((1, 4, len(TAGS)), dtype=np.float32)
    slots[0, 1, TAGS.index("B-date")] = 8.0
    slots[0, 2, TAGS.index("O")] = 1.0
    slots[0, 2, TAGS.index("I-date")] = 0.9
    # In training, "B-date" was followed by "I-date" nine times in ten.
    bigrams = tag_bigrams(TAGS, [["B-date", "I-date"]] * 9 + [["B-date", "O"]])
    intent = np.zeros((1, 1), np.float32)

    def spans(weight: float) -> list[str]:
        decoder = _decoder(locale="en-US", bigrams=bigrams, bigram_weight=weight)
        return [s.value for s in decoder.decode([text], offsets, intent, slots)[0].slots]

    assert spans(0.0) == ["next"]
    assert spans(1.0) == ["next week"]


def test_joint_decoding_prefers_the_intent_whose_slots_explain_the_words() -> None:
    # "rain tomorrow": the intent head slightly prefers "calendar_query", which was never
    # seen with a weather slot; the slot head is sure "rain" is one.
    text, offsets = "rain tomorrow", [[(0, 0), (0, 4), (5, 13), (0, 0)]]
    slots = np.zeros((1, 4, len(TAGS)), dtype=np.float32)
    slots[0, 1, TAGS.index("B-weather")] = 8.0
    slots[0, 1, TAGS.index("O")] = 1.0
    slots[0, 2, TAGS.index("B-date")] = 8.0
    intents = ["calendar_query", "weather_query"]
    allowed = np.array(
        [[t == "O" or t.endswith("date") for t in TAGS], [True] * len(TAGS)], dtype=bool
    )
    intent_logits = np.log(np.array([[0.6, 0.4]], dtype=np.float32))

    def parse(weight: float) -> Parse:
        decoder = _decoder(
            intents=intents, allowed=allowed, locale="en-US", ranking_size=2, joint_weight=weight
        )
        return decoder.decode([text], offsets, intent_logits, slots)[0]

    alone, joint = parse(0.0), parse(1.0)
    assert alone.intent == "calendar_query"
    assert [(s.label, s.value) for s in alone.slots] == [("date", "tomorrow")]
    assert joint.intent == "weather_query"
    assert [(s.label, s.value) for s in joint.slots] == [
        ("weather", "rain"),
        ("date", "tomorrow"),
    ]
    assert joint.confidence > 0.99 and abs(sum(r.confidence for r in joint.ranking) - 1) < 1e-9


def test_a_label_unseen_with_the_intent_costs_its_penalty_instead_of_being_forbidden() -> None:
    # "rain tomorrow" under "calendar_query", never seen with a weather slot in training:
    # the slot head is sure "rain" is one (by 7 nats over "O"). Forbidden (inf), the word is
    # left outside; at a cost below 7 the head's certainty outweighs it; above it, not.
    text, offsets = "rain tomorrow", [[(0, 0), (0, 4), (5, 13), (0, 0)]]
    slots = _logits("O", "B-weather", "B-date", "O")
    slots[0, 1, TAGS.index("O")] = 1.0
    allowed = np.array([[t == "O" or t.endswith("date") for t in TAGS]], dtype=bool)

    def labels(penalty: float) -> list[tuple[str, str]]:
        decoder = _decoder(
            intents=["calendar_query"], allowed=allowed, locale="en-US", unseen_penalty=penalty
        )
        parse = decoder.decode([text], offsets, np.zeros((1, 1), np.float32), slots)[0]
        return [(s.label, s.value) for s in parse.slots]

    assert labels(math.inf) == [("date", "tomorrow")]
    assert labels(2.0) == [("weather", "rain"), ("date", "tomorrow")]
    assert labels(0.0) == [("weather", "rain"), ("date", "tomorrow")]
    assert labels(10.0) == [("date", "tomorrow")]


def test_a_negative_unseen_penalty_is_refused() -> None:
    with pytest.raises(ModelFormatError, match="unseen_penalty must be >= 0"):
        _decoder(unseen_penalty=-1.0)


# --- the beam: a faster search, the same answer ------------------------------------------
WIDE_TAGS = ["B-a", "B-b", "B-c", "I-a", "I-b", "I-c", "O"]


def _brute_force_path(
    logp: np.ndarray, transitions: np.ndarray, start: np.ndarray
) -> tuple[list[str], float]:
    """The best BIO tag sequence by trying every one (``WIDE_TAGS``)."""
    best, best_score = [], -math.inf
    for path in itertools.product(range(len(WIDE_TAGS)), repeat=len(logp)):
        tags = [WIDE_TAGS[t] for t in path]
        if any(
            t.startswith("I-") and (i == 0 or tags[i - 1][2:] != t[2:]) for i, t in enumerate(tags)
        ):
            continue
        score = start[path[0]] + sum(logp[i, t] for i, t in enumerate(path))
        score += sum(transitions[a, b] for a, b in itertools.pairwise(path))
        if score > best_score:
            best, best_score = tags, score
    return best, best_score


def test_the_beam_finds_the_best_path_when_transitions_outweigh_the_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A beam of 2 tags per word, heavy learned transitions and flat word scores: the best
    # path often goes through a word's 3rd-7th tag, which the beam first leaves out.
    monkeypatch.setattr(runtime, "BEAM", 2)
    rng = np.random.default_rng(7)
    words = 5
    text = " ".join("abcde"[:words])
    offsets = [[(0, 0), *[(2 * i, 2 * i + 1) for i in range(words)], (0, 0)]]
    for _ in range(40):
        transitions = np.log(rng.dirichlet(np.ones(len(WIDE_TAGS)) * 0.3, len(WIDE_TAGS)))
        start = np.log(rng.dirichlet(np.ones(len(WIDE_TAGS))))
        slots = rng.normal(0, 1.0, (1, words + 2, len(WIDE_TAGS))).astype(np.float32)
        decoder = _decoder(
            tags=WIDE_TAGS, locale="en-US", bigrams=(transitions, start), bigram_weight=3.0
        )
        parse = decoder.decode([text], offsets, np.zeros((1, 1), np.float32), slots)[0]
        logp = slots[0, 1:-1].astype(np.float64)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        bio = np.array([[0.0 if t[:2] != "I-" else -math.inf for t in WIDE_TAGS]])
        expected, _ = _brute_force_path(logp, 3.0 * transitions, 3.0 * start + bio[0])
        spans = [(s.label, s.start // 2, s.end // 2 + 1) for s in parse.slots]
        assert spans == _spans_of(expected)


def _spans_of(tags: list[str]) -> list[tuple[str, int, int]]:
    """(label, first word, end word) of each BIO chunk."""
    out: list[tuple[str, int, int]] = []
    for i, t in enumerate(tags):
        if t.startswith("B-"):
            out.append((t[2:], i, i + 1))
        elif t.startswith("I-"):
            label, first, _ = out[-1]
            out[-1] = (label, first, i + 1)
    return out


def test_a_batch_decodes_each_text_as_it_would_alone() -> None:
    rng = np.random.default_rng(3)
    texts = ["a b c", "d", "", "e f g h"]
    offsets = [
        [(0, 0), *[(2 * i, 2 * i + 1) for i in range(len(t.split()))], (0, 0)] for t in texts
    ]
    slots = rng.normal(0, 2.0, (len(texts), 6, len(WIDE_TAGS))).astype(np.float32)
    intents = rng.normal(0, 1.0, (len(texts), 2)).astype(np.float32)
    transitions = np.log(rng.dirichlet(np.ones(len(WIDE_TAGS)), len(WIDE_TAGS)))
    decoder = _decoder(
        intents=["x", "y"],
        tags=WIDE_TAGS,
        locale="en-US",
        ranking_size=2,
        bigrams=(transitions, np.zeros(len(WIDE_TAGS))),
        bigram_weight=1.0,
    )
    together = decoder.decode(texts, offsets, intents, slots)
    alone = [
        decoder.decode([t], [o], intents[i : i + 1], slots[i : i + 1])[0]
        for i, (t, o) in enumerate(zip(texts, offsets, strict=True))
    ]
    assert together == alone
    assert together[2].slots == () and together[2].intent is not None


def test_replace_changes_only_the_given_arguments() -> None:
    decoder = _decoder(locale="en-US", unseen_penalty=2.0)
    other = decoder.replace(bigram_weight=0.5)
    assert other.options == {**decoder.options, "bigram_weight": 0.5}
    assert other.locale == "en-US" and other.unseen_penalty == 2.0
