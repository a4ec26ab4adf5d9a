"""BIO folders (SNIPS, ATIS, MASSIVE pl-PL as redistributed with JointBERT).

A corpus folder holds split folders ``train``, ``dev`` and ``test``; each has three files
with one utterance per line: ``seq.in`` (space-separated tokens), ``seq.out`` (one tag per
token: ``O``, ``B-type`` or ``I-type``) and ``label`` (the intent; ATIS multi-intent labels
such as ``atis_flight#atis_airfare`` are kept as one label).

The text is the tokens joined by single spaces: runs of spaces (SNIPS has about 1,400
lines with double spaces where punctuation was removed) and trailing spaces (SNIPS: 2,832
``seq.in`` and 14,484 ``seq.out`` lines) are not tokens. An ``I-type`` that does not follow
``B-type`` or ``I-type`` is an error: SNIPS, ATIS and MASSIVE pl-PL contain none, so one
in a user's file means a broken conversion rather than the conlleval habit of starting a
span with ``I-``. Utterances get ids ``split:line``.
"""

from __future__ import annotations

from pathlib import Path

from voxloop.data._reading import ProblemLog, locale_in_name, read_lines, require_dir
from voxloop.data.corpus import Corpus
from voxloop.errors import DataError
from voxloop.schema import DEFAULT_LOCALE, Span, Utterance

__all__ = ["BIO_FILES", "BIO_SPLITS", "read_bio", "spans_from_bio"]

BIO_SPLITS = ("train", "dev", "test")
BIO_FILES = ("seq.in", "seq.out", "label")


def read_bio(
    path: str | Path,
    *,
    strict: bool = True,
    locale: str | None = None,
) -> Corpus:
    """Read a BIO corpus folder (the split folders present among train, dev, test).

    ``locale`` defaults to a locale code in the folder's name (``massive-pl-PL`` gives
    ``pl-PL``), else ``en-US``. ``strict=False`` skips bad lines (and whole splits whose
    files are missing or of different lengths) and lists every problem in the corpus.
    """
    root = require_dir(path)
    if locale is None:
        locale = locale_in_name(root.resolve().name) or DEFAULT_LOCALE
    present = [name for name in BIO_SPLITS if (root / name).is_dir()]
    if not present:
        raise DataError(f"no split folders ({', '.join(BIO_SPLITS)}) in this BIO corpus", file=root)
    log = ProblemLog(strict)
    splits: dict[str, list[Utterance]] = {}
    for name in present:
        utterances = _read_split(root / name, name, locale, log)
        if utterances is not None:
            splits[name] = utterances
    return Corpus(spec=f"bio:{path}", splits=splits, problems=log.problems)


def _read_split(folder: Path, name: str, locale: str, log: ProblemLog) -> list[Utterance] | None:
    files = [folder / f for f in BIO_FILES]
    columns: list[list[str]] = []
    for file in files:
        try:
            columns.append(read_lines(file))
        except DataError as e:
            log.add(e)
    if len(columns) != len(files):
        return None
    counts = [len(c) for c in columns]
    if len(set(counts)) > 1:
        have = ", ".join(f"{f.name} {n}" for f, n in zip(files, counts, strict=True))
        log.add(DataError(f"files have different numbers of lines ({have})", file=folder))
        return None
    seq_in, seq_out, label = files
    utterances: list[Utterance] = []
    for number, (words, tags_line, intent) in enumerate(zip(*columns, strict=True), 1):
        try:
            tokens = words.split()
            if not tokens:
                raise DataError("empty text", file=seq_in, line=number)
            tags = tags_line.split()
            intent = intent.strip()
            if not intent:
                raise DataError("empty intent label", file=label, line=number)
            text, spans = spans_from_bio(tokens, tags, file=seq_out, line=number)
        except DataError as e:
            log.add(e)
            continue
        utterances.append(
            Utterance(text=text, intent=intent, slots=spans, locale=locale, id=f"{name}:{number}")
        )
    return utterances


def spans_from_bio(
    tokens: list[str],
    tags: list[str],
    *,
    file: str | Path | None = None,
    line: int | None = None,
) -> tuple[str, tuple[Span, ...]]:
    """The text (tokens joined by single spaces) and the character spans of BIO tags.

    A tag count that differs from the token count, a tag other than ``O``, ``B-type`` or
    ``I-type``, and an ``I-type`` that does not continue a ``type`` span raise a
    ``DataError`` (``file`` and ``line`` label it).
    """
    if len(tags) != len(tokens):
        raise DataError(
            f"{len(tokens)} tokens in seq.in but {len(tags)} tags", file=file, line=line
        )
    spans: list[Span] = []
    text = " ".join(tokens)
    pos = 0
    open_label: str | None = None
    previous = "O"
    start = end = 0
    for number, (token, tag) in enumerate(zip(tokens, tags, strict=True), 1):
        begin = pos
        pos += len(token) + 1
        if tag == "O":
            kind, label = "O", ""
        else:
            kind, dash, label = tag.partition("-")
            if kind not in ("B", "I") or not dash or not label:
                raise DataError(
                    f"tag {tag!r} (token {number}) is not O, B-type or I-type",
                    file=file,
                    line=line,
                )
        if kind == "I":
            if open_label != label:
                raise DataError(
                    f"tag {tag!r} (token {number}) follows {previous!r}, "
                    f"not B-{label} or I-{label}",
                    file=file,
                    line=line,
                )
            end = begin + len(token)
            previous = tag
            continue
        if open_label is not None:
            spans.append(Span(start, end, open_label, text[start:end]))
            open_label = None
        if kind == "B":
            open_label, start, end = label, begin, begin + len(token)
        previous = tag
    if open_label is not None:
        spans.append(Span(start, end, open_label, text[start:end]))
    return text, tuple(spans)
