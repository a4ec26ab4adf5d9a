"""Detectors of personal data that need no model: e-mail addresses, phone numbers, payment
card numbers (Luhn-checked) and long digit strings, written or spoken ("five five five ...",
"jane dot doe at gmail dot com"), plus an optional gazetteer of first names.

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
}
# Written, or half spoken as ASR gives it: "jj.nzt@yahoo dot com", "johndoe@yahoocom".
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:(?:\.| dot )[\w-]+)*")
_SPOKEN_EMAIL = re.compile(
    r"\b[\w-]+(?: (?:dot|underscore|dash) [\w-]+)* at [\w-]+(?: dot [\w-]+)*"
    r" dot (?:com|org|net|edu|gov|io|co|uk|de|fr)\b",
    re.IGNORECASE,
)
# A run of digits with single separators between them (spaces, dashes, dots, brackets).
_DIGIT_RUN = re.compile(r"(?<![\w@.])\+?\(?\d(?:[ ().-]{0,2}\d)*(?![\w@])")
_SPOKEN_DIGIT = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|double \w+)"
_SPOKEN_RUN = re.compile(rf"\b{_SPOKEN_DIGIT}(?:[ ,-]+{_SPOKEN_DIGIT}){{6,}}\b", re.IGNORECASE)
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
        if "phone" in wanted:
            found += [(m.start(), m.end(), "phone_number") for m in _SPOKEN_RUN.finditer(text)]
    return found


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
