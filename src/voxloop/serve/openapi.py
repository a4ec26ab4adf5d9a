"""The OpenAPI 3.1 document of the HTTP API (served at ``/openapi.json``; ``/docs`` renders it).

Written by hand beside `payloads` (which validates the same shapes); a test checks that
every route of the app is documented here.
"""

from __future__ import annotations

from typing import Any

from voxloop import __version__
from voxloop.serve.payloads import Limits

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "Malformed JSON or invalid UTF-8"),
    "401": _json(_ref("Error"), "An API key is configured and none was sent"),
    "403": _json(_ref("Error"), "Wrong API key"),
    "413": _json(_ref("Error"), "Body larger than --max-body-bytes"),
    "422": _json(_ref("Error"), "Wrong field, type, empty text or text too long"),
    "503": _json(_ref("Error"), "Queue full or model not ready (see Retry-After)"),
    "504": _json(_ref("Error"), "Not answered within --timeout"),
}
_ADMIN_ERRORS = {k: _ERRORS[k] for k in ("400", "401", "403", "422")}
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
_API_KEY = "Needs the API key when the server has one (serve --api-key-env)."
_ADMIN_KEY = "Needs the admin key (serve --admin-key-env); a server without one answers 403."


def _schemas(limits: Limits) -> dict[str, Any]:
    text = {"type": "string", "minLength": 1, "maxLength": limits.max_text_chars}
    ident = {"type": ["string", "null"], "minLength": 1, "maxLength": 256}
    number = {"type": "number"}
    nullable_number = {"type": ["number", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
        },
        "ParseRequest": {
            "type": "object",
            "additionalProperties": False,
            "description": "Exactly one of text or texts.",
            "properties": {
                "text": text,
                "texts": {
                    "type": "array",
                    "items": text,
                    "minItems": 1,
                    "maxItems": limits.max_texts,
                },
                "user_id": ident,
                "session_id": ident,
                "locale": ident,
                "experiment": ident,
                "arm": ident,
                "timestamp": {
                    "type": "string",
                    "format": "date-time",
                    "description": "only with --replay-clock: log the turn at this time",
                },
                "context": {
                    "type": "object",
                    "additionalProperties": False,
                    "description": "What the response policy may know beyond the text.",
                    "properties": {
                        "hour": {"type": "integer", "minimum": 0, "maximum": 23},
                        "device": ident,
                        "attributes": {
                            "type": "object",
                            "maxProperties": 32,
                            "additionalProperties": {"type": ["string", "number"]},
                        },
                    },
                },
            },
        },
        "Slot": {
            "type": "object",
            "properties": {
                "start": {"type": "integer"},
                "end": {"type": "integer"},
                "label": {"type": "string"},
                "value": {"type": "string"},
                "confidence": nullable_number,
            },
        },
        "ParseResult": {
            "type": "object",
            "properties": {
                "turn_id": {"type": "string"},
                "text": {"type": "string"},
                "intent": {"type": ["string", "null"], "description": "null: not recognized"},
                "confidence": number,
                "recognized": {"type": "boolean"},
                "ranking": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"intent": {"type": "string"}, "confidence": number},
                    },
                },
                "slots": {"type": "array", "items": _ref("Slot")},
                "domain": {"type": ["string", "null"]},
                "locale": {"type": "string"},
                "model_version": {"type": "string"},
                "latency_ms": number,
                "parse_ms": number,
                "experiment": {
                    "type": "string",
                    "description": "present when the server assigned the user to an arm",
                },
                "arm": {"type": "string"},
                "response": {
                    "type": "object",
                    "description": "present when a response policy chose what to say",
                    "properties": {
                        "action": {"type": "string"},
                        "kind": {"type": "string"},
                        "text": {"type": "string"},
                        "propensity": number,
                        "policy": {"type": "string"},
                    },
                },
            },
        },
        "ParseBatchResult": {
            "type": "object",
            "properties": {"results": {"type": "array", "items": _ref("ParseResult")}},
        },
        "RasaRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["text"],
            "properties": {
                "text": text,
                "message_id": ident,
                "user_id": ident,
                "session_id": ident,
                "locale": ident,
            },
        },
        "RasaResult": {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "intent": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "confidence": number},
                },
                "intent_ranking": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "confidence": number},
                    },
                },
                "entities": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "start": {"type": "integer"},
                            "end": {"type": "integer"},
                            "value": {"type": "string"},
                            "entity": {"type": "string"},
                            "confidence_entity": nullable_number,
                            "extractor": {"type": "string"},
                        },
                    },
                },
                "turn_id": {"type": "string"},
            },
        },
        "FeedbackRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["turn_id", "kind"],
            "properties": {
                "turn_id": {"type": "string"},
                "kind": {
                    "type": "string",
                    "pattern": "^[a-z][a-z0-9_.-]{0,63}$",
                    "examples": ["rating", "barge_in", "abandonment", "task_success"],
                },
                "value": {
                    "type": "number",
                    "default": 1.0,
                    "description": "for a rating: 0 (worst) to 1 (best); 1-5 stars s are "
                    "sent as (s - 1) / 4, other values get a 422; for task_success: 1 "
                    "(succeeded) or 0 (failed)",
                },
                "user_id": ident,
                "timestamp": {"type": "string", "format": "date-time"},
            },
        },
        "RecognizeResult": {
            "type": "object",
            "properties": {
                "transcript": {"type": "string", "description": "spoken form; empty: no speech"},
                "nbest": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "text": {"type": "string"},
                            "raw": {"type": "string"},
                            "score": number,
                        },
                    },
                },
                "parse": {"oneOf": [_ref("ParseResult"), {"type": "null"}]},
                "turn_id": {"type": ["string", "null"]},
                "recognizer": {"type": "string"},
                "audio_seconds": number,
                "recognize_ms": number,
                "latency_ms": number,
            },
        },
        "LoadModel": {
            "type": "object",
            "additionalProperties": False,
            "required": ["path"],
            "properties": {
                "path": {"type": "string"},
                "version": {"type": "string"},
                "activate": {"type": "boolean", "default": False},
            },
        },
        "Model": {
            "type": "object",
            "properties": {
                "version": {"type": "string"},
                "path": {"type": "string"},
                "active": {"type": "boolean"},
                "model_type": {"type": "string"},
                "intents": {"type": "integer"},
                "locales": {"type": "array", "items": {"type": "string"}},
                "loaded_at": {"type": "string"},
                "load_seconds": number,
                "warmup_seconds": number,
            },
        },
    }


def openapi_document(limits: Limits) -> dict[str, Any]:
    """The API as OpenAPI 3.1, with the server's limits filled in."""

    def post(
        summary: str,
        body: str,
        ok: dict[str, Any],
        errors: dict[str, Any],
        secure: bool = True,
        code: str = "200",
        admin: bool = False,
    ) -> dict[str, Any]:
        op: dict[str, Any] = {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(body)}},
            },
            "responses": {code: ok, **errors},
        }
        if secure:
            op["security"] = _SECURITY
            op["description"] = _ADMIN_KEY if admin else _API_KEY
        return {"post": op}

    def get(summary: str, ok: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {"200": ok, **extra}}}

    models_list = _json(
        {"type": "object", "properties": {"models": {"type": "array", "items": _ref("Model")}}},
        "Loaded models",
    )
    paths: dict[str, Any] = {
        "/v1/parse": post(
            "Parse one text or a batch; each text is logged as a turn",
            "ParseRequest",
            _json({"oneOf": [_ref("ParseResult"), _ref("ParseBatchResult")]}, "Parses"),
            _ERRORS,
        ),
        "/model/parse": post(
            "Rasa NLU HTTP API compatible parse",
            "RasaRequest",
            _json(_ref("RasaResult"), "Rasa-shaped parse"),
            _ERRORS,
        ),
        "/v1/feedback": post(
            "A later signal about a turn (rating, barge-in, abandonment, task success)",
            "FeedbackRequest",
            _json({"type": "object"}, "Accepted: appended to the log"),
            _ERRORS,
            code="202",
        ),
        "/v1/recognize": {
            "post": {
                "summary": "Recognise speech (a WAV, FLAC or OGG body), parse the transcript and "
                "log it as a turn (channel speech). Only with voxloop serve --recognizer.",
                "description": _API_KEY,
                "security": _SECURITY,
                "parameters": [
                    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                    for n in ("user_id", "session_id", "locale")
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        t: {"schema": {"type": "string", "format": "binary"}}
                        for t in ("audio/wav", "audio/flac", "audio/ogg")
                    },
                },
                "responses": {
                    "200": _json(_ref("RecognizeResult"), "Transcript, n-best and parse"),
                    "404": _json(_ref("Error"), "The server has no recognizer (--recognizer)"),
                    **{k: v for k, v in _ERRORS.items() if k != "400"},
                    "413": _json(
                        _ref("Error"),
                        "Body larger than --max-audio-bytes, or audio longer than "
                        "--max-audio-seconds",
                    ),
                    "422": _json(_ref("Error"), "Empty or unreadable audio, unknown parameter"),
                },
            }
        },
        "/healthz": get("The process is up", _json({"type": "object"}, "Alive")),
        "/readyz": get(
            "A model is loaded and warmed up",
            _json({"type": "object"}, "Ready"),
            **{"503": _json(_ref("Error"), "Not ready yet")},
        ),
        "/metrics": get(
            "Prometheus metrics",
            {
                "description": "Text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
        ),
        "/admin/models": {
            "get": {
                "summary": "Loaded model versions",
                "description": _ADMIN_KEY,
                "security": _SECURITY,
                "responses": {"200": models_list, **_ADMIN_ERRORS},
            },
            **post(
                "Load (and warm up) a model directory",
                "LoadModel",
                _json(_ref("Model"), "Loaded"),
                {**_ADMIN_ERRORS, "409": _json(_ref("Error"), "Version conflict")},
                code="201",
                admin=True,
            ),
        },
        "/admin/models/{version}/activate": {
            "post": {
                "summary": "Send new traffic to a loaded version (no request fails)",
                "description": _ADMIN_KEY,
                "security": _SECURITY,
                "parameters": [
                    {
                        "name": "version",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json(_ref("Model"), "Active"),
                    **_ADMIN_ERRORS,
                    "404": _json(_ref("Error"), "Not loaded"),
                },
            }
        },
        "/admin/models/{version}": {
            "delete": {
                "summary": "Unload a version that is not active",
                "description": _ADMIN_KEY,
                "security": _SECURITY,
                "parameters": [
                    {
                        "name": "version",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json({"type": "object"}, "Unloaded"),
                    **_ADMIN_ERRORS,
                    "404": _json(_ref("Error"), "Not loaded"),
                    "409": _json(_ref("Error"), "Active"),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "voxloop",
            "version": __version__,
            "description": "Intent and slot parsing for voice assistants, with a durable "
            "turn log. Admin routes need the admin key; parse routes need the API key "
            "when the server has one.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(limits),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
