"""The server's JSON response: Starlette's, encoded with orjson (several times faster than
the standard library on every answer; the bytes are the same compact UTF-8 JSON)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSONResponse

__all__ = ["JSONResponse"]


class JSONResponse(_StarletteJSONResponse):
    """A JSON response rendered by orjson (non-finite floats become null)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
