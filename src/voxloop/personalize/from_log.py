"""Off-policy evaluation straight from the turn log: what ``voxloop ope`` runs.

Every turn a policy answered at the server carries ``action``, ``propensity`` and
``candidates`` (the actions it chose among). Its reward comes from the feedback about it
(`reward_from_feedback`); turns with no reward signal are left out unless
``default_reward`` is given (e.g. 1.0: no complaint is a success). The context is rebuilt
from what the log keeps — user, intent, domain and the UTC hour of the turn; a request's
``device`` and ``attributes`` are not logged, so a policy that relies on them is evaluated
without them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from voxloop.errors import DataError
from voxloop.personalize.bandits import Policy
from voxloop.personalize.features import Context
from voxloop.personalize.ope import OffPolicyEvaluation, evaluate_policy
from voxloop.personalize.reward import reward_from_feedback
from voxloop.schema import Feedback

__all__ = ["LoggedDecisions", "evaluate_log", "logged_decisions"]


@dataclass(frozen=True)
class LoggedDecisions:
    """The policy-answered turns of a log, ready for `evaluate_policy`."""

    contexts: list[Context]
    candidates: list[tuple[str, ...]]
    actions: list[str]
    propensities: np.ndarray
    rewards: np.ndarray
    without_reward: int
    logged_value: float

    def __len__(self) -> int:
        return len(self.actions)


def logged_decisions(
    log: str | Path,
    *,
    since: date | str | None = None,
    until: date | str | None = None,
    default_reward: float | None = None,
    arm: str | None = None,
) -> LoggedDecisions:
    """Read the turns a policy answered (and their rewards) from a turn log; ``arm``:
    only the turns of that experiment arm."""
    from voxloop.log.store import LogStore

    store = LogStore(log, since=since, until=until)
    columns = store.columns("turns")
    if "candidates" not in columns:
        raise DataError(
            f"{log}: the turn log has no 'candidates' column: no turn was answered by a "
            "response policy (voxloop serve --policy / --default-policy)",
            field="candidates",
        )
    if arm is not None:
        arms = [
            r["arm"]
            for r in store.sql(
                "SELECT DISTINCT arm FROM turns WHERE arm IS NOT NULL ORDER BY arm"
            ).to_pylist()
        ]
        if arm not in arms:
            raise DataError(
                f"no arm {arm!r} in the turn log; "
                + (f"its arms: {', '.join(arms)}" if arms else "it has no experiment arms"),
                file=log,
                field="arm",
            )
    turns = store.sql(
        "SELECT turn_id, user_id, intent, domain, HOUR(ts AT TIME ZONE 'UTC') AS hour, action, "
        "propensity, "
        "candidates FROM turns WHERE action IS NOT NULL"
        + ("" if arm is None else " AND arm = '" + arm.replace("'", "''") + "'")
        + " ORDER BY ts, turn_id"
    ).to_pylist()
    signals: dict[str, list[Feedback]] = defaultdict(list)
    if store.files("feedback"):
        for row in store.sql("SELECT turn_id, ts, kind, value FROM feedback").to_pylist():
            signals[row["turn_id"]].append(
                Feedback(row["turn_id"], row["ts"], row["kind"], float(row["value"]))
            )
    contexts, offered, actions, propensities, rewards = [], [], [], [], []
    missing = 0
    for row in turns:
        reward = reward_from_feedback(signals.get(row["turn_id"], ()), default=default_reward)
        if reward is None:
            missing += 1
            continue
        candidates = tuple(row["candidates"] or ())
        p = row["propensity"]
        if row["action"] not in candidates or p is None or not 0 < p <= 1:
            raise DataError(
                f"turn {row['turn_id']}: action {row['action']!r} with propensity {p!r} "
                f"among candidates {list(candidates)}: not a policy decision voxloop can "
                "evaluate",
                field="propensity",
            )
        contexts.append(
            Context(
                user_id=row["user_id"],
                intent=row["intent"],
                domain=row["domain"],
                hour=int(row["hour"]),
            )
        )
        offered.append(candidates)
        actions.append(row["action"])
        propensities.append(p)
        rewards.append(reward)
    r = np.asarray(rewards, dtype=np.float64)
    return LoggedDecisions(
        contexts,
        offered,
        actions,
        np.asarray(propensities, dtype=np.float64),
        r,
        missing,
        float(r.mean()) if len(r) else float("nan"),
    )


def evaluate_log(
    log: str | Path,
    policy: Policy,
    *,
    since: date | str | None = None,
    until: date | str | None = None,
    default_reward: float | None = None,
    arm: str | None = None,
    estimators: Sequence[str] | None = None,
    n_bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[OffPolicyEvaluation, LoggedDecisions]:
    """The value ``policy`` would have had on the log's policy-answered turns."""
    decisions = logged_decisions(
        log, since=since, until=until, default_reward=default_reward, arm=arm
    )
    if len(decisions) == 0:
        raise DataError(
            "no policy-answered turn with a reward"
            + ("" if arm is None else f" in arm {arm!r}")
            + (
                f" ({decisions.without_reward} without one: try --default-reward)"
                if decisions.without_reward
                else ""
            ),  # fmt: skip
            file=log,
            field="action",
        )
    result = evaluate_policy(
        policy,
        decisions.contexts,
        decisions.candidates,
        decisions.actions,
        decisions.propensities,
        decisions.rewards,
        estimators=estimators,
        n_bootstrap=n_bootstrap,
        level=level,
        rng=np.random.default_rng(seed),
    )
    return result, decisions
