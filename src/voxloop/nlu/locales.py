"""Which locales a model serves, and the locale a request is answered in.

A saved model's manifest lists the locales of its training data (``locales``) and the one
it answers in when a request names none (``default_locale``). A request may name a locale
as the model spells it (``de-DE``), in another case or with ``_`` (``de_de``), or by its
language alone (``de``) when the model serves exactly one locale of that language — what
Home Assistant sends. Anything else is refused with `UnsupportedLocale`, naming the locales
the model serves: a model is never asked to guess at a language it was not trained on.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from voxloop.errors import VoxloopError
from voxloop.schema import DEFAULT_LOCALE, Parse

__all__ = [
    "UnsupportedLocale",
    "default_locale",
    "majority_locale",
    "model_locales",
    "resolve_locale",
    "with_locale",
]


class UnsupportedLocale(VoxloopError):
    """A request names a locale the model does not serve."""

    def __init__(self, locale: str, served: Sequence[str]) -> None:
        self.locale = locale
        self.served = list(served)
        super().__init__(
            f"locale {locale!r} is not served by this model "
            f"(it serves: {', '.join(self.served) or 'none'})"
        )


def model_locales(manifest: Mapping[str, Any]) -> list[str]:
    """The locales a model's manifest says it serves."""
    return [str(x) for x in manifest.get("locales") or []]


def default_locale(manifest: Mapping[str, Any]) -> str:
    """The locale a model answers in when a request names none."""
    named = manifest.get("default_locale")
    if isinstance(named, str) and named:
        return named
    served = model_locales(manifest)
    return majority_locale(served) if served else DEFAULT_LOCALE


def majority_locale(locales: Iterable[str]) -> str:
    """The most frequent locale (ties: `DEFAULT_LOCALE` if among them, else the first by
    name); `DEFAULT_LOCALE` when there is none."""
    counts = Counter(locales)
    if not counts:
        return DEFAULT_LOCALE
    top = max(counts.values())
    tied = sorted(code for code, n in counts.items() if n == top)
    return DEFAULT_LOCALE if DEFAULT_LOCALE in tied else tied[0]


def _key(code: str) -> str:
    return code.strip().replace("_", "-").lower()


def resolve_locale(requested: str | None, served: Sequence[str], default: str) -> str:
    """The served locale ``requested`` names (``default`` when it is ``None``).

    Raises `UnsupportedLocale` when the model does not serve it. A model that lists no
    locales accepts any.
    """
    if requested is None:
        return default
    if not served:
        return requested
    wanted = _key(requested)
    for code in served:
        if _key(code) == wanted:
            return code
    if "-" not in wanted:
        same_language = [c for c in served if _key(c).split("-")[0] == wanted]
        if len(same_language) == 1:
            return same_language[0]
    raise UnsupportedLocale(requested, served)


def with_locale(parses: Sequence[Parse], locale: str) -> list[Parse]:
    """The parses, each labelled with ``locale``."""
    return [p if p.locale == locale else dataclasses.replace(p, locale=locale) for p in parses]
