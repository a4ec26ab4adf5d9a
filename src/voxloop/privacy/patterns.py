"""Detectors of personal data that need no model: e-mail addresses, phone numbers, payment
card numbers (Luhn-checked), long digit strings, IBANs and what follows "password" or "pin",
written or spoken ("555 867 five three oh nine", "jane dot doe at bluewin dot ch"), plus an
optional gazetteer of first names.

Each detector returns ``(start, end, label)`` character spans over the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from voxloop.errors import ConfigError

__all__ = ["PATTERN_LABELS", "find_names", "find_patterns", "first_names", "luhn_valid"]

Found = tuple[int, int, str]
PATTERN_LABELS = {
    "email": "email",
    "phone": "phone_number",
    "card": "card_number",
    "digits": "number",
    "iban": "bank_account",
    "secret": "secret",
}
# Written, or half spoken as ASR gives it: "jj.nzt@yahoo dot com", "johndoe@yahoocom".
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:(?:\.| dot )[\w-]+)*")
_SPOKEN_EMAIL = re.compile(
    r"\b[\w-]+(?: (?:dot|underscore|dash) [\w-]+)* at [\w-]+(?: dot [\w-]+)*"
    r" dot (?:com|org|net|edu|gov|info|biz|io|co|me|[a-z]{2})\b",
    re.IGNORECASE,
)
# A run of digits with single separators between them (spaces, dashes, dots, brackets).
_DIGIT_RUN = re.compile(r"(?<![\w@.])\+?\(?\d(?:[ ().-]{0,2}\d)*(?![\w@])")
# Digits glued to letters ("callme5558675309"): the run above stops at a letter.
_GLUED = re.compile(r"(?<=[^\W\d_])\d{7,}|\d{7,}(?=[^\W\d_])")
# An IBAN as written: country, check digits, then groups of four (spaced or not).
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
# The value after "password", "pin" and the like.
_SECRET = re.compile(
    r"\b(?:password|passcode|passphrase|pin(?: code| number)?|security code)"
    r"(?: is|:|=)? +([^\s,;]+)",
    re.IGNORECASE,
)
# Digits as spoken, alone or mixed with written ones: how many digits each word stands for.
_DIGIT_WORDS = {
    **dict.fromkeys("zero oh o one two three four five six seven eight nine".split(), 1),
    **dict.fromkeys(
        "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
        " twenty thirty forty fifty sixty seventy eighty ninety hundred double".split(),
        2,
    ),
    "triple": 3,
}
_TENS = frozenset("twenty thirty forty fifty sixty seventy eighty ninety".split())
_NUMBER_TOKEN = re.compile(r"[^\W\d_]+|\d+")
_NUMBER_GAP = re.compile(r"[ ,.()+-]*")
_WORD = re.compile(r"\w+")


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` passes the Luhn checksum of payment card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_patterns(text: str, patterns: Iterable[str], *, min_digits: int = 7) -> list[Found]:
    """Spans of ``text`` matched by the named detectors (see `PATTERN_LABELS`)."""
    wanted = set(patterns)
    found: list[Found] = []
    if "email" in wanted and ("@" in text or " at " in text):
        found += [(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
        found += [(m.start(), m.end(), "email") for m in _SPOKEN_EMAIL.finditer(text)]
    if wanted & {"phone", "card", "digits"}:
        for m in _DIGIT_RUN.finditer(text):
            n = sum(c.isdigit() for c in m.group())
            if n < 7 and n < min_digits:
                continue
            digits = re.sub(r"\D", "", m.group())
            if "card" in wanted and 13 <= n <= 19 and luhn_valid(digits):
                found.append((m.start(), m.end(), "card_number"))
            elif "phone" in wanted and 7 <= n <= 15:
                found.append((m.start(), m.end(), "phone_number"))
            elif "digits" in wanted and n >= min_digits:
                found.append((m.start(), m.end(), "number"))
        for m in _GLUED.finditer(text):
            n = len(m.group())
            if "phone" in wanted and n <= 15:
                found.append((m.start(), m.end(), "phone_number"))
            elif "digits" in wanted and n >= min_digits:
                found.append((m.start(), m.end(), "number"))
        if "phone" in wanted:
            found += [(a, b, "phone_number") for a, b in _spoken_runs(text)]
    if "iban" in wanted:
        for m in _IBAN.finditer(text):
            if sum(c.isdigit() for c in m.group()) >= 10:
                found.append((m.start(), m.end(), "bank_account"))
    if "secret" in wanted:
        found += [(m.start(1), m.end(1), "secret") for m in _SECRET.finditer(text)]
    return found


def _spoken_runs(text: str, least: int = 7) -> list[tuple[int, int]]:
    """Runs of number words and digit groups ("555 867 five three oh nine", "fifty three")
    that stand for at least ``least`` digits and hold at least one word (written-only runs
    are the digit patterns' own)."""
    runs: list[tuple[int, int]] = []
    start = end = digits = 0
    spoken = tens = False
    for m in [*_NUMBER_TOKEN.finditer(text), None]:
        token = m.group().lower() if m is not None else ""
        joined = m is not None and _NUMBER_GAP.fullmatch(text, end, m.start()) is not None
        value = len(token) if token.isdigit() else _DIGIT_WORDS.get(token, 0)
        if not value or not (joined or digits == 0):
            if spoken and digits >= least:
                runs.append((start, end))
            digits, spoken, tens = 0, False, False
            if not value:
                continue
        if digits == 0:
            start = m.start() if m is not None else 0
        # a unit after a tens word adds no digit ("fifty three" is two digits)
        value = 0 if tens and _DIGIT_WORDS.get(token) == 1 and token not in ("oh", "o") else value
        digits += value
        spoken = spoken or not token.isdigit()
        tens = token in _TENS
        end = m.end() if m is not None else end
    return runs


@cache
def first_names() -> frozenset[str]:
    """US census first names (the ``names`` package's lists), lower-cased."""
    try:
        import names
    except ImportError:
        raise ConfigError("names = true needs the names gazetteer: pip install names") from None
    folder = Path(names.__file__).parent
    out: set[str] = set()
    for file in ("dist.male.first", "dist.female.first"):
        for line in (folder / file).read_text().splitlines():
            if line.strip():
                out.add(line.split()[0].lower())
    return frozenset(out - _COMMON_WORDS)


def find_names(text: str, gazetteer: frozenset[str]) -> list[Found]:
    """Words of ``text`` that are in ``gazetteer`` (lower-cased), labelled ``person``."""
    return [
        (m.start(), m.end(), "person")
        for m in _WORD.finditer(text)
        if m.group().lower() in gazetteer
    ]


# Census first names that are also everyday English words in voice commands: matching them
# would redact "will", "may", "june" and "rose" everywhere.
_COMMON_WORDS = frozenset(
    """
    will may june april august art bill mark joy hope faith grace rose summer dawn sunny
    carol pat sue chase page ray lane son major young long brown green white gray grey
    rich dell don jack pearl ruby amber crystal jade ivy holly iris lily daisy violet
    robin jay star hunter cook baker carter mason miller fisher parker porter an in
    so my me ma al ed eve deb jan kay lee max sky storm rain snow penny sally tom
    frank sherry brandy candy ginger honey sandy glen dale forest cliff gene guy
    jean bob buck rod roy sol van vi wade ward warren way wes win
    """.split()
)
