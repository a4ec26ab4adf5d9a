"""The Home Assistant intent corpus, expanded into labelled utterances: the embedded default.

The sentence templates of the ``home-assistant-intents`` package (CC BY 4.0; ~42 intents in
~65 languages) are parsed with ``hassil`` and expanded here into ``Utterance``s whose slots
are character spans. hassil's own sampler gives sentences without spans and enumerates every
combination (which runs out of memory for English), so this module compiles each template
once into a small tree and draws from it at random with a seeded generator, recording the
span of every ``{list}`` it fills.

What a corpus is made of, and the decisions behind it:

- **Slot values.** Lists defined by the intents (colours, states, number ranges) come from
  the intents. The lists Home Assistant fills from the user's own home (``area``, ``floor``,
  ``name``) and the free-text wildcard lists (``search_query``, ``message``,
  ``shopping_list_item``, ``todo_list_item``, ``timer_name``, ``timer_command``, ``zone``)
  come from a small demo home per language, stored as data in ``hass_home/<lang>.json``
  (``en``, ``de``, ``fr``, ``es``). Other languages use the English home, and a language's
  home falls back to the English one for any list it leaves out. A ``{name}`` in a template
  whose block requires entity domains (``requires_context: domain``) is filled only with
  demo-home names of those domains, so "open the {name}" names a cover, not a lamp.
- **Numbers** are digits; where the range allows number words and ``unicode-rbnf`` knows the
  language, one integer in five is spelled out ("twenty-one", "einundzwanzig").
- **Text** is lowercased, character by character (a character whose lowercase form is longer
  is kept as is), for every language: the templates mix cases inconsistently and speech
  recognisers emit lowercase. Whitespace runs collapse to one space and the text is
  stripped; punctuation is kept as the templates give it. Every span satisfies
  ``text[start:end] == span.value``, with no surrounding whitespace.
- **Sampling.** Up to ``per_intent`` distinct texts per intent; a template is drawn
  uniformly, then each alternative uniformly and each optional part with probability 1/2.
  Sampling stops early when many draws in a row bring nothing new, so an intent with fewer
  distinct sentences gives fewer. The generator is seeded per intent, so the sentences of
  an intent with a smaller ``per_intent`` are the first ones drawn with a larger one. A text
  drawn under two intents is dropped from both: its label would be a coin flip.
- **Labels.** ``intent`` is the Home Assistant intent name (``HassTurnOn``); ``domain`` is a
  coarse domain per intent (``INTENT_DOMAINS``); ``locale`` maps the language to a locale
  (``en`` -> ``en-US``, MASSIVE's codes where it has one); ``id`` is
  ``hass-<lang>-<hash of the text>``, so a sentence keeps its id across seeds and sizes.
- **Splits** ``train``/``dev``/``test`` (70/10/20) by a stable hash of the text: a sentence is
  in one split only, and its split depends neither on the seed nor on ``per_intent``.
- **strict.** A template that needs a list or expansion rule that neither the intents nor
  the demo home define raises a ``DataError`` (naming intent and list) when ``strict``;
  otherwise the template is skipped and the problem listed in ``Corpus.problems``. A draw
  whose slot would come out empty (e.g. an empty list value) is never emitted: it is simply
  redrawn, in both modes, as it is a sampling outcome rather than a fault of the data.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from voxloop.data.corpus import Corpus
from voxloop.errors import ConfigError, DataError
from voxloop.schema import Span, Utterance

if TYPE_CHECKING:  # hassil is imported lazily: importing it costs ~0.2 s
    from hassil.expression import Expression
    from hassil.intents import IntentData, Intents, SlotList

__all__ = [
    "INTENT_DOMAINS",
    "SPLIT_PERCENT",
    "DemoHome",
    "demo_home",
    "hass_intents",
    "hass_languages",
    "hass_locale",
    "hass_slot_lists",
    "read_hass",
]

#: Share of sentences per split, in percent of the text-hash space.
SPLIT_PERCENT: Mapping[str, int] = {"train": 70, "dev": 10, "test": 20}

#: The coarse domain of each Home Assistant intent.
INTENT_DOMAINS: Mapping[str, str] = {
    "HassTurnOn": "devices",
    "HassTurnOff": "devices",
    "HassToggle": "devices",
    "HassGetState": "devices",
    "HassLightSet": "lights",
    "HassClimateGetTemperature": "climate",
    "HassClimateSetTemperature": "climate",
    "HassClimateSetFanMode": "climate",
    "HassFanSetSpeed": "climate",
    "HassSetPosition": "cover",
    "HassMediaNext": "media",
    "HassMediaPrevious": "media",
    "HassMediaPause": "media",
    "HassMediaUnpause": "media",
    "HassMediaSearchAndPlay": "media",
    "HassMediaPlayerMute": "media",
    "HassMediaPlayerUnmute": "media",
    "HassSetVolume": "media",
    "HassSetVolumeRelative": "media",
    "HassStartTimer": "timers",
    "HassCancelTimer": "timers",
    "HassCancelAllTimers": "timers",
    "HassIncreaseTimer": "timers",
    "HassDecreaseTimer": "timers",
    "HassPauseTimer": "timers",
    "HassUnpauseTimer": "timers",
    "HassTimerStatus": "timers",
    "HassListAddItem": "lists",
    "HassListCompleteItem": "lists",
    "HassListRemoveItem": "lists",
    "HassShoppingListAddItem": "lists",
    "HassShoppingListCompleteItem": "lists",
    "HassShoppingListRemoveItem": "lists",
    "HassGetWeather": "weather",
    "HassVacuumStart": "vacuum",
    "HassVacuumReturnToBase": "vacuum",
    "HassVacuumCleanArea": "vacuum",
    "HassLawnMowerStartMowing": "lawn_mower",
    "HassLawnMowerDock": "lawn_mower",
    "HassGetCurrentDate": "datetime",
    "HassGetCurrentTime": "datetime",
    "HassBroadcast": "general",
    "HassNevermind": "general",
    "HassRespond": "general",
}

# For an intent missing from INTENT_DOMAINS: its most common Home Assistant entity domain.
_ENTITY_DOMAINS: Mapping[str, str] = {
    "light": "lights",
    "climate": "climate",
    "fan": "climate",
    "cover": "cover",
    "valve": "cover",
    "media_player": "media",
    "todo": "lists",
    "weather": "weather",
    "vacuum": "vacuum",
    "lawn_mower": "lawn_mower",
}

# Locales MASSIVE uses where it has the language; a language with a region keeps it.
_LOCALES: Mapping[str, str] = {
    "af": "af-ZA", "ar": "ar-SA", "bg": "bg-BG", "bn": "bn-BD", "ca": "ca-ES", "cs": "cs-CZ",
    "cy": "cy-GB", "da": "da-DK", "de": "de-DE", "el": "el-GR", "en": "en-US", "es": "es-ES",
    "et": "et-EE", "eu": "eu-ES", "fa": "fa-IR", "fi": "fi-FI", "fr": "fr-FR", "ga": "ga-IE",
    "gl": "gl-ES", "gu": "gu-IN", "he": "he-IL", "hi": "hi-IN", "hr": "hr-HR", "hu": "hu-HU",
    "hy": "hy-AM", "id": "id-ID", "is": "is-IS", "it": "it-IT", "ja": "ja-JP", "ka": "ka-GE",
    "kn": "kn-IN", "ko": "ko-KR", "kw": "kw-GB", "lb": "lb-LU", "lt": "lt-LT", "lv": "lv-LV",
    "ml": "ml-IN", "mn": "mn-MN", "ms": "ms-MY", "nb": "nb-NO", "ne": "ne-NP", "nl": "nl-NL",
    "pa": "pa-IN", "pl": "pl-PL", "pt": "pt-PT", "ro": "ro-RO", "ru": "ru-RU", "sk": "sk-SK",
    "sl": "sl-SI", "sr": "sr-RS", "sr-Latn": "sr-Latn-RS", "sv": "sv-SE", "sw": "sw-KE",
    "ta": "ta-IN", "te": "te-IN", "th": "th-TH", "tr": "tr-TR", "uk": "uk-UA", "ur": "ur-PK",
    "vi": "vi-VN",
}  # fmt: skip

_FALLBACK_HOME = "en"
_HOME_FORMAT = "voxloop-hass-home/1"
_WORDS_PROBABILITY = 0.2
_FRACTION_PROBABILITY = 0.3
_MAX_RULE_DEPTH = 64


# --------------------------------------------------------------------------- languages


def hass_languages() -> list[str]:
    """The languages ``home-assistant-intents`` ships templates for (``en``, ``de-CH``, ...)."""
    from home_assistant_intents import get_languages

    return list(get_languages())


def _resolve_language(lang: str) -> tuple[str, str]:
    """``(hass language, locale)`` for a language or locale; ``DataError`` if unknown."""
    available = hass_languages()
    by_lower = {code.lower(): code for code in available}
    wanted = lang.strip().replace("_", "-")
    code = by_lower.get(wanted.lower())
    if code is not None:
        return code, _LOCALES.get(code, code)
    base, _, region = wanted.partition("-")
    code = by_lower.get(base.lower())
    if code is not None and region:
        return code, f"{base.lower()}-{region}"
    raise DataError(
        f"no Home Assistant intents for language {lang!r}; "
        f"available: {', '.join(sorted(available))}",
        file=f"hass:{lang}",
    )


def hass_locale(lang: str) -> str:
    """The locale the utterances of ``read_hass(lang)`` carry (``en`` -> ``en-US``)."""
    return _resolve_language(lang)[1]


@lru_cache(maxsize=8)
def _intents(code: str) -> Intents:
    from hassil import Intents
    from home_assistant_intents import get_intents

    data = get_intents(code)
    if data is None:  # listed by the package but not shipped
        raise DataError(f"home-assistant-intents has no data for {code!r}", file=f"hass:{code}")
    return Intents.from_dict(data)


def _parse_templates(templates: Mapping[str, Any], code: str, spec: str) -> Intents:
    from hassil import Intents

    try:
        return Intents.from_dict({"language": code, **templates})
    except Exception as err:  # hassil raises KeyError, TypeError, ParseError, ...
        problem = f"not Home Assistant intents ({type(err).__name__}: {err})"
        raise DataError(problem, file=spec, field="templates") from err


def hass_intents(lang: str) -> Intents:
    """The parsed hassil ``Intents`` of a language (cached; do not modify)."""
    return _intents(_resolve_language(lang)[0])


# --------------------------------------------------------------------------- demo home


@dataclass(frozen=True)
class DemoHome:
    """The made-up home whose areas, floors and device names fill the templates."""

    language: str
    areas: tuple[str, ...]
    floors: tuple[str, ...]
    names: Mapping[str, tuple[str, ...]]
    """Entity names by Home Assistant domain (``light``, ``cover``, ``media_player``, ...)."""
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Values of the free-text (wildcard) lists: ``search_query``, ``message``, ..."""

    def values(self, list_name: str) -> tuple[str, ...]:
        """The values of one list (``area``, ``floor``, ``name`` or a wildcard list)."""
        if list_name == "area":
            return self.areas
        if list_name == "floor":
            return self.floors
        if list_name == "name":
            return tuple(name for names in self.names.values() for name in names)
        return self.lists.get(list_name, ())

    def names_for(self, domains: Sequence[str] | None) -> tuple[str, ...]:
        """Entity names of the given domains (all names for ``None``)."""
        if domains is None:
            return self.values("name")
        return tuple(name for domain in domains for name in self.names.get(domain, ()))


def _read_home_file(code: str) -> dict[str, Any] | None:
    resource = resources.files("voxloop.data").joinpath("hass_home", f"{code}.json")
    if not resource.is_file():
        return None
    where = f"voxloop/data/hass_home/{code}.json"
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON: {err.msg}", file=where, line=err.lineno) from err
    if not isinstance(data, dict) or data.get("format") != _HOME_FORMAT:
        raise DataError(f"not a demo home (expected format {_HOME_FORMAT!r})", file=where)
    for key in ("areas", "floors"):
        if not _is_strings(data.get(key, [])):
            raise DataError("must be a list of strings", file=where, field=key)
    for key in ("names", "lists"):
        table = data.get(key, {})
        if not isinstance(table, dict) or not all(_is_strings(v) for v in table.values()):
            raise DataError("must map names to lists of strings", file=where, field=key)
    return data


def _is_strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


@lru_cache(maxsize=16)
def _demo_home(code: str) -> DemoHome:
    fallback = _read_home_file(_FALLBACK_HOME) or {}
    own = _read_home_file(code) or _read_home_file(code.split("-")[0]) or {}
    return DemoHome(
        language=code,
        areas=tuple(own.get("areas") or fallback.get("areas", ())),
        floors=tuple(own.get("floors") or fallback.get("floors", ())),
        names={
            domain: tuple(names)
            for domain, names in {**fallback.get("names", {}), **own.get("names", {})}.items()
        },
        lists={
            name: tuple(values)
            for name, values in {**fallback.get("lists", {}), **own.get("lists", {})}.items()
        },
    )


def demo_home(lang: str) -> DemoHome:
    """The demo home of a language (its own file, else the English one)."""
    return _demo_home(_resolve_language(lang)[0])


def hass_slot_lists(lang: str) -> dict[str, SlotList]:
    """hassil slot lists of the demo home, for ``hassil.recognize`` over the same home.

    ``name`` values carry their entity domain as context, so blocks that require a domain
    match only names of that domain, as in Home Assistant.
    """
    from hassil.intents import TextSlotList

    home = demo_home(lang)
    return {
        "area": TextSlotList.from_strings(home.areas, allow_template=False, name="area"),
        "floor": TextSlotList.from_strings(home.floors, allow_template=False, name="floor"),
        "name": TextSlotList.from_tuples(
            [(n, n, {"domain": d}) for d, names in home.names.items() for n in names],
            allow_template=False,
            name="name",
        ),
    }


# --------------------------------------------------------------------------- compiled templates
# A template compiles once into a tree of the nodes below, with expansion rules inlined and
# every list resolved to its values; a draw walks the tree with a seeded generator, appending
# raw text pieces and marking which pieces each slot covers.


class _Draw:
    """One random expansion in progress: raw text pieces and slot marks over them."""

    __slots__ = ("language", "marks", "pieces", "rng")

    def __init__(self, rng: random.Random, language: str) -> None:
        self.rng = rng
        self.language = language
        self.pieces: list[str] = []
        self.marks: list[tuple[str, int, int]] = []  # (label, first piece, end piece)


class _Node(Protocol):
    def emit(self, draw: _Draw) -> None: ...


@dataclass(frozen=True, slots=True)
class _Text:
    text: str

    def emit(self, draw: _Draw) -> None:
        draw.pieces.append(self.text)


@dataclass(frozen=True, slots=True)
class _Seq:
    items: tuple[_Node, ...]

    def emit(self, draw: _Draw) -> None:
        for item in self.items:
            item.emit(draw)


@dataclass(frozen=True, slots=True)
class _Choice:
    items: tuple[_Node, ...]
    optional: bool = False

    def emit(self, draw: _Draw) -> None:
        if self.optional and draw.rng.random() < 0.5:
            return
        draw.rng.choice(self.items).emit(draw)


@dataclass(frozen=True, slots=True)
class _Perm:
    items: tuple[_Node, ...]

    def emit(self, draw: _Draw) -> None:
        order = list(self.items)
        draw.rng.shuffle(order)
        for item in order:
            item.emit(draw)


@dataclass(frozen=True, slots=True)
class _OneOf:
    values: tuple[str, ...]

    def emit(self, draw: _Draw) -> None:
        draw.pieces.append(draw.rng.choice(self.values))


@dataclass(frozen=True, slots=True)
class _Number:
    start: int
    stop: int
    step: int = 1
    fractions: tuple[float, ...] = ()
    digits: bool = True
    words: bool = False
    words_language: str | None = None

    def emit(self, draw: _Draw) -> None:
        rng = draw.rng
        number: float = rng.randrange(self.start, self.stop + 1, self.step)
        if self.fractions and number < self.stop and rng.random() < _FRACTION_PROBABILITY:
            number = round(number + rng.choice(self.fractions), 1)
        if (
            self.words
            and isinstance(number, int)
            and (not self.digits or rng.random() < _WORDS_PROBABILITY)
        ):
            spelled = _number_words(self.words_language or draw.language, number)
            if spelled:
                draw.pieces.append(rng.choice(spelled))
                return
        draw.pieces.append(str(number))


@dataclass(frozen=True, slots=True)
class _Slot:
    label: str
    body: _Node

    def emit(self, draw: _Draw) -> None:
        first = len(draw.pieces)
        self.body.emit(draw)
        draw.marks.append((self.label, first, len(draw.pieces)))


@lru_cache(maxsize=4096)
def _number_words(language: str, number: int) -> tuple[str, ...]:
    """The distinct cardinal spellings of a number, or ``()`` if the language has none."""
    from hassil.numbers import get_rbnf_engine
    from unicode_rbnf.engine import RbnfError  # hassil's number engine

    try:
        result = get_rbnf_engine(language).format_number(number)
    except (ValueError, RbnfError):  # no rules for the language or the number: digits
        return ()
    spellings = {
        text
        for ruleset, text in result.text_by_ruleset.items()
        if ruleset == "spellout-numbering" or ruleset.startswith("spellout-cardinal")
    }
    return tuple(sorted(s for s in spellings if s.strip()))


class _Unresolvable(Exception):
    """A template refers to a list or rule nobody defines."""


class _Compiler:
    """Compiles hassil expressions of one intent-data block into nodes."""

    def __init__(
        self,
        rules: Mapping[str, Any],
        lists: Mapping[str, SlotList],
        home: DemoHome,
        names: tuple[str, ...],
    ) -> None:
        from hassil import expression, intents

        self._x = expression
        self._i = intents
        self._rules = rules
        self._lists = lists
        self._home = home
        self._names = names
        self._rule_nodes: dict[str, _Node] = {}
        self._list_nodes: dict[str, _Node] = {}

    def compile(self, expr: Expression, depth: int = 0) -> _Node:
        x = self._x
        if depth > _MAX_RULE_DEPTH:
            raise _Unresolvable("expansion rules nested too deep (a cycle?)")
        if isinstance(expr, x.TextChunk):
            return _Text(expr.text)
        if isinstance(expr, x.Alternative):
            items = list(expr.items)
            if expr.is_optional:  # the parser appends the empty alternative
                items = [i for i in items if not (isinstance(i, x.TextChunk) and not i.text)]
                if not items:
                    return _Text("")
            return _Choice(tuple(self.compile(i, depth) for i in items), expr.is_optional)
        if isinstance(expr, x.Permutation):
            return _Perm(tuple(self.compile(i, depth) for i in expr.items))
        if isinstance(expr, x.Group):
            return _Seq(tuple(self.compile(i, depth) for i in expr.items))
        if isinstance(expr, x.RuleReference):
            return self._rule(expr.rule_name, depth)
        if isinstance(expr, x.ListReference):
            return _Slot(expr.slot_name, self._list(expr, depth))
        raise _Unresolvable(f"unknown template expression {type(expr).__name__}")

    def _rule(self, name: str, depth: int) -> _Node:
        node = self._rule_nodes.get(name)
        if node is None:
            rule = self._rules.get(name)
            if rule is None:
                raise _Unresolvable(f"expansion rule <{name}>")
            node = self._rule_nodes[name] = self.compile(rule.expression, depth + 1)
        return node

    def _list(self, ref: Any, depth: int) -> _Node:
        name: str = ref.list_name
        node = self._list_nodes.get(name)
        if node is not None:
            return node
        inline = ref.get_inline_range()
        slot_list = self._lists.get(name)
        i = self._i
        if inline is not None:
            node = _Number(inline[0], inline[1], inline[2])
        elif isinstance(slot_list, i.TextSlotList) and slot_list.values:
            node = _Choice(tuple(self.compile(v.text_in, depth + 1) for v in slot_list.values))
        elif isinstance(slot_list, i.RangeSlotList):
            node = _Number(
                slot_list.start,
                slot_list.stop,
                slot_list.step,
                tuple(i.RangeFractionType.get_fractions(slot_list.fraction_type)),
                slot_list.digits,
                slot_list.words,
                slot_list.words_language,
            )
        else:  # a wildcard, or a list Home Assistant fills from the home
            strings = self._names if name == "name" else self._home.values(name)
            if not strings:
                raise _Unresolvable(f"list {{{name}}}")
            node = _OneOf(strings)
        self._list_nodes[name] = node
        return node


def _required_domains(data: IntentData) -> tuple[str, ...] | None:
    value = data.requires_context.get("domain")
    if isinstance(value, Mapping):
        value = value.get("value")
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


# --------------------------------------------------------------------------- assembly


def _assemble(draw: _Draw) -> tuple[str, tuple[Span, ...]] | None:
    """Join the pieces (lowercased, whitespace collapsed) and map slot marks to spans."""
    chars: list[str] = []
    boundary = [0] * (len(draw.pieces) + 1)
    pending_space = False
    for index, piece in enumerate(draw.pieces):
        boundary[index] = len(chars)
        for char in piece:
            if char.isspace():
                pending_space = bool(chars)
                continue
            if pending_space:
                chars.append(" ")
                pending_space = False
            lower = char.lower()
            chars.append(lower if len(lower) == 1 else char)
    boundary[-1] = len(chars)
    text = "".join(chars)
    if not text:
        return None
    spans: list[Span] = []
    for label, first, end in draw.marks:
        start, stop = boundary[first], boundary[end]
        while start < stop and text[start] == " ":
            start += 1
        while stop > start and text[stop - 1] == " ":
            stop -= 1
        if start == stop:
            return None  # an empty slot cannot be labelled
        spans.append(Span(start, stop, label, text[start:stop]))
    spans.sort(key=lambda s: (s.start, s.end))
    for before, after in zip(spans, spans[1:], strict=False):
        if after.start < before.end:
            return None  # nested or overlapping slots: not a flat labelling
    return text, tuple(spans)


def _text_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


def _split_of(digest: bytes) -> str:
    bucket = int.from_bytes(digest, "big") % 100
    for name, percent in SPLIT_PERCENT.items():
        if bucket < percent:
            return name
        bucket -= percent
    return "test"


def _domain_of(intent_name: str, blocks: Sequence[IntentData]) -> str:
    known = INTENT_DOMAINS.get(intent_name)
    if known is not None:
        return known
    counts = Counter(d for block in blocks for d in block.domains if d in _ENTITY_DOMAINS)
    return _ENTITY_DOMAINS[counts.most_common(1)[0][0]] if counts else "general"


# --------------------------------------------------------------------------- the reader


def _templates(
    intent_name: str,
    blocks: Sequence[IntentData],
    intents: Intents,
    home: DemoHome,
    spec: str,
    strict: bool,
    problems: list[DataError],
) -> list[_Node]:
    templates: list[_Node] = []
    compilers: dict[object, _Compiler] = {}
    for block in blocks:
        names = home.names_for(_required_domains(block))
        key: object = names
        if block.expansion_rules or block.slot_lists:
            key = id(block)  # local rules or lists: nothing to share
        compiler = compilers.get(key)
        if compiler is None:
            compiler = compilers[key] = _Compiler(
                {**intents.expansion_rules, **block.expansion_rules},
                {**intents.slot_lists, **block.slot_lists},
                home,
                names,
            )
        for sentence in block.sentences:
            try:
                templates.append(compiler.compile(sentence.expression))
            except _Unresolvable as err:
                problem = (
                    f"template {sentence.text!r} needs {err}, which neither the intents "
                    "nor the demo home define"
                )
                if strict:
                    raise DataError(problem, file=spec, field=intent_name) from None
                problems.append(DataError(f"{problem}; skipped", file=spec, field=intent_name))
    return templates


def _sample(
    templates: Sequence[_Node], rng: random.Random, language: str, per_intent: int
) -> dict[str, tuple[Span, ...]]:
    """Up to ``per_intent`` distinct (text, spans), in the order first drawn."""
    found: dict[str, tuple[Span, ...]] = {}
    patience = max(1000, 5 * per_intent)  # draws in a row with nothing new: give up
    budget = 100 * per_intent + 2000
    misses = 0
    while len(found) < per_intent and misses < patience and budget > 0:
        budget -= 1
        draw = _Draw(rng, language)
        rng.choice(templates).emit(draw)
        result = _assemble(draw)
        if result is None or result[0] in found:
            misses += 1
            continue
        misses = 0
        found[result[0]] = result[1]
    return found


def read_hass(
    lang: str,
    *,
    strict: bool = True,
    per_intent: int = 200,
    seed: int = 0,
    templates: Mapping[str, Any] | None = None,
) -> Corpus:
    """The Home Assistant intent corpus of one language, expanded into labelled utterances.

    ``lang`` is a language of ``home-assistant-intents`` (``en``, ``de``, ``de-CH``, ...) or a
    locale of one (``en-GB`` reads ``en`` and labels the utterances ``en-GB``); an unknown
    one raises ``DataError`` listing the languages there are. ``per_intent`` caps the
    distinct sentences per intent; ``seed`` chooses which. The corpus has the splits
    ``train``, ``dev`` and ``test``; its ``spec`` is ``hass:<lang>``. ``templates`` expands
    your own intents instead of the shipped ones: a dict in Home Assistant's format (``intents``,
    optional ``lists`` and ``expansion_rules``), such as custom sentences. See the module
    docstring for how sentences, slots and splits are made.
    """
    if per_intent < 1:
        raise ConfigError(f"must be at least 1, got {per_intent}", key="per_intent")
    code, locale = _resolve_language(lang)
    spec = f"hass:{code}"
    intents = _intents(code) if templates is None else _parse_templates(templates, code, spec)
    home = _demo_home(code)
    problems: list[DataError] = []

    sampled: list[tuple[str, str, tuple[Span, ...]]] = []  # (intent, text, spans)
    intents_of: dict[str, set[str]] = {}
    for intent_name, intent in intents.intents.items():
        nodes = _templates(intent_name, intent.data, intents, home, spec, strict, problems)
        if not nodes:
            continue
        rng = random.Random(f"{seed}\x00{code}\x00{intent_name}")
        for text, spans in _sample(nodes, rng, code, per_intent).items():
            sampled.append((intent_name, text, spans))
            intents_of.setdefault(text, set()).add(intent_name)

    domains = {name: _domain_of(name, intent.data) for name, intent in intents.intents.items()}
    splits: dict[str, list[Utterance]] = {name: [] for name in SPLIT_PERCENT}
    for intent_name, text, spans in sampled:
        if len(intents_of[text]) > 1:
            continue  # the same words under two intents: no single right label
        digest = _text_hash(text)
        splits[_split_of(digest)].append(
            Utterance(
                text=text,
                intent=intent_name,
                slots=spans,
                domain=domains[intent_name],
                locale=locale,
                id=f"hass-{code}-{digest.hex()[:12]}",
            )
        )
    return Corpus(
        spec=spec,
        splits={name: tuple(utterances) for name, utterances in splits.items()},
        problems=tuple(problems),
    )
