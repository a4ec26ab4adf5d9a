"""The response half of a turn at the server: candidates from the dialog, one chosen by a
policy, learned from feedback.

For a turn routed to a policy, `Responder.respond` builds the candidate responses
(`voxloop.dialog.candidates`, from the parse and the session's state), asks the policy to
choose one and returns it with its propensity; the server logs ``action`` and
``propensity`` in the turn, which is what off-policy evaluation needs later. When feedback
about the turn arrives (`Responder.feedback`), its reward (`reward_from_feedback`) updates
the policy that chose — once per turn: the first feedback that yields a reward.

Policies are saved bandit policies (`voxloop.personalize.load_policy`) or the built-in
``fixed`` (always the first candidate, propensity 1: the no-personalisation control).
Session states and turns awaiting feedback are kept in bounded LRU maps.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from voxloop.dialog.policy import Candidate, candidates, default_catalog
from voxloop.dialog.responses import Catalog
from voxloop.dialog.state import SessionState
from voxloop.errors import ConfigError, VoxloopError
from voxloop.personalize.bandits import LinearPolicy, load_policy
from voxloop.personalize.features import Context
from voxloop.personalize.reward import reward_from_feedback
from voxloop.schema import Feedback, Parse

__all__ = ["FIXED", "Response", "Responder", "TurnContext"]

#: The built-in policy: always the first candidate.
FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What the client tells about the turn beyond its text (all optional)."""

    hour: int | None = None
    device: str | None = None
    attributes: Mapping[str, str | float] | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """The response chosen for a turn."""

    action: str
    kind: str
    text: str
    propensity: float
    policy: str
    candidates: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "text": self.text,
            "propensity": round(self.propensity, 6),
            "policy": self.policy,
        }


@dataclass(frozen=True, slots=True)
class _Pending:
    policy: str
    context: Context
    action: str


class _Lru(OrderedDict[str, Any]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class Responder:
    """Chooses responses with named policies; learns from feedback."""

    def __init__(
        self,
        policies: Mapping[str, LinearPolicy] | None = None,
        *,
        catalog: Catalog | None = None,
        max_sessions: int = 100_000,
        max_pending: int = 100_000,
    ) -> None:
        self.policies: dict[str, LinearPolicy] = dict(policies or {})
        if FIXED in self.policies:
            raise ConfigError(f"{FIXED!r} is the built-in policy's name", key="policy")
        self.catalog = catalog if catalog is not None else default_catalog()
        self._sessions: _Lru = _Lru(max_sessions)
        self._pending: _Lru = _Lru(max_pending)
        self.updates = 0

    @classmethod
    def load(cls, specs: Iterable[tuple[str, Path]]) -> Responder:
        """Load saved policies, ``(name, directory)`` each."""
        policies: dict[str, LinearPolicy] = {}
        for name, path in specs:
            if name in policies or name == FIXED:
                raise ConfigError(
                    f"policy name {name!r} is given twice or reserved", key="--policy"
                )
            try:
                policies[name] = load_policy(path)
            except VoxloopError as e:
                raise ConfigError(f"cannot load policy {name!r}: {e}", key="--policy") from None
        return cls(policies)

    @property
    def names(self) -> list[str]:
        return [FIXED, *self.policies]

    def respond(
        self,
        policy: str,
        parse: Parse,
        *,
        turn_id: str,
        timestamp: datetime,
        user_id: str | None = None,
        session_id: str | None = None,
        context: TurnContext | None = None,
    ) -> Response:
        """Choose this turn's response with ``policy`` and advance the session's state."""
        key = session_id or user_id
        state = self._sessions.get(key) if key is not None else None
        options: list[Candidate] = candidates(parse, state, self.catalog)
        context = context or TurnContext()
        ctx = Context(
            user_id=user_id,
            intent=parse.intent,
            domain=parse.domain,
            hour=context.hour if context.hour is not None else timestamp.hour,
            device=context.device,
            attributes=dict(context.attributes or {}),
        )
        if policy == FIXED:
            index, propensity = 0, 1.0
        else:
            chooser = self.policies.get(policy)
            if chooser is None:
                raise ConfigError(f"no policy {policy!r} is loaded", key="policy")
            decision = chooser.choose(ctx, [c.action for c in options])
            index, propensity = decision.index, decision.propensity
            self._pending.put(turn_id, _Pending(policy, ctx, options[index].action))
        chosen = options[index]
        if key is not None:
            self._sessions.put(key, chosen.next_state)
        offered = tuple(c.action for c in options)
        return Response(chosen.action, chosen.kind, chosen.text, propensity, policy, offered)

    def feedback(self, signal: Feedback) -> bool:
        """Update the policy that chose the turn's response; True when it learned."""
        pending: _Pending | None = self._pending.get(signal.turn_id)
        if pending is None:
            return False
        reward = reward_from_feedback([signal])
        if reward is None:
            return False
        del self._pending[signal.turn_id]
        self.policies[pending.policy].update(pending.context, pending.action, reward)
        self.updates += 1
        return True

    def save(self, directory: str | Path) -> list[Path]:
        """Save every learned policy under ``directory/NAME``."""
        saved = []
        for name, policy in self.policies.items():
            path = Path(directory) / name
            policy.save(path)
            saved.append(path)
        return saved

    def state_of(self, key: str) -> SessionState | None:
        """The dialog state of a session (or user) id, if one is kept."""
        return self._sessions.get(key)
