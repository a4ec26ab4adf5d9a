"""Contextual bandit policies that choose a response per user and say how likely the choice was.

Every policy keeps a ridge-regression estimate of the reward of each action given the
features of `voxloop.personalize.features` — one model per action ("disjoint", the
default) or one model over action-crossed features (``shared=True``) — and differs only in
how it turns that estimate into a probability for each candidate action:

- `EpsilonGreedy`: the best estimate with probability ``1 - epsilon`` (ties split evenly),
  every candidate with ``epsilon / k``.
- `LinUCB`: the best upper confidence bound ``mean + alpha * std`` (ties split evenly);
  deterministic, so propensity 1, unless ``epsilon > 0`` mixes in uniform exploration
  exactly as `EpsilonGreedy` does (which off-policy evaluation of other policies needs).
- `LinearThompson`: Thompson sampling with posterior ``N(theta, scale^2 A^-1)``. Its
  choice probabilities have no closed form, so each decision draws ``n_draws`` posterior
  samples of the candidates' scores (256 by default), takes the winner of each, and picks
  one of those winners uniformly: marginally exactly Thompson sampling, and the reported
  propensity (the winner's share of the draws) is the exact probability of the choice
  given the draws, which is what inverse-propensity weighting needs.

``choose`` returns a `Decision` whose ``propensity`` is the probability the policy had of
choosing that action, and ``probabilities`` the whole distribution over the candidates
(it sums to 1). The random generator is passed in (a seam): the same state and generator
state give the same decisions. State is saved as ``policy.json`` (format version, policy,
hyperparameters, featurizer, action ids) beside ``.npy`` arrays — never pickle. Policies
are not thread-safe: a server serialises ``choose``/``update`` on one policy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from voxloop.errors import ConfigError, DataError, ModelFormatError
from voxloop.nlu.base import write_json_atomic
from voxloop.personalize.features import Context, Featurizer

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "POLICIES",
    "REFRESH_EVERY",
    "STATE_FILE",
    "Decision",
    "EpsilonGreedy",
    "LinUCB",
    "LinearPolicy",
    "LinearThompson",
    "Policy",
    "load_policy",
]

FORMAT = "voxloop-policy"
FORMAT_VERSION = 1
STATE_FILE = "policy.json"
_ARRAYS = ("A", "A_inv", "b", "theta", "counts")
#: A model's inverse is recomputed from ``A`` every this many updates (Sherman-Morrison
#: updates in between).
REFRESH_EVERY = 4096


@dataclass(frozen=True, slots=True)
class Decision:
    """What a policy chose among ``actions``, and how likely that choice was.

    ``probabilities[i]`` is the probability of ``actions[i]`` (they sum to 1);
    ``propensity == probabilities[index]``; ``scores`` are the policy's own scores (the
    reward estimate, the upper confidence bound, or the posterior mean).
    """

    action: str
    propensity: float
    index: int
    actions: tuple[str, ...]
    probabilities: tuple[float, ...]
    scores: tuple[float, ...]


@runtime_checkable
class Policy(Protocol):
    """Chooses among candidate actions for a context and learns from rewards."""

    name: ClassVar[str]
    featurizer: Featurizer

    def choose(self, context: Context, actions: Sequence[str]) -> Decision: ...

    def probabilities(self, context: Context, actions: Sequence[str]) -> np.ndarray: ...

    def update(self, context: Context, action: str, reward: float) -> None: ...

    def save(self, path: str | Path) -> None: ...


class _Ridge:
    """Ridge regression of reward on features, per action or shared, updated online.

    Holds ``A = l2*I + sum x x^T``, its inverse (Sherman-Morrison updates), ``b = sum r x``
    and ``theta = A^-1 b``, stacked with one slice per action (disjoint) or one slice.
    """

    def __init__(self, dim: int, *, shared: bool, l2: float) -> None:
        self.dim = dim
        self.shared = shared
        self.l2 = l2
        self.actions: list[str] = []
        self.index: dict[str, int] = {}
        self.counts = np.zeros(0, dtype=np.int64)
        m = 1 if shared else 0
        self.A = np.tile(np.eye(dim) * l2, (m, 1, 1))
        self.A_inv = np.tile(np.eye(dim) / l2, (m, 1, 1))
        self.b = np.zeros((m, dim))
        self.theta = np.zeros((m, dim))

    def _add_action(self, action: str) -> int:
        self.index[action] = len(self.actions)
        self.actions.append(action)
        self.counts = np.append(self.counts, 0)
        if not self.shared:
            d = self.dim
            self.A = np.concatenate([self.A, (np.eye(d) * self.l2)[None]])
            self.A_inv = np.concatenate([self.A_inv, (np.eye(d) / self.l2)[None]])
            self.b = np.concatenate([self.b, np.zeros((1, d))])
            self.theta = np.concatenate([self.theta, np.zeros((1, d))])
        return self.index[action]

    def mean_var(
        self, X: np.ndarray, actions: Sequence[str], same_rows: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Estimated reward and its variance factor ``x^T A^-1 x`` for each row."""
        if self.shared:
            V = X @ self.A_inv[0]
            return X @ self.theta[0], np.einsum("kd,kd->k", V, X)
        k = len(actions)
        idx = np.fromiter((self.index.get(a, -1) for a in actions), dtype=np.intp, count=k)
        known = idx >= 0
        mean = np.zeros(k)
        var = np.einsum("kd,kd->k", X, X) / self.l2  # prior of an action never updated
        m = len(self.actions)
        if not known.any():
            return mean, var
        if same_rows and m <= 4 * k:
            x = X[0]
            ax = np.matmul(self.A_inv, x)  # one small gemv per action: never multithreaded
            mean[known] = (self.theta @ x)[idx[known]]
            var[known] = (ax @ x)[idx[known]]
        else:
            for r in np.flatnonzero(known):
                i = idx[r]
                x = X[r]
                mean[r] = self.theta[i] @ x
                var[r] = x @ self.A_inv[i] @ x
        return mean, var

    def covariance(self, X: np.ndarray) -> np.ndarray:
        """Posterior covariance factor of the shared model's scores, ``X A^-1 X^T``."""
        return (X @ self.A_inv[0]) @ X.T

    def update(self, x: np.ndarray, action: str, reward: float) -> None:
        i = self.index.get(action)
        if i is None:
            i = self._add_action(action)
        self.counts[i] += 1
        s = 0 if self.shared else i
        A_inv = self.A_inv[s]
        u = A_inv @ x
        A_inv -= np.outer(u, u) / (1.0 + x @ u)
        self.A[s] += np.outer(x, x)
        self.b[s] += reward * x
        updates = int(self.counts.sum()) if self.shared else int(self.counts[i])
        if updates % REFRESH_EVERY == 0:  # wipe out the rounding drift of rank-one updates
            A_inv[...] = np.linalg.inv(self.A[s])
        self.theta[s] = A_inv @ self.b[s]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in _ARRAYS}

    def restore(self, actions: list[str], arrays: Mapping[str, np.ndarray]) -> None:
        m = 1 if self.shared else len(actions)
        d = self.dim
        shapes = {
            "A": (m, d, d),
            "A_inv": (m, d, d),
            "b": (m, d),
            "theta": (m, d),
            "counts": (len(actions),),
        }
        for name, shape in shapes.items():
            array = arrays[name]
            if array.shape != shape:
                raise ModelFormatError(f"{name}.npy has shape {array.shape}, expected {shape}")
            setattr(self, name, array.astype(np.int64 if name == "counts" else np.float64))
        self.actions = list(actions)
        self.index = {a: i for i, a in enumerate(actions)}


class LinearPolicy:
    """What every policy here shares: features, a ridge model, checks, sampling, save/load.

    Subclasses define ``name``, their hyperparameters and ``_distribution``.
    """

    name: ClassVar[str] = ""

    def __init__(
        self,
        *,
        featurizer: Featurizer | None = None,
        shared: bool = False,
        l2: float = 1.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.featurizer = featurizer if featurizer is not None else Featurizer()
        if not isinstance(self.featurizer, Featurizer):
            raise ConfigError("must be a Featurizer", key="featurizer")
        if shared and not self.featurizer.action_crosses:
            raise ConfigError(
                "a shared model needs Featurizer(action_crosses=True), or it cannot tell "
                "actions apart",
                key="featurizer.action_crosses",
            )
        self.shared = bool(shared)
        self.l2 = _positive(l2, "l2")
        self.rng = rng if rng is not None else np.random.default_rng()
        if not isinstance(self.rng, np.random.Generator):
            raise ConfigError("must be a numpy.random.Generator", key="rng")
        self.model_ = _Ridge(self.featurizer.dim, shared=self.shared, l2=self.l2)

    # ------------------------------------------------------------------ the online path

    def choose(self, context: Context, actions: Sequence[str]) -> Decision:
        """Choose one of ``actions`` for ``context``; the decision carries its propensity."""
        self._check_actions(actions)
        return self.choose_features(self.featurizer.matrix(context, actions), actions)

    def choose_features(self, X: np.ndarray, actions: Sequence[str]) -> Decision:
        """`choose` with the feature rows already built (one row per action)."""
        X = self._check_features(X, actions)
        p, scores = self._distribution(X, actions)
        cumulative = np.cumsum(p)
        i = int(np.searchsorted(cumulative, self.rng.random() * cumulative[-1], side="right"))
        i = min(i, len(actions) - 1)
        return Decision(
            action=actions[i],
            propensity=float(p[i]),
            index=i,
            actions=tuple(actions),
            probabilities=tuple(p.tolist()),
            scores=tuple(scores.tolist()),
        )

    def probabilities(self, context: Context, actions: Sequence[str]) -> np.ndarray:
        """The probability of choosing each of ``actions`` (a Monte-Carlo estimate for
        `LinearThompson`)."""
        self._check_actions(actions)
        return self.probabilities_features(self.featurizer.matrix(context, actions), actions)

    def probabilities_features(self, X: np.ndarray, actions: Sequence[str]) -> np.ndarray:
        """`probabilities` with the feature rows already built."""
        X = self._check_features(X, actions)
        return self._distribution(X, actions)[0]

    def estimates(self, context: Context, actions: Sequence[str]) -> np.ndarray:
        """The ridge model's current reward estimate for each of ``actions``."""
        self._check_actions(actions)
        X = self._check_features(self.featurizer.matrix(context, actions), actions)
        return self._mean_var(X, actions)[0]

    def update(self, context: Context, action: str, reward: float) -> None:
        """Learn from the reward of ``action`` in ``context`` (any real number; 0/1 for a
        success signal)."""
        self._check_actions([action])
        self.update_features(self.featurizer.matrix(context, [action])[0], action, reward)

    def update_features(self, x: np.ndarray, action: str, reward: float) -> None:
        """`update` with the action's feature row already built."""
        if not isinstance(action, str) or not action:
            raise DataError(f"action must be a non-empty string, got {action!r}", field="action")
        if isinstance(reward, bool) or not isinstance(reward, int | float | np.number):
            raise DataError(f"reward must be a number, got {reward!r}", field="reward")
        if not math.isfinite(reward):
            raise DataError(f"reward must be finite, got {reward!r}", field="reward")
        x = self._check_features(np.asarray(x, dtype=np.float64)[None, :], [action])[0]
        self.model_.update(x, action, float(reward))

    # ------------------------------------------------------------------ subclasses

    def _distribution(self, X: np.ndarray, actions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, scores) over the candidate rows."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {}

    def _mean_var(self, X: np.ndarray, actions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return self.model_.mean_var(X, actions, same_rows=not self.featurizer.action_crosses)

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _check_actions(actions: Sequence[str]) -> None:
        if isinstance(actions, str) or not isinstance(actions, Sequence):
            raise DataError(
                f"actions must be a sequence of action ids, got {type(actions).__name__}",
                field="actions",
            )
        if len(actions) == 0:
            raise DataError("no candidate actions to choose from", field="actions")
        for a in actions:
            if not isinstance(a, str) or not a:
                raise DataError(f"action ids must be non-empty strings, got {a!r}", field="actions")
        if len(set(actions)) != len(actions):
            raise DataError(f"duplicate action ids in {list(actions)}", field="actions")

    def _check_features(self, X: np.ndarray, actions: Sequence[str]) -> np.ndarray:
        self._check_actions(actions)
        X = np.asarray(X, dtype=np.float64)
        if X.shape != (len(actions), self.featurizer.dim):
            raise DataError(
                f"features must have shape ({len(actions)}, {self.featurizer.dim}) "
                f"(actions x dim), got {X.shape}",
                field="features",
            )
        if not np.isfinite(X).all():
            raise DataError("features must be finite", field="features")
        return X

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Save the state to a directory: ``policy.json`` and ``.npy`` arrays, no pickle."""
        from voxloop import __version__

        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        for name, array in self.model_.arrays().items():
            np.save(directory / f"{name}.npy", array, allow_pickle=False)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "policy": self.name,
            "params": {"shared": self.shared, "l2": self.l2, **self._params()},
            "featurizer": self.featurizer.to_dict(),
            "actions": list(self.model_.actions),
            "produced_by": f"voxloop {__version__}",
        }
        write_json_atomic(directory / STATE_FILE, manifest)

    @classmethod
    def load(cls, path: str | Path, rng: np.random.Generator | None = None) -> Self:
        """Load a state saved by `save` (of this policy type)."""
        policy = load_policy(path, rng=rng)
        if not isinstance(policy, cls):
            raise ModelFormatError(f"{path}: a saved {policy.name!r} policy, not {cls.name!r}")
        return policy

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params}, shared={self.shared}, l2={self.l2})"


class EpsilonGreedy(LinearPolicy):
    """The action with the best reward estimate, or a uniformly random one w.p. ``epsilon``."""

    name: ClassVar[str] = "epsilon-greedy"

    def __init__(
        self,
        epsilon: float = 0.1,
        *,
        featurizer: Featurizer | None = None,
        shared: bool = False,
        l2: float = 1.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(featurizer=featurizer, shared=shared, l2=l2, rng=rng)
        self.epsilon = _probability(epsilon, "epsilon")

    def _params(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

    def _distribution(self, X: np.ndarray, actions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        mean, _ = self._mean_var(X, actions)
        return _greedy(mean, self.epsilon), mean


class LinUCB(LinearPolicy):
    """The best upper confidence bound ``mean + alpha * sqrt(x^T A^-1 x)`` (Li et al. 2010),
    with optional uniform exploration ``epsilon``."""

    name: ClassVar[str] = "linucb"

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        epsilon: float = 0.0,
        featurizer: Featurizer | None = None,
        shared: bool = False,
        l2: float = 1.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(featurizer=featurizer, shared=shared, l2=l2, rng=rng)
        self.alpha = _nonnegative(alpha, "alpha")
        self.epsilon = _probability(epsilon, "epsilon")

    def _params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "epsilon": self.epsilon}

    def _distribution(self, X: np.ndarray, actions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        mean, var = self._mean_var(X, actions)
        ucb = mean + self.alpha * np.sqrt(np.maximum(var, 0.0))
        return _greedy(ucb, self.epsilon), ucb


class LinearThompson(LinearPolicy):
    """Thompson sampling from ``N(theta, scale^2 A^-1)`` (Agrawal & Goyal 2013); choice
    probabilities from ``n_draws`` posterior draws per decision (see the module docstring)."""

    name: ClassVar[str] = "thompson"

    def __init__(
        self,
        scale: float = 0.5,
        *,
        n_draws: int = 256,
        featurizer: Featurizer | None = None,
        shared: bool = False,
        l2: float = 1.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(featurizer=featurizer, shared=shared, l2=l2, rng=rng)
        self.scale = _nonnegative(scale, "scale")
        if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
            raise ConfigError(f"must be a positive integer, got {n_draws!r}", key="n_draws")
        self.n_draws = n_draws

    def _params(self) -> dict[str, Any]:
        return {"scale": self.scale, "n_draws": self.n_draws}

    def _distribution(self, X: np.ndarray, actions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        mean, var = self._mean_var(X, actions)
        k = len(actions)
        z = self.rng.standard_normal((self.n_draws, k))
        if self.shared:
            draws = mean + self.scale * (z @ _sqrt_factor(self.model_.covariance(X)).T)
        else:
            draws = mean + z * (self.scale * np.sqrt(np.maximum(var, 0.0)))
        wins = np.bincount(np.argmax(draws, axis=1), minlength=k)
        return wins / self.n_draws, mean


#: Policy name (as saved in ``policy.json``) -> class.
POLICIES: dict[str, type[LinearPolicy]] = {
    cls.name: cls for cls in (EpsilonGreedy, LinUCB, LinearThompson)
}


def load_policy(path: str | Path, rng: np.random.Generator | None = None) -> LinearPolicy:
    """Load any saved policy, choosing the class from its ``policy.json``."""
    directory = Path(path)
    file = directory / STATE_FILE
    if not file.is_file():
        raise ModelFormatError(f"{directory}: not a saved voxloop policy (no {STATE_FILE})")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{file}: damaged policy state ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFormatError(f"{file}: not a voxloop policy state")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{file}: policy format version {version!r}, this voxloop reads version "
            f"{FORMAT_VERSION}; retrain the policy (or replay its log) with this version"
        )
    cls = POLICIES.get(manifest.get("policy", ""))
    if cls is None:
        raise ModelFormatError(f"{file}: unknown policy {manifest.get('policy')!r}")
    try:
        featurizer = Featurizer.from_dict(manifest["featurizer"])
        params = dict(manifest["params"])
        actions = [str(a) for a in manifest["actions"]]
        policy = cls(featurizer=featurizer, rng=rng, **params)
        arrays = {}
        for name in _ARRAYS:
            arrays[name] = np.load(directory / f"{name}.npy", allow_pickle=False)
    except (KeyError, TypeError, ConfigError, OSError, ValueError) as e:
        raise ModelFormatError(f"{file}: incomplete or damaged policy state ({e})") from None
    try:
        policy.model_.restore(actions, arrays)
    except ModelFormatError as e:
        raise ModelFormatError(f"{directory}: {e}") from None
    return policy


# ---------------------------------------------------------------------- helpers


def _greedy(scores: np.ndarray, epsilon: float) -> np.ndarray:
    """Best score w.p. 1 - epsilon (ties split evenly), uniform w.p. epsilon."""
    top = scores >= scores.max()
    return epsilon / len(scores) + (1.0 - epsilon) * top / top.sum()


def _sqrt_factor(cov: np.ndarray) -> np.ndarray:
    """``L`` with ``L L^T = cov`` for a PSD matrix: Cholesky with a tiny jitter (fast, and
    never multithreaded at this size), eigendecomposition if the matrix is singular."""
    k = len(cov)
    jitter = 1e-10 * max(float(np.trace(cov)) / k, 1e-300)
    try:
        return np.linalg.cholesky(cov + jitter * np.eye(k))
    except np.linalg.LinAlgError:
        w, U = np.linalg.eigh(cov)
        return U * np.sqrt(np.maximum(w, 0.0))


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"must be a finite number, got {value!r}", key=key)
    return float(value)


def _positive(value: object, key: str) -> float:
    v = _number(value, key)
    if v <= 0:
        raise ConfigError(f"must be > 0, got {value!r}", key=key)
    return v


def _nonnegative(value: object, key: str) -> float:
    v = _number(value, key)
    if v < 0:
        raise ConfigError(f"must be >= 0, got {value!r}", key=key)
    return v


def _probability(value: object, key: str) -> float:
    v = _number(value, key)
    if not 0.0 <= v <= 1.0:
        raise ConfigError(f"must be in [0, 1], got {value!r}", key=key)
    return v
