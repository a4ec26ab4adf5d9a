"""The HTTP wire format in one place: request validation and response shapes.

Every problem with a request raises `BadRequest` with a status and a message that names
the field; nothing here touches the network or the model.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from voxloop.nlu.base import parse_to_dict
from voxloop.schema import RATING_SCALE, Parse
from voxloop.serve.responder import TurnContext

__all__ = [
    "FALLBACK_INTENT",
    "BadRequest",
    "FeedbackRequest",
    "Limits",
    "ParseRequest",
    "check_text",
    "decode_json",
    "parse_json",
    "rasa_json",
    "read_feedback_request",
    "read_parse_request",
    "read_rasa_request",
]

_TURN_ID = re.compile(r"[0-9a-f]{32}")
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_ID_MAX = 256


class BadRequest(Exception):
    """A request the server refuses: ``status`` (4xx) and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Limits:
    """Request size limits (the ``--max-*`` options)."""

    max_body_bytes: int = 256 * 1024
    max_text_chars: int = 1000
    max_texts: int = 64


@dataclass(frozen=True)
class ParseRequest:
    """One parse request: its texts and who sent them."""

    texts: list[str]
    batch: bool
    user_id: str | None = None
    session_id: str | None = None
    locale: str | None = None
    experiment: str | None = None
    arm: str | None = None
    context: TurnContext | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True)
class FeedbackRequest:
    """A later signal about a turn."""

    turn_id: str
    kind: str
    value: float
    user_id: str | None = None
    timestamp: datetime | None = None


def decode_json(body: bytes, what: str = "body") -> Any:
    """Bytes → JSON value; invalid UTF-8 and malformed JSON are 400s that say where
    (``what``: the body, a Wyoming header...)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(400, f"{what} is not valid UTF-8 (byte {e.start})") from None
    if not text.strip():
        raise BadRequest(400, f"empty {what}: send a JSON object")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=_integer)
    except json.JSONDecodeError as e:
        raise BadRequest(
            400, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except RecursionError:  # arrays or objects nested deeper than the parser's stack
        raise BadRequest(400, "JSON nested too deeply") from None


def _integer(digits: str) -> int:
    # Python refuses to convert more than sys.get_int_max_str_digits() (4,300) digits
    # with a plain ValueError; no field of the API needs a fraction of that
    if len(digits) > 1000:
        raise BadRequest(400, f"malformed JSON: an integer of {len(digits):,} digits")
    return int(digits)


def _no_constant(name: str) -> Any:
    raise BadRequest(400, f"malformed JSON: {name} is not a JSON number")


def _object(data: Any, allowed: tuple[str, ...], name: str = "body") -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest(422, f"{name} must be a JSON object, not {_type(data)}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        where = "" if name == "body" else f" in {name}"
        raise BadRequest(422, f"unknown field {names}{where} (allowed: {', '.join(allowed)})")
    return data


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _encodable(value: str, name: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(422, f"{name} contains an unpaired surrogate (\\ud800-\\udfff)") from None
    return value


def check_text(value: Any, name: str, limits: Limits) -> str:
    """A usable text: a non-blank string within the length limit, encodable as UTF-8."""
    if not isinstance(value, str):
        raise BadRequest(422, f"{name} must be a string, not {_type(value)}")
    if not value.strip():
        raise BadRequest(422, f"{name} is empty or only whitespace")
    if len(value) > limits.max_text_chars:
        raise BadRequest(
            422, f"{name} has {len(value)} characters; the limit is {limits.max_text_chars}"
        )
    return _encodable(value, name)


def _optional_id(data: Mapping[str, Any], key: str, name: str | None = None) -> str | None:
    value = data.get(key)
    name = name or key
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(422, f"{name} must be a string, not {_type(value)}")
    if not value or len(value) > _ID_MAX:
        raise BadRequest(422, f"{name} must have 1 to {_ID_MAX} characters")
    return _encodable(value, name)


_PARSE_FIELDS = (
    "text",
    "texts",
    "user_id",
    "session_id",
    "locale",
    "experiment",
    "arm",
    "context",
    "timestamp",
)


def _timestamp(data: Mapping[str, Any]) -> datetime | None:
    """The optional ``timestamp`` (ISO 8601 with a UTC offset) of a replayed request."""
    raw = data.get("timestamp")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BadRequest(422, f"timestamp must be an ISO 8601 string, not {_type(raw)}")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(422, f"timestamp {raw[:40]!r} is not ISO 8601") from None
    if value.tzinfo is None:
        raise BadRequest(422, "timestamp needs a UTC offset, e.g. 2026-11-25T08:00:00+00:00")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC
        raise BadRequest(
            422, f"timestamp {raw[:40]!r} is out of range (years 1 to 9999 in UTC)"
        ) from None


_ATTRIBUTES_MAX = 32


def _context(data: Mapping[str, Any]) -> TurnContext | None:
    """The optional ``context``: ``hour`` (0-23, the user's local hour), ``device`` and
    ``attributes`` (strings or numbers) for the response policy."""
    raw = data.get("context")
    if raw is None:
        return None
    obj = _object(raw, ("hour", "device", "attributes"), "context")
    hour = obj.get("hour")
    if hour is not None and (
        isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23
    ):
        raise BadRequest(422, f"context.hour must be an integer 0-23, not {hour!r}")
    device = _optional_id(obj, "device", "context.device")
    attributes = obj.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, dict) or len(attributes) > _ATTRIBUTES_MAX:
            raise BadRequest(
                422, f"context.attributes must be an object of at most {_ATTRIBUTES_MAX} entries"
            )
        for key, value in attributes.items():
            ok = isinstance(value, str) or (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            if not ok or len(key) > _ID_MAX:
                raise BadRequest(
                    422, f"context.attributes.{key[:40]} must be a string or a finite number"
                )
    return TurnContext(hour=hour, device=device, attributes=attributes)


def read_parse_request(data: Any, limits: Limits) -> ParseRequest:
    """Validate the body of ``POST /v1/parse``: ``text`` or ``texts``, plus ids."""
    obj = _object(data, _PARSE_FIELDS)
    if ("text" in obj) == ("texts" in obj):
        raise BadRequest(422, "send exactly one of 'text' (a string) or 'texts' (an array)")
    if "text" in obj:
        texts, batch = [check_text(obj["text"], "text", limits)], False
    else:
        raw = obj["texts"]
        if not isinstance(raw, list):
            raise BadRequest(422, f"texts must be an array of strings, not {_type(raw)}")
        if not raw:
            raise BadRequest(422, "texts is empty")
        if len(raw) > limits.max_texts:
            raise BadRequest(422, f"texts has {len(raw)} items; the limit is {limits.max_texts}")
        texts, batch = [check_text(t, f"texts[{i}]", limits) for i, t in enumerate(raw)], True
    return ParseRequest(
        texts=texts,
        batch=batch,
        user_id=_optional_id(obj, "user_id"),
        session_id=_optional_id(obj, "session_id"),
        locale=_optional_id(obj, "locale"),
        experiment=_optional_id(obj, "experiment"),
        arm=_optional_id(obj, "arm"),
        context=_context(obj),
        timestamp=_timestamp(obj),
    )


def read_rasa_request(data: Any, limits: Limits) -> ParseRequest:
    """Validate the body of ``POST /model/parse`` (Rasa's ``text`` and ``message_id``)."""
    obj = _object(data, ("text", "message_id", "user_id", "session_id", "locale"))
    if "text" not in obj:
        raise BadRequest(422, "missing field 'text'")
    _optional_id(obj, "message_id")
    return ParseRequest(
        texts=[check_text(obj["text"], "text", limits)],
        batch=False,
        user_id=_optional_id(obj, "user_id"),
        session_id=_optional_id(obj, "session_id"),
        locale=_optional_id(obj, "locale"),
    )


def read_feedback_request(data: Any) -> FeedbackRequest:
    """Validate the body of ``POST /v1/feedback``."""
    obj = _object(data, ("turn_id", "kind", "value", "user_id", "timestamp"))
    for name in ("turn_id", "kind"):
        if name not in obj:
            raise BadRequest(422, f"missing field {name!r}")
    turn_id = _optional_id(obj, "turn_id")
    assert turn_id is not None
    if not _TURN_ID.fullmatch(turn_id):  # what the server answered; nothing else is logged
        raise BadRequest(422, "turn_id must be the 32 hex digits a parse answered with")
    kind = obj["kind"]
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise BadRequest(
            422,
            "kind must be a lower-case name such as rating, barge_in, abandonment, "
            "task_success or rephrase",
        )
    value = obj.get("value", 1.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(422, f"value must be a finite number, not {_type(value)}")
    if not math.isfinite(value):
        raise BadRequest(422, f"value must be a finite number, not {value!r}")
    if kind == "task_success" and value not in (0, 1):
        raise BadRequest(
            422, f"value of a task_success must be 1 (succeeded) or 0 (failed), got {value!r}"
        )
    low, high = RATING_SCALE
    if kind == "rating" and not low <= value <= high:
        raise BadRequest(
            422,
            f"value of a rating must be in [{low:g}, {high:g}] (0 worst, 1 best; send a 1-5 "
            f"star score s as (s - 1) / 4), got {value!r}",
        )
    return FeedbackRequest(
        turn_id, kind, float(value), _optional_id(obj, "user_id"), _timestamp(obj)
    )


def parse_json(
    parse: Parse,
    *,
    turn_id: str,
    model_version: str,
    latency_ms: float,
    parse_ms: float,
    experiment: str | None = None,
    arm: str | None = None,
    response: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One text's answer on ``/v1/parse`` (``experiment``/``arm`` and the chosen
    ``response`` only when there are some)."""
    out = {
        "turn_id": turn_id,
        **parse_to_dict(parse),
        "model_version": model_version,
        "latency_ms": round(latency_ms, 3),
        "parse_ms": round(parse_ms, 3),
    }
    if experiment is not None:
        out["experiment"] = experiment
        out["arm"] = arm
    if response is not None:
        out["response"] = response
    return out


FALLBACK_INTENT = "nlu_fallback"


def rasa_json(parse: Parse, *, turn_id: str) -> dict[str, Any]:
    """The answer of Rasa's ``POST /model/parse``; not recognized → ``nlu_fallback``
    (what Rasa's FallbackClassifier answers)."""
    ranking = [{"name": s.intent, "confidence": s.confidence} for s in parse.ranking]
    if parse.intent is None:
        intent = {"name": FALLBACK_INTENT, "confidence": parse.confidence}
        ranking.insert(0, dict(intent))
    else:
        intent = {"name": parse.intent, "confidence": parse.confidence}
    return {
        "text": parse.text,
        "intent": intent,
        "intent_ranking": ranking,
        "entities": [
            {
                "start": s.start,
                "end": s.end,
                "value": s.value,
                "entity": s.label,
                "confidence_entity": s.confidence,
                "extractor": "voxloop",
            }
            for s in parse.slots
        ],
        "turn_id": turn_id,
    }
