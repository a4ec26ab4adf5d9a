"""voxloop's own JSON lines: the format for users' data, one utterance per line.

```
{"text": "wake me at five", "intent": "alarm_set", "domain": "alarm", "locale": "en-US",
 "id": "42", "split": "train",
 "slots": [{"start": 11, "end": 15, "label": "time", "value": "five"}]}
```

Only ``text`` is required. ``intent``, ``domain`` and ``id`` are strings or null,
``locale`` defaults to ``en-US``, ``slots`` to ``[]``; a slot's ``value`` is optional but,
when given, must equal ``text[start:end]``. Rows without ``split`` go to split ``all``.
Unknown keys are errors (a typo such as ``"intnet"`` must not silently drop a label), as
are overlapping slots. Slots are kept sorted by offset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from voxloop.data._reading import ProblemLog, read_lines, require_path
from voxloop.data.corpus import Corpus
from voxloop.errors import DataError
from voxloop.schema import DEFAULT_LOCALE, Span, Utterance

__all__ = ["DEFAULT_SPLIT", "JSONL_KEYS", "SLOT_KEYS", "read_jsonl", "write_jsonl"]

DEFAULT_SPLIT = "all"
JSONL_KEYS = ("text", "intent", "domain", "locale", "id", "split", "slots")
# A BCP 47 language tag's shape: a language, then subtags (en, en-US, zh-Hant-TW, de_DE).
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
SLOT_KEYS = ("start", "end", "label", "value")


def read_jsonl(path: str | Path, *, strict: bool = True) -> Corpus:
    """Read a voxloop JSON-lines file; rows go to their ``split`` (``all`` without one).

    ``strict=False`` skips bad rows and lists every problem in the corpus.
    """
    file = require_path(path, "JSON-lines")
    if file.is_dir():
        raise DataError("expected a .jsonl file, got a directory", file=file)
    log = ProblemLog(strict)
    splits: dict[str, list[Utterance]] = {}
    for line, raw in enumerate(read_lines(file), 1):
        if not raw.strip():
            continue
        try:
            split, utterance = _parse_row(raw, file, line)
        except DataError as e:
            log.add(e)
            continue
        splits.setdefault(split, []).append(utterance)
    return Corpus(spec=f"jsonl:{path}", splits=splits, problems=log.problems)


def write_jsonl(
    utterances: Iterable[Utterance], path: str | Path, *, split: str | None = None
) -> int:
    """Write utterances as voxloop JSON lines (with ``split`` on every row when given).

    Null fields are left out. Returns the number of rows written.
    """
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="\n") as out:
        for u in utterances:
            row: dict[str, Any] = {"text": u.text}
            for key, value in (("intent", u.intent), ("domain", u.domain), ("id", u.id)):
                if value is not None:
                    row[key] = value
            row["locale"] = u.locale
            if split is not None:
                row["split"] = split
            row["slots"] = [
                {"start": s.start, "end": s.end, "label": s.label, "value": s.value}
                for s in u.slots
            ]
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _parse_row(raw: str, file: Path, line: int) -> tuple[str, Utterance]:
    def fail(problem: str, field: str | None = None) -> DataError:
        return DataError(problem, file=file, line=line, field=field)

    try:
        obj = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise fail(f"not valid JSON: {e.msg} (column {e.colno})") from None
    except ValueError as e:
        raise fail(f"not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise fail(f"expected a JSON object, got {type(obj).__name__}")
    for key in obj:
        if key not in JSONL_KEYS:
            raise fail(f"unknown key {key!r} (known: {', '.join(JSONL_KEYS)})", key)

    if "text" not in obj:
        raise fail("missing 'text'", "text")
    text = obj["text"]
    if not isinstance(text, str):
        raise fail(f"'text' must be a string, got {_kind(text)}", "text")
    if not text.strip():
        raise fail("empty text", "text")

    def optional(key: str) -> str | None:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(f"{key!r} must be a string or null, got {_kind(value)}", key)
        return value

    intent, domain, id_ = optional("intent"), optional("domain"), optional("id")
    locale = obj.get("locale", DEFAULT_LOCALE)
    if not isinstance(locale, str) or not locale.strip():
        raise fail(f"'locale' must be a non-empty string, got {_kind(locale)}", "locale")
    if not _LANGUAGE_TAG.match(locale):
        raise fail(f"'locale' must be a language tag like en-US, got {locale[:40]!r}", "locale")
    split = obj.get("split", DEFAULT_SPLIT)
    if not isinstance(split, str) or not split.strip():
        raise fail(f"'split' must be a non-empty string, got {_kind(split)}", "split")
    slots = obj.get("slots", [])
    if not isinstance(slots, list):
        raise fail(f"'slots' must be a list, got {_kind(slots)}", "slots")
    spans = sorted(
        (_parse_slot(slot, i, text, fail) for i, slot in enumerate(slots)),
        key=lambda s: (s.start, s.end),
    )
    for before, after in zip(spans, spans[1:], strict=False):
        if after.start < before.end:
            raise fail(
                f"slots overlap: {before.label} [{before.start}, {before.end}) and "
                f"{after.label} [{after.start}, {after.end})",
                "slots",
            )
    utterance = Utterance(
        text=text,
        intent=intent,
        slots=tuple(spans),
        domain=domain,
        locale=locale,
        id=id_,
    )
    return split, utterance


def _parse_slot(slot: Any, index: int, text: str, fail: Callable[[str, str], DataError]) -> Span:
    where = f"slots[{index}]"
    if not isinstance(slot, dict):
        raise fail(f"{where} must be an object, got {_kind(slot)}", where)
    for key in slot:
        if key not in SLOT_KEYS:
            raise fail(
                f"unknown key {key!r} in {where} (known: {', '.join(SLOT_KEYS)})", f"{where}.{key}"
            )
    for key in ("start", "end", "label"):
        if key not in slot:
            raise fail(f"{where} lacks {key!r}", f"{where}.{key}")
    start, end, label = slot["start"], slot["end"], slot["label"]
    for key, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"{where}.{key} must be an integer, got {_kind(value)}", f"{where}.{key}")
    if not isinstance(label, str) or not label.strip():
        raise fail(
            f"{where}.label must be a non-empty string, got {_kind(label)}", f"{where}.label"
        )
    if not 0 <= start < end <= len(text):
        raise fail(
            f"{where} [{start}, {end}) is not a non-empty range inside the text "
            f"(length {len(text)})",
            where,
        )
    value = text[start:end]
    if slot.get("value") is not None and slot["value"] != value:
        raise fail(
            f"{where}.value {slot['value']!r} is not the text at [{start}, {end}): {value!r}",
            f"{where}.value",
        )
    return Span(start, end, label, value)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
