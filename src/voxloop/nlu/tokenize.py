"""Tokens with character offsets, for any script.

Words are runs of letters/digits (apostrophes inside a word kept, as in "what's");
every other non-space character is a token of its own; ideographs and kana (Chinese,
Japanese), written without spaces, are one token per character. Offsets always point into
the original text, so slot spans predicted over tokens map back exactly.

Invisible format characters are handled as writers use them: zero-width space, word joiner,
byte-order mark and the bidirectional marks of right-to-left text separate tokens like a
space; zero-width (non-)joiners, which Indic and Arabic-script words use inside a word,
stay inside it.

`fold` is the normalisation models compare tokens by: NFKC (full-width ``１０`` is ``10``,
a decomposed ``é`` is ``é``), case-folded, without Arabic harakat, tatweel or joiners. It
applies to one token's text, so normalising never moves an offset: features see folded
tokens, spans stay exact slices of the original text.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["Token", "fold", "tokenize"]

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


# Separators that are not whitespace to ``\s``: ZWSP, LRM, RLM, word joiner, bidi
# embeddings/isolates, BOM. Joiners (ZWNJ, ZWJ) are part of words.
_INVISIBLE = "\u200b\u200e\u200f\u2060\u202a-\u202e\u2066-\u2069\ufeff"
_JOINERS = "\u200c\u200d"
_MARKS = _combining_marks()
_WORD_CHAR = rf"(?:(?![{_CJK}])\w|[{_MARKS}{_JOINERS}])"
# An ideograph or kana is a token with the combining marks that follow it (a decomposed
# が is か + U+3099, one token as the composed が is).
_TOKEN = re.compile(
    rf"(?![{_MARKS}])[{_CJK}][{_MARKS}]*"
    rf"|{_WORD_CHAR}+(?:['’]{_WORD_CHAR}+)*"
    rf"|(?![{_INVISIBLE}])[^\w\s]"
)
# The same tokens for ASCII text, which has no ideographs, marks, joiners or invisible
# separators: four times faster (most English utterances; `tokenize` runs on every parse).
_ASCII_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
# `fold` removes Arabic harakat and Quranic marks, tatweel and joiners, and turns the
# invisible separators into spaces. It keeps madda and hamza above/below (U+0653-U+0655):
# they are parts of letters (U+0626 "ئ" is U+064A + U+0654 decomposed), so removing them
# would fold a decomposed spelling to another letter than the composed one.
_HARAKAT = [c for c in range(0x064B, 0x0660) if not 0x0653 <= c <= 0x0655]
_FOLD: dict[int, str | None] = {
    **dict.fromkeys([*_HARAKAT, 0x0670, 0x0640, 0x200C, 0x200D]),
    **dict.fromkeys([0x200B, 0x200E, 0x200F, 0x2060, 0xFEFF], " "),
    **dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)], " "),
}

Token = tuple[str, int, int]
"""A token: its text, start and end character offsets."""


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens with ``text[start:end] == token``."""
    pattern = _ASCII_TOKEN if text.isascii() else _TOKEN
    return [(m.group(), m.start(), m.end()) for m in pattern.finditer(text)]


def fold(token: str) -> str:
    """The normalised form features compare: NFKC, case-folded, without Arabic diacritics,
    tatweel or joiners, invisible separators as spaces (``fold("Ｅ\u0301") == "é"``)."""
    if token.isascii():
        return token.lower()
    # NFKC first too: a compatibility character can decompose into a mark that _FOLD
    # removes (U+FC5B, thal with superscript alef), which it must remove in every spelling.
    token = unicodedata.normalize("NFKC", token)
    return unicodedata.normalize("NFKC", token.translate(_FOLD)).casefold()
