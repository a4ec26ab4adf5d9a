"""What ``voxloop data check`` reports: a corpus's numbers and every problem in it.

:func:`corpus_stats` returns plain JSON-ready values; :func:`format_stats` and
:func:`format_problems` turn them into text for a terminal. Besides size and label counts,
the stats count three things worth knowing before training (informative, not errors):
ids used by more than one utterance of a locale, texts labelled with more than one intent,
and texts found in more than one split (leakage between train and test). Texts are
compared case- and spacing-insensitively, within a locale.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from voxloop.data.corpus import Corpus
from voxloop.data.spec import load_corpus
from voxloop.errors import DataError
from voxloop.schema import Utterance

__all__ = ["check_corpus", "corpus_stats", "format_problems", "format_stats"]


def check_corpus(spec: str, *, locales: Sequence[str] | None = None) -> Corpus:
    """Read a corpus leniently: every bad record is skipped and listed in ``problems``.

    Problems that stop the whole read (a missing path, an unknown format) still raise.
    """
    return load_corpus(spec, strict=False, locales=locales)


def corpus_stats(corpus: Corpus, *, top: int = 10) -> dict[str, Any]:
    """Counts per split and overall, the ``top`` most frequent labels, and overlap counts."""
    everything = [u for utterances in corpus.splits.values() for u in utterances]
    intents = Counter(u.intent for u in everything if u.intent is not None)
    slot_types = Counter(s.label for u in everything for s in u.slots)
    domains = Counter(u.domain for u in everything if u.domain is not None)

    ids = Counter((u.locale, u.id) for u in everything if u.id is not None)
    labels: dict[tuple[str, str], set[str]] = defaultdict(set)
    where: dict[tuple[str, str], set[str]] = defaultdict(set)
    for name, utterances in corpus.splits.items():
        for u in utterances:
            key = (u.locale, " ".join(u.text.casefold().split()))
            where[key].add(name)
            if u.intent is not None:
                labels[key].add(u.intent)
    return {
        "spec": corpus.spec,
        "splits": {name: _split_stats(utts) for name, utts in corpus.splits.items()},
        "total": _split_stats(everything),
        "top_intents": intents.most_common(top),
        "top_slot_types": slot_types.most_common(top),
        "top_domains": domains.most_common(top),
        "duplicate_ids": sum(1 for n in ids.values() if n > 1),
        "conflicting_texts": sum(1 for s in labels.values() if len(s) > 1),
        "texts_in_several_splits": sum(1 for s in where.values() if len(s) > 1),
        "problems": len(corpus.problems),
    }


def _split_stats(utterances: Sequence[Utterance]) -> dict[str, Any]:
    n = len(utterances)
    return {
        "utterances": n,
        "intents": len({u.intent for u in utterances if u.intent is not None}),
        "unlabelled": sum(1 for u in utterances if u.intent is None),
        "slot_types": len({s.label for u in utterances for s in u.slots}),
        "slots": sum(len(u.slots) for u in utterances),
        "domains": len({u.domain for u in utterances if u.domain is not None}),
        "locales": sorted({u.locale for u in utterances}),
        "mean_tokens": sum(len(u.text.split()) for u in utterances) / n if n else 0.0,
        "mean_chars": sum(len(u.text) for u in utterances) / n if n else 0.0,
    }


_COLUMNS = (
    ("utterances", "utterances"),
    ("intents", "intents"),
    ("slot_types", "slot types"),
    ("slots", "slots"),
    ("domains", "domains"),
    ("mean_tokens", "tokens/utt"),
    ("mean_chars", "chars/utt"),
)


def format_stats(stats: dict[str, Any]) -> str:
    """A terminal table of :func:`corpus_stats` output."""
    rows = [*stats["splits"].items(), ("total", stats["total"])]
    width = max(len("split"), *(len(name) for name, _ in rows))
    header = f"{'split':<{width}}" + "".join(f"  {title:>10}" for _, title in _COLUMNS)
    lines = [f"corpus {stats['spec']}", header + "  locales"]
    for name, split in rows:
        cells = "".join(f"  {_number(split[key]):>10}" for key, _ in _COLUMNS)
        lines.append(f"{name:<{width}}{cells}  {_locales(split['locales'])}")
    for key, title in (
        ("top_intents", "top intents"),
        ("top_slot_types", "top slot types"),
        ("top_domains", "top domains"),
    ):
        if stats[key]:
            lines.append(f"{title}: " + ", ".join(f"{k} {v:,}" for k, v in stats[key]))
    lines.append(
        f"ids used more than once: {stats['duplicate_ids']:,}; "
        f"texts with conflicting intents: {stats['conflicting_texts']:,}; "
        f"texts in several splits: {stats['texts_in_several_splits']:,}"
    )
    lines.append(f"problems: {stats['problems']:,}")
    return "\n".join(lines)


def format_problems(problems: Iterable[DataError], *, limit: int | None = 20) -> str:
    """One line per problem (``file:line [field]: problem``), at most ``limit`` of them."""
    problems = list(problems)
    if not problems:
        return "no problems"
    shown = problems if limit is None else problems[:limit]
    lines = [f"{len(problems):,} problem{'s' if len(problems) != 1 else ''}:"]
    lines += [f"  {p}" for p in shown]
    if len(shown) < len(problems):
        lines.append(f"  ... and {len(problems) - len(shown):,} more")
    return "\n".join(lines)


def _number(value: int | float) -> str:
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def _locales(codes: list[str]) -> str:
    return ", ".join(codes) if len(codes) <= 4 else f"{len(codes)} locales"
