"""The redaction config: what counts as personal and what happens to each logged field.

A TOML file (or a dict), validated once at load; a wrong key or value is a `ConfigError`
naming it::

    version = 1
    slot_types = ["person", "relation", "personal_info", "email_address"]  # NLU slot labels
    patterns = ["email", "phone", "card", "digits", "iban", "secret"]  # run on the text itself
    min_digits = 7            # "digits": a run of at least this many digits
    names = false             # also a gazetteer of US census first names (`pip install names`)
    detector = "detectors/hwu64"  # also a trained personal-word detector (relative: to this file)
    salt_env = "VOXLOOP_PRIVACY_SALT"   # the HMAC key of "hash" (read from the environment)

    [fields]
    text = "redact"       # keep | redact | hash | drop
    slots = "redact"      # keep | redact | drop   (redact: placeholders, offsets in the new text)
    user_id = "hash"      # keep | hash | drop
    session_id = "hash"   # keep | hash | drop

Without ``slot_types`` the defaults are the personal types of the SNIPS, HWU64, SLURP and
MASSIVE label sets (`DEFAULT_SLOT_TYPES`) that the served model knows. Slot types listed
explicitly must be labels of the model (when its labels are given): a typo would otherwise
redact nothing, silently.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxloop.errors import ConfigError

__all__ = [
    "DEFAULT_SLOT_TYPES",
    "FIELD_ACTIONS",
    "PATTERNS",
    "RedactionConfig",
    "load_redaction_config",
]

# Personal slot types of the standard corpora: HWU64 / SLURP / MASSIVE (person, relation,
# personal_info, email_address, place_name), SNIPS (playlist_owner: "my", "jane's"; the
# party description "me and my sister"), and names other corpora use for the same things.
DEFAULT_SLOT_TYPES = (
    "person",
    "relation",
    "personal_info",
    "email_address",
    "place_name",
    "contact_name",
    "phone_number",
    "address",
    "playlist_owner",
    "party_size_description",
)
PATTERNS = ("email", "phone", "card", "digits", "iban", "secret")
FIELD_ACTIONS: dict[str, tuple[str, ...]] = {
    "text": ("keep", "redact", "hash", "drop"),
    "slots": ("keep", "redact", "drop"),
    "user_id": ("keep", "hash", "drop"),
    "session_id": ("keep", "hash", "drop"),
}
_DEFAULT_FIELDS = {"text": "redact", "slots": "redact", "user_id": "hash", "session_id": "hash"}
_KEYS = (
    "version",
    "slot_types",
    "patterns",
    "min_digits",
    "names",
    "detector",
    "salt_env",
    "fields",
)


@dataclass(frozen=True)
class RedactionConfig:
    """A validated redaction config (see the module docstring); ``salt`` is the HMAC key."""

    slot_types: frozenset[str] = frozenset(DEFAULT_SLOT_TYPES)
    patterns: tuple[str, ...] = PATTERNS
    min_digits: int = 7
    names: bool = False
    detector: Path | None = None
    fields: Mapping[str, str] = field(default_factory=lambda: dict(_DEFAULT_FIELDS))
    salt: bytes | None = field(default=None, repr=False)

    def action(self, name: str) -> str:
        """What happens to field ``name``."""
        return self.fields[name]


def _unknown(key: str, value: str, allowed: Iterable[str], what: str) -> ConfigError:
    allowed = sorted(allowed)
    hint = difflib.get_close_matches(value, allowed, n=1)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    return ConfigError(f"unknown {what} {value!r}{extra}", key=key)


def _strings(data: Mapping[str, Any], key: str) -> list[str]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError("must be a list of non-empty strings", key=key)
    return list(value)


def parse_redaction_config(
    data: Mapping[str, Any],
    *,
    slot_labels: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
    base: Path | None = None,
) -> RedactionConfig:
    """Validate a config dict; ``slot_labels`` (the served model's) checks ``slot_types``;
    a relative ``detector`` path is relative to ``base`` (the config file's folder)."""
    for key in data:
        if key not in _KEYS:
            raise _unknown(key, key, _KEYS, "key")
    if data.get("version", 1) != 1:
        raise ConfigError(f"this voxloop reads version 1, got {data['version']!r}", key="version")
    labels = None if slot_labels is None else set(slot_labels)
    if "slot_types" in data:
        types = _strings(data, "slot_types")
        for i, name in enumerate(types):
            if labels is not None and name not in labels:
                raise _unknown(f"slot_types[{i}]", name, labels, "slot type (not a model label)")
        slot_types = frozenset(types)
    else:
        defaults = set(DEFAULT_SLOT_TYPES)
        slot_types = frozenset(defaults if labels is None else defaults & labels)
    patterns = tuple(_strings(data, "patterns")) if "patterns" in data else PATTERNS
    for i, name in enumerate(patterns):
        if name not in PATTERNS:
            raise _unknown(f"patterns[{i}]", name, PATTERNS, "pattern")
    min_digits = data.get("min_digits", 7)
    if not isinstance(min_digits, int) or isinstance(min_digits, bool) or min_digits < 3:
        raise ConfigError(f"must be a whole number >= 3, got {min_digits!r}", key="min_digits")
    names = data.get("names", False)
    if not isinstance(names, bool):
        raise ConfigError(f"must be true or false, got {names!r}", key="names")
    detector = data.get("detector")
    if detector is not None:
        if not isinstance(detector, str | Path) or not str(detector):
            raise ConfigError("must be the path of a detector directory", key="detector")
        detector = Path(base or ".") / detector
        if not (detector / "detector.json").is_file():
            raise ConfigError(
                f"{detector} is not a detector (train one: python -m voxloop.privacy.detector)",
                key="detector",
            )
    raw_fields = data.get("fields", {})
    if not isinstance(raw_fields, Mapping):
        raise ConfigError("must be a table", key="fields")
    fields = dict(_DEFAULT_FIELDS)
    for name, action in raw_fields.items():
        key = f"fields.{name}"
        if name not in FIELD_ACTIONS:
            raise _unknown(key, name, FIELD_ACTIONS, "field")
        if action not in FIELD_ACTIONS[name]:
            raise ConfigError(
                f"must be one of {', '.join(FIELD_ACTIONS[name])}, got {action!r}", key=key
            )
        fields[name] = action
    if fields["slots"] == "keep" and fields["text"] != "keep":
        raise ConfigError(
            "slots cannot be kept when the text is not (their values and offsets are the "
            "text's); use redact or drop",
            key="fields.slots",
        )
    salt = None
    if "hash" in fields.values():
        env_name = data.get("salt_env", "VOXLOOP_PRIVACY_SALT")
        if not isinstance(env_name, str) or not env_name:
            raise ConfigError("must name an environment variable", key="salt_env")
        value = (os.environ if environ is None else environ).get(env_name, "")
        if len(value) < 16:
            raise ConfigError(
                f"a field is hashed, so the environment variable {env_name} must hold the "
                "secret salt (at least 16 characters)",
                key="salt_env",
            )
        salt = value.encode()
    return RedactionConfig(slot_types, patterns, min_digits, names, detector, fields, salt)


def load_redaction_config(
    path: str | Path,
    *,
    slot_labels: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RedactionConfig:
    """Read and validate a TOML redaction config (errors name the file and key)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read the redaction config {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    try:
        return parse_redaction_config(
            data, slot_labels=slot_labels, environ=environ, base=path.parent
        )
    except ConfigError as e:
        raise ConfigError(f"{e.problem} (in {path})", key=e.key) from None
