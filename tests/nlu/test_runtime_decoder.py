"""The runtime's decoder on scripts without spaces: one sub-word covering several words."""

from __future__ import annotations

import numpy as np

from voxloop.nlu.runtime import Decoder

TAGS = ["B-date", "B-weather", "I-date", "I-weather", "O"]


def _decoder() -> Decoder:
    return Decoder(
        intents=["weather_query"],
        tags=TAGS,
        allowed=None,
        temperature=1.0,
        threshold=0.0,
        domains={},
        locale="zh-CN",
        ranking_size=1,
    )


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
