"""Simulated users who talk to a running voxloop server over its real HTTP API.

Each user has an activity level, favourite domains and a taste in responses (brief or
detailed). Over the simulated days they open sessions at hours of a daily rhythm and say
held-out utterances of their favourite domains. The server's answer is judged the way a
person would judge it — did it understand what I meant (the utterance's gold intent)?
did I like how it answered? — and never by which arm or model answered:

- not understood: a barge-in sometimes; usually a rephrase a few seconds later (another
  utterance of the same intent), at most twice; otherwise often giving up (abandonment),
  or sometimes saying the task failed (task success 0);
- understood: sometimes a barge-in anyway; often a rating of the response when a policy
  chose one (1.0 when the user likes its style, else 0.0); else sometimes saying the task
  succeeded (task success 1).

Requests carry their simulated time (the server runs with ``--replay-clock``).
"""

from __future__ import annotations

import http.client
import json
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from voxloop.errors import DataError, VoxloopError
from voxloop.schema import Utterance

__all__ = ["ApiClient", "SimulationStats", "UserSimulation"]

# Share of sessions starting in each UTC hour: night low, morning and evening peaks.
_HOURS = np.array(
    [1, 0.5, 0.3, 0.3, 0.3, 0.5, 2, 5, 6, 4, 3, 3, 4, 3, 3, 3, 4, 6, 8, 8, 7, 5, 3, 2], float
)
_HOURS /= _HOURS.sum()


class ApiClient:
    """A keep-alive JSON client of one server (one per thread)."""

    def __init__(self, host: str, port: int, api_key: str | None = None, timeout: float = 30):
        self.host, self.port, self.timeout = host, port, timeout
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self._connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON; a non-2xx answer raises a `VoxloopError` with the server's message."""
        data = json.dumps(body).encode()
        for attempt in range(2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout
                )
            try:
                self._connection.request("POST", path, data, self.headers)
                response = self._connection.getresponse()
                payload = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        if not 200 <= response.status < 300:
            raise VoxloopError(f"POST {path} answered {response.status}: {payload[:300]!r}")
        result: dict[str, Any] = json.loads(payload)
        return result

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass
class SimulationStats:
    """What the simulated users did (the ground truth the KPIs should see)."""

    users: int = 0
    turns: int = 0
    understood: int = 0
    rephrases: int = 0
    feedback: int = 0
    by_arm: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, other: SimulationStats) -> None:
        self.users += other.users
        self.turns += other.turns
        self.understood += other.understood
        self.rephrases += other.rephrases
        self.feedback += other.feedback
        for arm, (turns, understood) in other.by_arm.items():
            self.by_arm[arm][0] += turns
            self.by_arm[arm][1] += understood


@dataclass(frozen=True)
class _User:
    id: str
    activity: float
    likes: np.ndarray
    brief_preference: float  # logit of liking a brief answer (minus that of a detailed one)


class UserSimulation:
    """``users`` simulated users speaking ``utterances`` over ``days`` from ``start``."""

    def __init__(
        self,
        utterances: Sequence[Utterance],
        *,
        users: int = 300,
        days: int = 4,
        start: date = date(2026, 11, 2),
        seed: int = 0,
        sessions_per_day: float = 1.0,
        turns_per_session: float = 2.0,
        brief_preference: float = -0.7,
    ) -> None:
        labelled = [u for u in utterances if u.intent]
        if not labelled:
            raise DataError("no labelled utterances to simulate users with")
        if users < 1 or days < 1:
            raise DataError("users and days must be at least 1", field="users")
        self.utterances = labelled
        self.days, self.start, self.seed = days, start, seed
        self.turns_per_session = turns_per_session
        self.domains = sorted({u.domain or "(none)" for u in labelled})
        self.by_domain: dict[str, list[int]] = defaultdict(list)
        self.by_intent: dict[str, list[int]] = defaultdict(list)
        for i, u in enumerate(labelled):
            self.by_domain[u.domain or "(none)"].append(i)
            self.by_intent[str(u.intent)].append(i)
        rng = np.random.default_rng(seed)
        self.users = [
            _User(
                id=f"demo-user-{seed}-{k:04d}",
                activity=float(rng.gamma(2.0, sessions_per_day / 2)),
                likes=rng.dirichlet(np.full(len(self.domains), 0.7)),
                brief_preference=float(rng.normal(brief_preference, 1.0)),
            )
            for k in range(users)
        ]

    def run(
        self,
        connect: Callable[[], ApiClient],
        *,
        workers: int = 2,
        on_user: Callable[[], None] | None = None,
    ) -> SimulationStats:
        """Every user's days, ``workers`` users at a time (one connection each)."""
        total = SimulationStats()
        lock = threading.Lock()
        local = threading.local()
        clients: list[ApiClient] = []

        def one(k: int) -> None:
            if not hasattr(local, "client"):
                local.client = connect()
                with lock:
                    clients.append(local.client)
            stats = self._live(self.users[k], local.client, np.random.default_rng([self.seed, k]))
            with lock:
                total.add(stats)
            if on_user is not None:
                on_user()

        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="demo-user") as pool:
                for future in [pool.submit(one, k) for k in range(len(self.users))]:
                    future.result()
        finally:
            for client in clients:
                client.close()
        return total

    # --- one user ---------------------------------------------------------------------
    def _live(self, user: _User, client: ApiClient, rng: np.random.Generator) -> SimulationStats:
        stats = SimulationStats(users=1)
        origin = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)
        for day in range(self.days):
            for s in range(rng.poisson(user.activity)):
                now = origin + timedelta(
                    days=day, hours=int(rng.choice(24, p=_HOURS)), seconds=rng.uniform(0, 3000)
                )
                session = f"{user.id}-{day}-{s}"
                for _ in range(int(rng.geometric(1 / self.turns_per_session))):
                    domain = self.domains[int(rng.choice(len(self.domains), p=user.likes))]
                    pool = self.by_domain[domain]
                    i = pool[int(rng.integers(len(pool)))]
                    now = self._speak(user, client, rng, stats, i, session, now)
                    now += timedelta(seconds=float(rng.lognormal(math.log(45), 0.5)))
        return stats

    def _speak(
        self,
        user: _User,
        client: ApiClient,
        rng: np.random.Generator,
        stats: SimulationStats,
        i: int,
        session: str,
        now: datetime,
    ) -> datetime:
        """One request and what follows it; returns the time of the last thing said."""
        for attempt in range(3):
            utterance = self.utterances[i]
            answer = client.post(
                "/v1/parse",
                {
                    "text": utterance.text,
                    "user_id": user.id,
                    "session_id": session,
                    "timestamp": now.isoformat(),
                },
            )
            understood = answer.get("intent") == utterance.intent
            stats.turns += 1
            stats.understood += understood
            arm = str(answer.get("arm", "(none)"))
            stats.by_arm[arm][0] += 1
            stats.by_arm[arm][1] += understood

            def feedback(
                kind: str,
                value: float,
                after: float,
                turn: str = answer["turn_id"],
                at: datetime = now,
            ) -> None:
                when = at + timedelta(seconds=after)
                client.post(
                    "/v1/feedback",
                    {"turn_id": turn, "kind": kind, "value": value, "user_id": user.id,
                     "timestamp": when.isoformat()},
                )  # fmt: skip
                stats.feedback += 1

            if understood:
                if rng.random() < 0.02:
                    feedback("barge_in", 1.0, float(rng.uniform(0.3, 2.0)))
                    return now
                response = answer.get("response")
                if response is not None and rng.random() < 0.3:
                    liked = rng.random() < self._likes(user, str(response["text"]))
                    feedback("rating", 1.0 if liked else 0.0, float(rng.uniform(3, 20)))
                elif rng.random() < 0.3:
                    feedback("task_success", 1.0, float(rng.uniform(10, 40)))
                return now
            if rng.random() < 0.25:
                feedback("barge_in", 1.0, float(rng.uniform(0.3, 2.0)))
            if attempt < 2 and rng.random() < 0.6:
                stats.rephrases += 1
                same = self.by_intent[str(utterance.intent)]
                i = same[int(rng.integers(len(same)))]
                now += timedelta(seconds=float(rng.uniform(2, 8)))
                continue
            if rng.random() < 0.5:
                feedback("abandonment", 1.0, float(rng.uniform(3, 15)))
            elif rng.random() < 0.3:  # gave up, and said the task was not done
                feedback("task_success", 0.0, float(rng.uniform(10, 40)))
            return now
        return now

    @staticmethod
    def _likes(user: _User, text: str) -> float:
        """How likely the user likes an answer: brief (at most four words) or detailed."""
        brief = len(text.split()) <= 4
        logit = user.brief_preference if brief else -user.brief_preference
        return 1.0 / (1.0 + math.exp(-logit))
