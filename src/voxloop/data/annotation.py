"""The inline ``[type : value]`` slot annotation of HWU64, SLURP and MASSIVE.

``"wake me up at [time : five am]"`` is the text ``"wake me up at five am"`` with one span
``time`` over ``"five am"``. Three corpora write it:

- HWU64 ``answer_annotation`` (plain text in ``answer_from_anno``),
- SLURP ``sentence_annotation`` (plain text in ``sentence``),
- MASSIVE ``annot_utt`` (plain text in ``utt``).

Parsing tolerates any spacing around the ``:`` and inside the brackets (``[date:today]``,
``[ date : today ]``); the value is everything after the first ``:``, stripped, so
``[time : 10:30]`` is a ``time`` of ``"10:30"``. Nested brackets, an unclosed ``[``, a
stray ``]``, a slot without ``:``, an empty type or value and a type with spaces are
errors that name the column.

The annotation and the plain-text field do not always agree, and :func:`reconcile` carries
the spans over when they differ only in whitespace or letter case:

- MASSIVE ja-JP and zh-CN (about 21,000 rows) put spaces around every bracket that the
  unspaced ``utt`` does not have (``"[date : 今週] は"`` for ``"今週は"``);
- SLURP writes some annotations with capitals the lower-cased ``sentence`` lacks
  (52 rows of devel+test, ``"this [date : Friday]"``).

Each reader decides what a real disagreement means (see its docstring).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path

from voxloop.errors import DataError
from voxloop.schema import Span

__all__ = ["format_annotation", "parse_annotation", "reconcile"]


def parse_annotation(
    annotated: str,
    *,
    file: str | Path | None = None,
    line: int | None = None,
    field: str | None = None,
) -> tuple[str, tuple[Span, ...]]:
    """Split an annotated string into its plain text and character spans.

    Text outside brackets is kept as written (no whitespace is collapsed), so for every
    span ``text[span.start:span.end] == span.value``. ``file``, ``line`` and ``field`` only
    label the ``DataError`` raised for a malformed annotation.
    """

    def fail(problem: str) -> DataError:
        return DataError(f"{problem} in {annotated!r}", file=file, line=line, field=field)

    pieces: list[str] = []
    spans: list[Span] = []
    length = 0
    pos = 0
    while True:
        opening = annotated.find("[", pos)
        closing = annotated.find("]", pos)
        if closing != -1 and (opening == -1 or closing < opening):
            raise fail(f"']' at column {closing + 1} closes no '['")
        if opening == -1:
            pieces.append(annotated[pos:])
            break
        if closing == -1:
            raise fail(f"'[' at column {opening + 1} is never closed")
        nested = annotated.find("[", opening + 1, closing)
        if nested != -1:
            raise fail(f"'[' at column {nested + 1} is nested inside the slot at {opening + 1}")
        literal = annotated[pos:opening]
        pieces.append(literal)
        length += len(literal)
        inner = annotated[opening + 1 : closing]
        label, colon, value = inner.partition(":")
        label, value = label.strip(), value.strip()
        where = f"slot at column {opening + 1}"
        if not colon:
            raise fail(f"{where} has no ':' between type and value")
        if not label:
            raise fail(f"{where} has an empty type")
        if any(c.isspace() for c in label):
            raise fail(f"{where} has a type with spaces ({label!r})")
        if not value:
            raise fail(f"{where} has an empty value")
        spans.append(Span(length, length + len(value), label, value))
        pieces.append(value)
        length += len(value)
        pos = closing + 1
    return "".join(pieces), tuple(spans)


def format_annotation(text: str, spans: Sequence[Span]) -> str:
    """Write ``text`` with its spans inline as ``[type : value]`` (spans in text order).

    The inverse of :func:`parse_annotation` for spans whose value has no brackets and no
    leading or trailing whitespace.
    """
    out: list[str] = []
    pos = 0
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        out.append(text[pos : span.start])
        out.append(f"[{span.label} : {text[span.start : span.end]}]")
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def reconcile(text: str, spans: Sequence[Span], plain: str) -> tuple[str, tuple[Span, ...]] | None:
    """Carry spans over ``text`` onto ``plain`` when the two differ only in spacing or case.

    Returns ``(plain, spans over plain)``: each span covers the same non-space characters
    it covered in ``text`` and takes its value from ``plain``. Returns ``None`` when the
    two strings differ in anything else (a word changed, added or dropped).
    """
    if text == plain:
        return plain, tuple(spans)
    text_at = [i for i, c in enumerate(text) if not c.isspace()]
    plain_at = [i for i, c in enumerate(plain) if not c.isspace()]
    if len(text_at) != len(plain_at):
        return None
    for i, j in zip(text_at, plain_at, strict=True):
        if text[i] != plain[j] and text[i].lower() != plain[j].lower():
            return None
    moved: list[Span] = []
    for span in spans:
        first = bisect_left(text_at, span.start)
        last = bisect_left(text_at, span.end) - 1
        if last < first:  # a span of whitespace only: nothing to carry over
            return None
        start, end = plain_at[first], plain_at[last] + 1
        moved.append(Span(start, end, span.label, plain[start:end], span.confidence))
    return plain, tuple(moved)
