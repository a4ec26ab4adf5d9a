"""What a policy sees of a turn: a `Context` value and the featurizer that turns it into numbers.

The featurizer maps (user, intent, domain, hour, device, user attributes) and, for policies
with one shared model, the candidate action, into a fixed-size vector of ``dim`` floats:

- ``x[0] = 1`` (bias); ``x[1], x[2] = sin, cos(2*pi*hour/24)`` (0 when the hour is unknown).
- ``x[3:]`` holds hashed tokens (the "hashing trick"): each token is hashed with BLAKE2b
  (64 bits, stable across processes and machines) to a bucket in ``[3, dim)`` and a sign
  (+1/-1, which keeps collisions unbiased), and adds ``sign * value`` there. Context tokens
  are ``u=<user id>``, ``i=<intent>``, ``d=<domain>``, ``dev=<device>``, ``p=<part of day>``
  (night 0-5 h, morning 6-11 h, afternoon 12-17 h, evening 18-23 h), and one per user
  attribute: ``a:<key>=<value>`` (value 1) for a string, ``a:<key>`` carrying the number
  for a number.
- With ``action_crosses`` (needed by shared-model policies, which otherwise could not tell
  actions apart), row ``a`` also holds ``x=<action>`` and one crossed token
  ``x=<action>|<token>`` per context token, carrying that token's value. Without it every
  row is the context vector: policies with one model per action ("disjoint") need nothing
  more.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from voxloop.errors import ConfigError, DataError

__all__ = ["DENSE", "Context", "Featurizer"]

#: Number of dense leading features (bias, sin hour, cos hour) before the hashed buckets.
DENSE = 3
_MIN_DIM = DENSE + 5
_DAYPARTS = ("night", "morning", "afternoon", "evening")


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a policy may know about a turn before choosing.

    ``hour`` is the user's local hour (0-23); ``attributes`` are user attributes (a plan,
    an age band, a numeric affinity...), strings or numbers.
    """

    user_id: str | None = None
    intent: str | None = None
    domain: str | None = None
    hour: int | None = None
    device: str | None = None
    attributes: Mapping[str, str | float] = field(default_factory=dict)


@lru_cache(maxsize=1 << 16)
def _bucket(token: str, n_buckets: int) -> tuple[int, float]:
    """Stable (bucket, sign) of a token."""
    h = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")
    return DENSE + (h >> 1) % n_buckets, 1.0 if h & 1 else -1.0


class Featurizer:
    """Turns a `Context` (and candidate actions) into fixed-size feature vectors."""

    def __init__(self, dim: int = 64, *, action_crosses: bool = False) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < _MIN_DIM:
            raise ConfigError(f"must be an integer >= {_MIN_DIM}, got {dim!r}", key="dim")
        self.dim = dim
        self.action_crosses = bool(action_crosses)

    def __repr__(self) -> str:
        return f"Featurizer(dim={self.dim}, action_crosses={self.action_crosses})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Featurizer) and (self.dim, self.action_crosses) == (
            other.dim,
            other.action_crosses,
        )

    def __hash__(self) -> int:
        return hash((self.dim, self.action_crosses))

    def tokens(self, context: Context) -> list[tuple[str, float]]:
        """The hashed tokens of a context with their values (see the module docstring)."""
        if not isinstance(context, Context):
            raise DataError(f"expected a Context, got {type(context).__name__}", field="context")
        out: list[tuple[str, float]] = []
        for prefix, value in (
            ("u=", context.user_id),
            ("i=", context.intent),
            ("d=", context.domain),
            ("dev=", context.device),
        ):
            if value is not None:
                out.append((prefix + str(value), 1.0))
        hour = context.hour
        if hour is not None:
            out.append(("p=" + _DAYPARTS[_check_hour(hour) // 6], 1.0))
        for key in sorted(context.attributes):
            attr = context.attributes[key]
            if isinstance(attr, str):
                out.append((f"a:{key}={attr}", 1.0))
            elif (
                isinstance(attr, int | float) and not isinstance(attr, bool) and math.isfinite(attr)
            ):
                out.append((f"a:{key}", float(attr)))
            else:
                raise DataError(
                    f"user attribute must be a string or a finite number, got {attr!r}",
                    field=f"attributes.{key}",
                )
        return out

    def context_vector(self, context: Context) -> np.ndarray:
        """The context's feature vector (no action tokens), shape ``(dim,)``."""
        x = np.zeros(self.dim)
        self._fill(x, context, self.tokens(context))
        return x

    def matrix(self, context: Context, actions: Sequence[str]) -> np.ndarray:
        """One feature row per candidate action, shape ``(len(actions), dim)``."""
        tokens = self.tokens(context)
        base = np.zeros(self.dim)
        self._fill(base, context, tokens)
        rows = np.tile(base, (len(actions), 1))
        if self.action_crosses:
            n = self.dim - DENSE
            idx: list[int] = []
            val: list[float] = []
            for r, action in enumerate(actions):
                offset = r * self.dim
                b, s = _bucket("x=" + action, n)
                idx.append(offset + b)
                val.append(s)
                for token, value in tokens:
                    b, s = _bucket(f"x={action}|{token}", n)
                    idx.append(offset + b)
                    val.append(s * value)
            np.add.at(rows.reshape(-1), idx, val)
        return rows

    def _fill(self, x: np.ndarray, context: Context, tokens: list[tuple[str, float]]) -> None:
        x[0] = 1.0
        if context.hour is not None:
            angle = 2.0 * math.pi * context.hour / 24.0
            x[1] = math.sin(angle)
            x[2] = math.cos(angle)
        n = self.dim - DENSE
        for token, value in tokens:
            b, s = _bucket(token, n)
            x[b] += s * value

    def to_dict(self) -> dict[str, Any]:
        """The featurizer's configuration, for a saved policy."""
        return {"dim": self.dim, "action_crosses": self.action_crosses, "hash": "blake2b-64"}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Featurizer:
        """Rebuild a featurizer saved with `to_dict`."""
        extra = set(data) - {"dim", "action_crosses", "hash"}
        if extra:
            raise ConfigError(f"unknown keys {sorted(extra)}", key="featurizer")
        if data.get("hash", "blake2b-64") != "blake2b-64":
            raise ConfigError(f"unknown hash {data.get('hash')!r}", key="featurizer.hash")
        return cls(data.get("dim", 64), action_crosses=bool(data.get("action_crosses", False)))


def _check_hour(hour: object) -> int:
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise DataError(f"hour must be an integer 0-23, got {hour!r}", field="hour")
    return hour
