"""The server's JSON responses: Starlette's, encoded with orjson (several times faster than
the standard library on every answer; the bytes are the same compact UTF-8 JSON), the one
error shape, and the answer to a request the service refused."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSONResponse

from voxloop.serve.payloads import BadRequest
from voxloop.serve.service import NotReady, QueueFull

__all__ = ["REFUSED", "RETRY_AFTER", "JSONResponse", "error", "refusal"]

RETRY_AFTER = "1"
#: What the service raises when it refuses a request; `refusal` answers each.
REFUSED = (BadRequest, NotReady, QueueFull, TimeoutError)


class JSONResponse(_StarletteJSONResponse):
    """A JSON response rendered by orjson (non-finite floats become null)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error shape."""
    return JSONResponse({"error": message, "status": status}, status, headers=headers)


def refusal(e: Exception, timeout: float) -> JSONResponse:
    """The answer to a request the service refused (one of `REFUSED`)."""
    if isinstance(e, BadRequest):
        return error(e.status, e.message)
    if isinstance(e, NotReady):
        return error(503, f"not ready: {e}", {"Retry-After": RETRY_AFTER})
    if isinstance(e, QueueFull):
        return error(503, f"overloaded: {e}", {"Retry-After": RETRY_AFTER})
    return error(504, f"not answered within {timeout:g} s")
