"""A population of simulated users with latent preferences, for tests, benchmarks and demos.

Each user ``u`` has a latent vector ``U[u]``, each action ``a`` a latent vector ``V[a]`` and a
bias; devices and parts of the day shift each action's appeal. The probability that action
``a`` earns reward 1 in context (user ``u``, device ``d``, hour ``h``) is

    p(u, d, h, a) = logistic(base + bias[a] + scale * U[u].V[a] + dev[d, a] + part[h // 6, a])

and rewards are Bernoulli draws. A context is drawn as: user uniform, device from
``device_probs``, hour uniform in 0-23. The context space is finite, so the true value of
any stationary policy is an exact sum (`policy_value`). Users carry noisy numeric
attributes (a random projection of ``U[u]`` plus noise) that a policy can generalise from.
Everything is reproducible from ``seed``; draws during a run come from the generator the
caller passes in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from voxloop.errors import ConfigError, DataError
from voxloop.personalize.bandits import Policy
from voxloop.personalize.features import Context

__all__ = ["ContextBatch", "Run", "UserSimulator", "sample_actions", "softmax"]


@dataclass(frozen=True, slots=True)
class ContextBatch:
    """Contexts as index arrays (user, device, hour), one entry per turn."""

    users: np.ndarray
    devices: np.ndarray
    hours: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


@dataclass(frozen=True, slots=True)
class Run:
    """An online run of a policy: per turn, the action index, its propensity, the drawn
    reward, the expected reward of the chosen action and the (pseudo-)regret
    ``max_a p(x, a) - p(x, chosen)``."""

    actions: np.ndarray
    propensities: np.ndarray
    rewards: np.ndarray
    expected: np.ndarray
    regret: np.ndarray


class UserSimulator:
    """Simulated users with latent per-user preferences over a fixed set of actions."""

    def __init__(
        self,
        *,
        n_users: int = 100,
        n_actions: int = 8,
        latent_dim: int = 4,
        n_attributes: int = 3,
        devices: Sequence[str] = ("speaker", "phone", "display"),
        device_probs: Sequence[float] | None = None,
        scale: float = 2.0,
        base: float = -0.5,
        attribute_noise: float = 0.5,
        intent: str = "HassGetWeather",
        domain: str = "weather",
        seed: int = 0,
    ) -> None:
        for key, value, low in (
            ("n_users", n_users, 1),
            ("n_actions", n_actions, 2),
            ("latent_dim", latent_dim, 1),
            ("n_attributes", n_attributes, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"must be an integer >= {low}, got {value!r}", key=key)
        if not devices:
            raise ConfigError("at least one device", key="devices")
        probs = (
            np.full(len(devices), 1.0 / len(devices))
            if device_probs is None
            else np.asarray(device_probs, dtype=float)
        )
        if probs.shape != (len(devices),) or (probs < 0).any() or not np.isclose(probs.sum(), 1):
            raise ConfigError("one probability per device, summing to 1", key="device_probs")
        self.n_users = n_users
        self.devices = tuple(devices)
        self.device_probs = probs
        self.actions = tuple(f"a{i}" for i in range(n_actions))
        self.intent = intent
        self.domain = domain
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.user_latent = rng.normal(0.0, 1.0 / np.sqrt(latent_dim), (n_users, latent_dim))
        self.action_latent = rng.normal(0.0, 1.0, (n_actions, latent_dim))
        self.action_bias = rng.normal(0.0, 0.3, n_actions)
        self.device_effect = rng.normal(0.0, 0.4, (len(devices), n_actions))
        self.daypart_effect = rng.normal(0.0, 0.3, (4, n_actions))
        projection = rng.normal(0.0, 1.0, (latent_dim, n_attributes))
        self.user_attributes = self.user_latent @ projection + rng.normal(
            0.0, attribute_noise, (n_users, n_attributes)
        )
        self.scale = scale
        self.base = base
        self._user_ids = {f"u{i}": i for i in range(n_users)}
        self._device_ids = {d: i for i, d in enumerate(self.devices)}

    @property
    def n_actions(self) -> int:
        return len(self.actions)

    # ------------------------------------------------------------------ contexts

    def sample(self, n: int, rng: np.random.Generator) -> ContextBatch:
        """``n`` contexts drawn from the population."""
        return ContextBatch(
            users=rng.integers(0, self.n_users, n),
            devices=rng.choice(len(self.devices), size=n, p=self.device_probs),
            hours=rng.integers(0, 24, n),
        )

    def all_contexts(self) -> tuple[ContextBatch, np.ndarray]:
        """Every possible context and its probability (they sum to 1)."""
        u, d, h = np.meshgrid(
            np.arange(self.n_users), np.arange(len(self.devices)), np.arange(24), indexing="ij"
        )
        batch = ContextBatch(u.ravel(), d.ravel(), h.ravel())
        weights = self.device_probs[batch.devices] / (self.n_users * 24)
        return batch, weights

    def context(self, batch: ContextBatch, i: int) -> Context:
        """Row ``i`` of a batch as the `Context` a policy sees."""
        user = int(batch.users[i])
        return Context(
            user_id=f"u{user}",
            intent=self.intent,
            domain=self.domain,
            hour=int(batch.hours[i]),
            device=self.devices[int(batch.devices[i])],
            attributes={f"f{j}": float(v) for j, v in enumerate(self.user_attributes[user])},
        )

    def features(self, batch: ContextBatch, *, users: bool = False) -> np.ndarray:
        """Dense features of a batch for a reward model: bias, user attributes, one-hot
        device, one-hot part of day, and (``users=True``) one-hot user."""
        n = len(batch)
        parts = [
            np.ones((n, 1)),
            self.user_attributes[batch.users],
            np.eye(len(self.devices))[batch.devices],
            np.eye(4)[batch.hours // 6],
        ]
        if users:
            parts.append(np.eye(self.n_users)[batch.users])
        return np.hstack(parts)

    # ------------------------------------------------------------------ ground truth

    def reward_probabilities(self, batch: ContextBatch) -> np.ndarray:
        """True probability of reward 1 for every action, shape ``(n, n_actions)``."""
        logits = (
            self.base
            + self.action_bias
            + self.scale * self.user_latent[batch.users] @ self.action_latent.T
            + self.device_effect[batch.devices]
            + self.daypart_effect[batch.hours // 6]
        )
        return 1.0 / (1.0 + np.exp(-logits))

    def reward_probabilities_for(self, context: Context) -> np.ndarray:
        """True reward probabilities of one `Context` made by `context`."""
        try:
            batch = ContextBatch(
                users=np.array([self._user_ids[str(context.user_id)]]),
                devices=np.array([self._device_ids[str(context.device)]]),
                hours=np.array([int(context.hour if context.hour is not None else -1)]),
            )
        except KeyError as e:
            raise DataError(f"not a context of this simulator: unknown {e}") from None
        if not 0 <= batch.hours[0] <= 23:
            raise DataError("not a context of this simulator: no hour", field="hour")
        return self.reward_probabilities(batch)[0]

    def policy_value(self, probabilities: Callable[[ContextBatch], np.ndarray]) -> float:
        """Exact expected reward of a stationary policy, given as a function from a batch of
        contexts to its action probabilities ``(n, n_actions)``."""
        batch, weights = self.all_contexts()
        pi = probabilities(batch)
        return float(weights @ (pi * self.reward_probabilities(batch)).sum(axis=1))

    def value_of(self, policy: Policy) -> float:
        """Expected reward of a policy frozen in its current state (exact for deterministic
        choice probabilities, Monte-Carlo for `LinearThompson`): one call per context."""

        def probabilities(batch: ContextBatch) -> np.ndarray:
            return np.array(
                [
                    policy.probabilities(self.context(batch, i), self.actions)
                    for i in range(len(batch))
                ]
            )

        return self.policy_value(probabilities)

    def best_value(self) -> float:
        """Expected reward of the oracle that knows every user's preferences."""
        return self.policy_value(
            lambda b: _one_hot(self.reward_probabilities(b).argmax(1), self.n_actions)
        )

    def best_fixed_action(self) -> tuple[int, float]:
        """The single action best on average over the population, and its expected reward."""
        batch, weights = self.all_contexts()
        means = weights @ self.reward_probabilities(batch)
        best = int(np.argmax(means))
        return best, float(means[best])

    def noisy_scores(self, batch: ContextBatch, noise: float, seed: int) -> np.ndarray:
        """True logits plus fixed noise per (user, device, hour, action), reproducible from
        ``seed``: the scores of an imperfect but stationary target policy."""
        table = np.random.default_rng(seed).normal(
            0.0, noise, (self.n_users, len(self.devices), 24, self.n_actions)
        )
        p = self.reward_probabilities(batch)
        return np.log(p / (1.0 - p)) + table[batch.users, batch.devices, batch.hours]

    # ------------------------------------------------------------------ running policies

    def log(
        self, batch: ContextBatch, probabilities: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log a batch under a logging policy's action probabilities ``(n, n_actions)``:
        (actions, propensities, rewards)."""
        actions = sample_actions(probabilities, rng)
        rows = np.arange(len(batch))
        p = self.reward_probabilities(batch)[rows, actions]
        rewards = (rng.random(len(batch)) < p).astype(np.float64)
        return actions, probabilities[rows, actions], rewards

    def run(self, policy: Policy, n_turns: int, rng: np.random.Generator) -> Run:
        """Run a policy online for ``n_turns``: choose, draw the reward, update."""
        batch = self.sample(n_turns, rng)
        truth = self.reward_probabilities(batch)
        actions = np.empty(n_turns, dtype=np.intp)
        propensities = np.empty(n_turns)
        rewards = np.empty(n_turns)
        uniforms = rng.random(n_turns)
        for t in range(n_turns):
            context = self.context(batch, t)
            decision = policy.choose(context, self.actions)
            a = decision.index
            reward = float(uniforms[t] < truth[t, a])
            policy.update(context, decision.action, reward)
            actions[t], propensities[t], rewards[t] = a, decision.propensity, reward
        expected = truth[np.arange(n_turns), actions]
        return Run(actions, propensities, rewards, expected, truth.max(axis=1) - expected)


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``scores / temperature``."""
    z = scores / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def sample_actions(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action index per row drawn from that row's probabilities (vectorised)."""
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities))[:, None] * cumulative[:, -1:]
    return np.minimum((cumulative <= u).sum(axis=1), probabilities.shape[1] - 1)


def _one_hot(index: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(index), k))
    out[np.arange(len(index)), index] = 1.0
    return out
