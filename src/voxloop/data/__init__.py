"""Corpora on disk -> ``Utterance``s: one reader per format, and ``FORMAT:PATH`` specs.

Every reader returns a :class:`Corpus`; ``strict=True`` raises a ``DataError`` naming the
file, line and field of the first bad record, ``strict=False`` skips bad records and lists
them all in ``Corpus.problems``.
"""

from voxloop.data.annotation import format_annotation, parse_annotation, reconcile
from voxloop.data.bio import read_bio
from voxloop.data.check import check_corpus, corpus_stats, format_problems, format_stats
from voxloop.data.corpus import Corpus
from voxloop.data.hwu64 import read_hwu64
from voxloop.data.jsonl import read_jsonl, write_jsonl
from voxloop.data.massive import read_massive
from voxloop.data.slurp import read_slurp
from voxloop.data.spec import FORMATS, load_corpus

__all__ = [
    "FORMATS",
    "Corpus",
    "check_corpus",
    "corpus_stats",
    "format_annotation",
    "format_problems",
    "format_stats",
    "load_corpus",
    "parse_annotation",
    "read_bio",
    "read_hwu64",
    "read_jsonl",
    "read_massive",
    "read_slurp",
    "reconcile",
    "write_jsonl",
]
