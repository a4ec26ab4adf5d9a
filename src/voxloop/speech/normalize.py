"""Text normalisation: a recognizer's written form → the spoken form the NLU and WER use.

Whisper writes "Set an alarm for 7:30 a.m.!"; the corpora say "set an alarm for seven thirty
am". `spoken_form` lower-cases, spells out numbers, times, ordinals, ``%``, ``$`` and ``&``,
and drops punctuation (apostrophes inside words stay). `normalize_for_wer` further expands
common contractions, so "what's" and "what is" are not an error; apply it to both sides.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_for_wer", "number_to_words", "spoken_form"]

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((1_000_000_000, "billion"), (1_000_000, "million"), (1000, "thousand"), (100, "hundred"))
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_to_words(n: int) -> str:
    """0 → "zero", 1205 → "one thousand two hundred five" (American, no "and")."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            words = number_to_words(head) + " " + name
            return words if rest == 0 else words + " " + number_to_words(rest)
    raise AssertionError(n)


def _ordinal(n: int) -> str:
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _time(hours: str, minutes: str) -> str:
    h, m = int(hours), int(minutes)
    if m == 0:
        return number_to_words(h)
    if m < 10:
        return f"{number_to_words(h)} oh {number_to_words(m)}"
    return f"{number_to_words(h)} {number_to_words(m)}"


def _decimal(whole: str, fraction: str) -> str:
    return number_to_words(int(whole)) + " point " + " ".join(_ONES[int(d)] for d in fraction)


_CONTRACTIONS = {
    "what's": "what is",
    "it's": "it is",
    "that's": "that is",
    "there's": "there is",
    "where's": "where is",
    "who's": "who is",
    "how's": "how is",
    "let's": "let us",
    "i'm": "i am",
    "you're": "you are",
    "we're": "we are",
    "they're": "they are",
    "i've": "i have",
    "i'll": "i will",
    "i'd": "i would",
    "don't": "do not",
    "doesn't": "does not",
    "didn't": "did not",
    "can't": "cannot",
    "won't": "will not",
    "isn't": "is not",
    "aren't": "are not",
    "wasn't": "was not",
}
_SPELLING = {"ok": "okay", "alright": "all right", "e-mail": "email", "emails": "emails"}

_AMPM = re.compile(r"\b([ap])\.?\s?m\b\.?", re.IGNORECASE)
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_MONEY = re.compile(r"[$£€](\d+(?:\.\d+)?)")
_CURRENCY = {"$": "dollars", "£": "pounds", "€": "euros"}
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_THOUSANDS = re.compile(r"\b(\d{1,3}(?:,\d{3})+)\b")
_INTEGER = re.compile(r"\d+")
_PUNCT = re.compile(r"[^\w\s']|_")
_QUOTES = re.compile(r"(?<!\w)'|'(?!\w)")


def spoken_form(text: str) -> str:
    """Lower-case words as spoken: digits, times, ordinals and symbols spelled out, no
    punctuation except apostrophes inside words, single spaces."""
    s = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    s = s.replace("&", " and ").replace("%", " percent").replace("°", " degrees ")
    s = _MONEY.sub(
        lambda m: f"{m.group(1)} " + _CURRENCY[m.group(0)[0]],
        s,
    )
    s = _AMPM.sub(lambda m: f" {m.group(1).lower()}m", s)
    s = _TIME.sub(lambda m: _time(m.group(1), m.group(2)), s)
    s = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), s)
    s = _ORDINAL.sub(lambda m: _ordinal(int(m.group(1))), s)
    s = _DECIMAL.sub(lambda m: _decimal(m.group(1), m.group(2)), s)
    s = re.sub(r"(\d)([a-zA-Z])", r"\1 \2", s)
    s = _INTEGER.sub(lambda m: f" {number_to_words(int(m.group(0)))} ", s)
    s = s.lower().replace("-", " ")
    s = _PUNCT.sub(" ", s)
    s = _QUOTES.sub(" ", s)
    return " ".join(s.split())


def normalize_for_wer(text: str) -> str:
    """`spoken_form` plus contractions expanded and a few spellings unified."""
    words = []
    for w in spoken_form(text).split():
        w = _SPELLING.get(w, w)
        words.append(_CONTRACTIONS.get(w, w))
    return " ".join(words)
