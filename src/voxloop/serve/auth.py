"""API keys: admin routes always need one, parse routes when one is configured.

Keys come from environment variables (never from the command line, where ``ps`` shows
them). A client sends ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; keys are
compared in constant time.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ADMIN_KEY_ENV", "API_KEY_ENV", "ApiKeys", "AuthFailure"]

ADMIN_KEY_ENV = "VOXLOOP_ADMIN_KEY"
API_KEY_ENV = "VOXLOOP_API_KEY"


@dataclass(frozen=True)
class AuthFailure:
    """Why a request is refused: 401 (no key sent) or 403 (wrong key, or admin disabled)."""

    status: int
    message: str


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries, if any."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def _matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class ApiKeys:
    """The configured keys; ``None`` means: admin routes disabled / parse routes open."""

    admin: str | None = None
    parse: str | None = None
    admin_env: str = ADMIN_KEY_ENV
    parse_env: str = API_KEY_ENV

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        admin_env: str = ADMIN_KEY_ENV,
        parse_env: str = API_KEY_ENV,
    ) -> ApiKeys:
        env = os.environ if environ is None else environ
        return cls(
            admin=env.get(admin_env) or None,
            parse=env.get(parse_env) or None,
            admin_env=admin_env,
            parse_env=parse_env,
        )

    def check_admin(self, headers: Mapping[str, str]) -> AuthFailure | None:
        """None when the request may use the admin routes."""
        if self.admin is None:
            return AuthFailure(403, f"admin routes are disabled: set {self.admin_env}")
        return self._check(headers, self.admin, "admin")

    def check_parse(self, headers: Mapping[str, str]) -> AuthFailure | None:
        """None when the request may use the parse and feedback routes."""
        return None if self.parse is None else self._check(headers, self.parse, "API")

    @staticmethod
    def _check(headers: Mapping[str, str], expected: str, what: str) -> AuthFailure | None:
        given = presented_key(headers)
        if given is None:
            return AuthFailure(401, f"this route needs the {what} key (Authorization: Bearer KEY)")
        if not _matches(given, expected):
            return AuthFailure(403, f"wrong {what} key")
        return None
