"""Tokens with character offsets, for any script.

Words are runs of letters/digits (apostrophes inside a word kept, as in "what's");
every other non-space character is a token of its own; ideographs and kana (Chinese,
Japanese), written without spaces, are one token per character. Offsets always point into
the original text, so slot spans predicted over tokens map back exactly.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["Token", "tokenize"]

_CJK = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


def _combining_marks() -> str:
    """A character class body of every combining mark below U+20000 (vowel signs, ...)."""
    ranges: list[tuple[int, int]] = []
    for c in range(0x20000):
        if unicodedata.category(chr(c)).startswith("M"):
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1] = (ranges[-1][0], c)
            else:
                ranges.append((c, c))
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


_WORD_CHAR = rf"(?:(?![{_CJK}])\w|[{_combining_marks()}])"
_TOKEN = re.compile(rf"[{_CJK}]|{_WORD_CHAR}+(?:['’]{_WORD_CHAR}+)*|[^\w\s]")

Token = tuple[str, int, int]
"""A token: its text, start and end character offsets."""


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens with ``text[start:end] == token``."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
