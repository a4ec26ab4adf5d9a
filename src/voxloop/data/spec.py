"""Corpus specs: ``FORMAT:PATH`` strings naming a corpus on disk, read by one call.

========================  ==========================================================
``bio:DIR``               BIO folders (``snips:DIR`` and ``atis:DIR`` are aliases)
``hwu64:DIR``             HWU64 fold 1 (``kfold1_train.csv``, ``kfold1_test.csv``)
``slurp:DIR``             SLURP ``train``/``devel``/``test.jsonl``
``massive:FILE_OR_DIR``   MASSIVE official JSON lines (``locales`` filters)
``jsonl:FILE``            voxloop's own JSON lines
``hass:LANG``             Home Assistant intents expanded for one language
========================  ==========================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from voxloop.data.bio import read_bio
from voxloop.data.corpus import Corpus
from voxloop.data.hwu64 import read_hwu64
from voxloop.data.jsonl import read_jsonl
from voxloop.data.massive import read_massive
from voxloop.data.slurp import read_slurp
from voxloop.errors import DataError

__all__ = ["FORMATS", "load_corpus", "parse_spec"]

FORMATS = ("bio", "snips", "atis", "hwu64", "slurp", "massive", "jsonl", "hass")

_PATH_READERS: dict[str, Callable[..., Corpus]] = {
    "bio": read_bio,
    "snips": read_bio,
    "atis": read_bio,
    "hwu64": read_hwu64,
    "slurp": read_slurp,
    "jsonl": read_jsonl,
}


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``FORMAT:PATH`` into ``(format, path)``; a ``DataError`` lists the formats."""
    fmt, colon, where = spec.partition(":")
    fmt = fmt.strip().lower()
    formats = ", ".join(FORMATS)
    if not colon:
        raise DataError(f"corpus spec {spec!r} is not FORMAT:PATH (formats: {formats})")
    if fmt not in FORMATS:
        raise DataError(f"unknown corpus format {fmt!r} in {spec!r} (formats: {formats})")
    if not where.strip():
        what = "language" if fmt == "hass" else "path"
        raise DataError(f"corpus spec {spec!r} names no {what} after '{fmt}:'")
    return fmt, where.strip()


def load_corpus(
    spec: str,
    *,
    strict: bool = True,
    locales: Sequence[str] | None = None,
) -> Corpus:
    """Read the corpus a ``FORMAT:PATH`` spec names; the corpus keeps ``spec`` as its name.

    ``strict=False`` skips bad records and lists every problem in ``Corpus.problems``.
    ``locales`` filters a MASSIVE corpus and is an error for any other format.
    """
    fmt, where = parse_spec(spec)
    if locales is not None and fmt != "massive":
        raise DataError(f"locales apply only to massive corpora, not {fmt!r}", file=spec)
    if fmt == "hass":
        from voxloop.data.hass import read_hass

        corpus = read_hass(where, strict=strict)
    else:
        path = Path(where).expanduser()
        if not path.exists():
            raise DataError(f"{fmt} corpus path does not exist", file=path)
        if fmt == "massive":
            corpus = read_massive(path, strict=strict, locales=locales)
        else:
            corpus = _PATH_READERS[fmt](path, strict=strict)
    return dataclasses.replace(corpus, spec=spec)
