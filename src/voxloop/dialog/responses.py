"""What the assistant can say, per intent, as data: one TOML file per domain, checked at load.

A domain file (see ``voxloop/dialog/domains/*.toml``)::

    domain = "weather"                 # required: the domain's name
    description = "..."                # optional
    confirm_below = 0.5                # optional: confirm intents parsed below this confidence
    [[confirm]]                        # optional: confirmation prompts for every intent here
    id = "plain"
    text = "Did you want the weather?"
    [[fallback]]                       # optional, in exactly one file of a catalog
    id = "sorry"
    text = "Sorry, I didn't get that."

    [intents.HassGetWeather]
    slots = ["name"]                   # slots the parser may fill for this intent
    results = ["temperature"]          # values the fulfilment supplies when rendering
    required = ["name"]                # required slots; a list inside means "any of these"
    confirm_below = 0.6                # optional override
    [[intents.HassGetWeather.responses]]   # required: the answer's variants
    id = "brief"
    text = "It's {temperature} in {name}."
    [[intents.HassGetWeather.confirm]]     # optional: overrides the domain's prompts
    id = "plain"
    text = "Do you want the weather for {name}?"
    [[intents.HassGetWeather.elicit.name]] # one prompt list per required slot (or group)
    id = "where"
    text = "For which city?"

Templates are ``str.format`` strings whose fields are plain names (``{name}``; ``{{`` for a
brace). A template can only be said when every field it names has a value, so loading
checks that each field is a declared slot or result of its intent (domain-level prompts name
none) and that every list keeps one template that can always be said: a response naming
only slots that are required on their own, prompts naming nothing. Unknown keys, wrong
types, duplicate ids and undeclared fields raise `ConfigError` naming the file and the key
path (``weather.toml:intents.HassGetWeather.responses[1].text``).
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from voxloop.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIRM_BELOW",
    "Catalog",
    "Domain",
    "IntentSpec",
    "Template",
    "load_catalog",
    "load_domain",
]

#: Confidence under which an intent is confirmed when its file does not say.
DEFAULT_CONFIRM_BELOW = 0.5
_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Template:
    """One variant of something to say; ``fields`` are the names it needs."""

    id: str
    text: str
    fields: frozenset[str]

    def render(self, values: Mapping[str, str]) -> str | None:
        """The text with its fields filled, or None when a field has no value."""
        if not self.fields <= values.keys():
            return None
        return self.text.format_map({f: values[f] for f in self.fields})


@dataclass(frozen=True, slots=True)
class IntentSpec:
    """What the dialog knows about one intent.

    ``required`` holds groups of slots; a group is satisfied when any of its slots is
    filled, and ``elicit`` maps the group's key (the slot listed under ``elicit``) to its
    prompts.
    """

    name: str
    domain: str
    slots: tuple[str, ...]
    results: tuple[str, ...]
    required: tuple[tuple[str, ...], ...]
    confirm_below: float
    responses: tuple[Template, ...]
    confirm: tuple[Template, ...]
    elicit: Mapping[str, tuple[Template, ...]]

    def group_key(self, group: tuple[str, ...]) -> str:
        """The slot whose prompts elicit ``group``."""
        return next(slot for slot in group if slot in self.elicit)

    def group_of(self, key: str) -> tuple[str, ...]:
        """The required group elicited by the prompts under ``key``."""
        return next(group for group in self.required if key in group)


@dataclass(frozen=True, slots=True)
class Domain:
    """One domain file, loaded."""

    name: str
    file: str
    description: str
    intents: Mapping[str, IntentSpec]
    fallback: tuple[Template, ...]


class Catalog:
    """Every domain the dialog can answer in, and the fallback for anything else."""

    def __init__(self, domains: Iterable[Domain]) -> None:
        self.domains: dict[str, Domain] = {}
        self.intents: dict[str, IntentSpec] = {}
        owner: dict[str, str] = {}
        fallback: tuple[Template, ...] = ()
        fallback_file = ""
        for domain in domains:
            if domain.name in self.domains:
                raise ConfigError(
                    f"domain {domain.name!r} is also defined in {self.domains[domain.name].file}",
                    key=f"{domain.file}:domain",
                )
            self.domains[domain.name] = domain
            for name, spec in domain.intents.items():
                if name in self.intents:
                    raise ConfigError(
                        f"intent {name!r} is also defined in {owner[name]}",
                        key=f"{domain.file}:intents.{name}",
                    )
                self.intents[name] = spec
                owner[name] = domain.file
            if domain.fallback:
                if fallback:
                    raise ConfigError(
                        f"fallback prompts are also defined in {fallback_file}",
                        key=f"{domain.file}:fallback",
                    )
                fallback, fallback_file = domain.fallback, domain.file
        if not fallback:
            raise ConfigError(
                "no domain file defines [[fallback]] prompts (what to say when no intent "
                "is understood)",
                key="fallback",
            )
        self.fallback = fallback

    def action_ids(self) -> list[str]:
        """Every action id a candidate of this catalog can have (for a bandit's action set)."""
        from voxloop.dialog.policy import action_id

        ids = [action_id("fallback", None, t.id) for t in self.fallback]
        for name, spec in self.intents.items():
            ids += [action_id("respond", name, t.id) for t in spec.responses]
            ids += [action_id("confirm", name, t.id) for t in spec.confirm]
            for key, prompts in spec.elicit.items():
                ids += [action_id("elicit", name, t.id, key) for t in prompts]
        return ids


def load_catalog(paths: str | Path | Sequence[str | Path] | None = None) -> Catalog:
    """Load domain files: the packaged ones by default, or every ``*.toml`` in a directory,
    or the listed files."""
    if paths is None:
        root = resources.files("voxloop.dialog") / "domains"
        files: list[Any] = sorted(
            (p for p in root.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name
        )
        return Catalog(
            _parse_domain(f.read_text(encoding="utf-8"), f"domains/{f.name}") for f in files
        )
    if isinstance(paths, str | Path):
        directory = Path(paths)
        if directory.is_dir():
            found = sorted(directory.glob("*.toml"))
            if not found:
                raise ConfigError(f"no *.toml domain files in {directory}", key=str(directory))
            return Catalog(load_domain(p) for p in found)
        return Catalog([load_domain(directory)])
    return Catalog(load_domain(p) for p in paths)


def load_domain(path: str | Path) -> Domain:
    """Load and check one domain file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read domain file ({e})", key=str(file)) from None
    return _parse_domain(text, str(file))


# ---------------------------------------------------------------------- validation

_TOP = {"domain", "description", "confirm_below", "confirm", "fallback", "intents"}
_INTENT = {
    "description",
    "slots",
    "results",
    "required",
    "confirm_below",
    "responses",
    "confirm",
    "elicit",
}
_TEMPLATE = {"id", "text"}


class _Checker:
    """Type and key checks that name ``file:key.path`` in every error."""

    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(problem, key=f"{self.file}:{key}" if key else self.file)

    def table(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table, got {_kind(value)}")
        for k in value:
            if k not in allowed:
                raise self.error(
                    _join(key, k), f"unknown key (allowed: {', '.join(sorted(allowed))})"
                )
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, got {value!r}")
        return value

    def names(self, value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.error(key, f"must be a list of names, got {_kind(value)}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not _FIELD.match(item):
                raise self.error(
                    f"{key}[{i}]", f"must be a name (letters, digits, _), got {item!r}"
                )
            if item in out:
                raise self.error(f"{key}[{i}]", f"{item!r} is listed twice")
            out.append(item)
        return tuple(out)

    def threshold(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.error(key, f"must be a number in [0, 1], got {value!r}")
        return float(value)

    def templates(self, value: Any, key: str, allowed: frozenset[str]) -> tuple[Template, ...]:
        if not isinstance(value, list) or not value:
            raise self.error(key, f"must be a non-empty list of {{id, text}} tables, got {value!r}")
        out: list[Template] = []
        for i, item in enumerate(value):
            where = f"{key}[{i}]"
            self.table(item, where, _TEMPLATE)
            for required in ("id", "text"):
                if required not in item:
                    raise self.error(_join(where, required), "missing")
            tid = self.string(item["id"], f"{where}.id")
            if not _ID.match(tid):
                raise self.error(f"{where}.id", f"must be letters, digits, '_' or '-', got {tid!r}")
            if any(t.id == tid for t in out):
                raise self.error(f"{where}.id", f"duplicate id {tid!r}")
            text = self.string(item["text"], f"{where}.text")
            fields = self.fields(text, f"{where}.text")
            unknown = sorted(fields - allowed)
            if unknown:
                declared = ", ".join(sorted(allowed)) or "none"
                raise self.error(
                    f"{where}.text",
                    f"references {', '.join('{' + u + '}' for u in unknown)}, which is not a "
                    f"slot or result of this intent (declared: {declared})",
                )
            out.append(Template(tid, text, fields))
        return tuple(out)

    def fields(self, text: str, key: str) -> frozenset[str]:
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as e:
            raise self.error(key, f"bad template ({e}); write {{{{ and }}}} for braces") from None
        out = set()
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if not _FIELD.match(name) or spec or conversion:
                raise self.error(
                    key, f"template fields must be plain names like {{name}}, got {{{name}}}"
                )
            out.add(name)
        return frozenset(out)


def _parse_domain(text: str, file: str) -> Domain:
    check = _Checker(file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise check.error("", f"not valid TOML ({e})") from None
    check.table(data, "", _TOP)
    if "domain" not in data:
        raise check.error("domain", "missing (the domain's name)")
    name = check.string(data["domain"], "domain")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise check.error("description", "must be a string")
    confirm_below = check.threshold(
        data.get("confirm_below", DEFAULT_CONFIRM_BELOW), "confirm_below"
    )
    domain_confirm = (
        _always(check, check.templates(data["confirm"], "confirm", frozenset()), "confirm", set())
        if "confirm" in data
        else ()
    )
    fallback = (
        check.templates(data["fallback"], "fallback", frozenset()) if "fallback" in data else ()
    )
    if "intents" not in data:
        raise check.error("intents", "missing (at least one [intents.NAME] table)")
    intents_table = data["intents"]
    if not isinstance(intents_table, dict) or not intents_table:
        raise check.error("intents", "must be a non-empty table of intents")
    intents = {
        intent: _parse_intent(check, intent, body, name, confirm_below, domain_confirm)
        for intent, body in intents_table.items()
    }
    return Domain(name, file, description, intents, fallback)


def _parse_intent(
    check: _Checker,
    intent: str,
    body: Any,
    domain: str,
    confirm_below: float,
    domain_confirm: tuple[Template, ...],
) -> IntentSpec:
    key = f"intents.{intent}"
    check.table(body, key, _INTENT)
    if "description" in body and not isinstance(body["description"], str):
        raise check.error(f"{key}.description", "must be a string")
    slots = check.names(body.get("slots", []), f"{key}.slots")
    results = check.names(body.get("results", []), f"{key}.results")
    both = set(slots) & set(results)
    if both:
        raise check.error(f"{key}.results", f"{sorted(both)} declared both as slot and as result")
    required = _parse_required(check, body.get("required", []), f"{key}.required", slots)
    threshold = check.threshold(body.get("confirm_below", confirm_below), f"{key}.confirm_below")
    fields = frozenset(slots) | frozenset(results)
    always = {group[0] for group in required if len(group) == 1}
    if "responses" not in body:
        raise check.error(f"{key}.responses", "missing (at least one response)")
    responses = _always(
        check,
        check.templates(body["responses"], f"{key}.responses", fields),
        f"{key}.responses",
        always,
    )
    if "confirm" in body:
        confirm = _always(
            check,
            check.templates(body["confirm"], f"{key}.confirm", fields),
            f"{key}.confirm",
            set(),
        )
    elif domain_confirm:
        confirm = domain_confirm
    else:
        raise check.error(
            f"{key}.confirm", "no confirmation prompts: add them here or at the top of the file"
        )
    elicit_table = body.get("elicit", {})
    if not isinstance(elicit_table, dict):
        raise check.error(
            f"{key}.elicit", f"must be a table of slot -> prompts, got {_kind(elicit_table)}"
        )
    elicit: dict[str, tuple[Template, ...]] = {}
    for slot, prompts in elicit_table.items():
        where = f"{key}.elicit.{slot}"
        group = next((g for g in required if slot in g), None)
        if group is None:
            raise check.error(where, "prompts for a slot that is not required")
        if any(other in elicit for other in group):
            raise check.error(where, f"two prompt lists for the same required group {list(group)}")
        elicit[slot] = _always(
            check, check.templates(prompts, where, fields - set(group)), where, set()
        )
    for group in required:
        if not any(slot in elicit for slot in group):
            raise check.error(
                f"{key}.elicit.{group[0]}",
                f"missing: required slot{'s' if len(group) > 1 else ''} {list(group)} need prompts",
            )
    return IntentSpec(
        name=intent,
        domain=domain,
        slots=slots,
        results=results,
        required=required,
        confirm_below=threshold,
        responses=responses,
        confirm=confirm,
        elicit=elicit,
    )


def _parse_required(
    check: _Checker, value: Any, key: str, slots: tuple[str, ...]
) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list):
        raise check.error(
            key, f"must be a list of slot names (or lists of them), got {_kind(value)}"
        )
    groups: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        group = (item,) if isinstance(item, str) else item
        group = check.names(
            list(group) if isinstance(group, list | tuple) else group, f"{key}[{i}]"
        )
        if not group:
            raise check.error(f"{key}[{i}]", "an empty group")
        for slot in group:
            if slot not in slots:
                raise check.error(
                    f"{key}[{i}]", f"{slot!r} is not one of this intent's slots {list(slots)}"
                )
            if slot in seen:
                raise check.error(f"{key}[{i}]", f"{slot!r} is required twice")
            seen.add(slot)
        groups.append(group)
    return tuple(groups)


def _always(
    check: _Checker, templates: tuple[Template, ...], key: str, available: set[str]
) -> tuple[Template, ...]:
    """Check that one template needs only fields that are always available."""
    if not any(t.fields <= available for t in templates):
        need = f"only {sorted(available)}" if available else "no field"
        raise check.error(
            key, f"needs one variant that names {need}, so that it can always be said"
        )
    return templates


def _join(key: str, sub: str) -> str:
    return f"{key}.{sub}" if key else sub


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
