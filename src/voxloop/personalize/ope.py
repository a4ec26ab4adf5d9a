"""Off-policy evaluation: the value a new policy would have had, estimated from old logs.

Input is columnar, one entry per logged turn (`LoggedFeedback`): the logged action (an
index into a fixed list of ``K`` actions), its propensity under the logging policy, the
reward, the target policy's probability of every action ``pi`` ``(n, K)`` and, for the
model-based estimators, a reward model's prediction for every action ``q`` ``(n, K)``.
With ``w = pi[i, a_i] / propensity_i`` (the importance weight) and
``q_pi = sum_a pi[i, a] q[i, a]``:

======== ===================================================================== ==========
name     estimate                                                              needs
======== ===================================================================== ==========
ips      ``mean(w r)``                                                          --
snips    ``sum(w r) / sum(w)`` (self-normalised)                                --
dm       ``mean(q_pi)`` (direct method)                                         ``q``
dr       ``mean(q_pi + w (r - q[i, a_i]))`` (doubly robust)                     ``q``
switch   ``mean(q_pi + 1[w <= tau] w (r - q[i, a_i]))`` (switch-DR, as in obp)  ``q``
dros     ``mean(q_pi + lam w / (w^2 + lam) (r - q[i, a_i]))`` (DR with          ``q``
         optimistic shrinkage, Su et al. 2020)
======== ===================================================================== ==========

Confidence intervals are percentile bootstrap intervals over logged turns (the reward
model held fixed); all estimators share the same resamples, so one pass of ``n_bootstrap``
resamples serves them all. The effective sample size ``(sum w)^2 / sum w^2`` says how many
logged turns the estimate is really worth. `fit_reward_model` gives ``q`` by ridge
regression per action, cross-fitted so that no turn is predicted by a model that saw it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from voxloop.errors import ConfigError, DataError
from voxloop.personalize.bandits import Policy
from voxloop.personalize.features import Context, Featurizer

__all__ = [
    "ESTIMATORS",
    "Estimate",
    "LoggedFeedback",
    "OffPolicyEvaluation",
    "RidgeRewardModel",
    "check_estimators",
    "effective_sample_size",
    "evaluate",
    "evaluate_policy",
    "fit_reward_model",
    "target_probabilities",
]

#: Estimator names, in report order.
ESTIMATORS: tuple[str, ...] = ("ips", "snips", "dm", "dr", "switch", "dros")
_MODEL_BASED = frozenset({"dm", "dr", "switch", "dros"})


@dataclass(frozen=True)
class LoggedFeedback:
    """Logged turns, columnar and checked at construction.

    ``actions`` int ``(n,)`` in ``[0, K)``; ``propensities`` ``(n,)`` in ``(0, 1]``;
    ``rewards`` finite ``(n,)``; ``target`` ``(n, K)`` rows of probabilities summing to 1;
    ``predictions`` ``(n, K)`` or None.
    """

    actions: np.ndarray
    propensities: np.ndarray
    rewards: np.ndarray
    target: np.ndarray
    predictions: np.ndarray | None = None
    weights: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        actions = np.asarray(self.actions)
        propensities = np.asarray(self.propensities, dtype=np.float64)
        rewards = np.asarray(self.rewards, dtype=np.float64)
        target = np.asarray(self.target, dtype=np.float64)
        if actions.ndim != 1 or len(actions) == 0:
            raise DataError("must be a non-empty 1-d array", field="actions")
        n = len(actions)
        if not np.issubdtype(actions.dtype, np.integer):
            raise DataError(f"must be integer action indices, got {actions.dtype}", field="actions")
        if target.ndim != 2 or target.shape[0] != n:
            raise DataError(f"must have shape (n={n}, K), got {target.shape}", field="target")
        k = target.shape[1]
        for name, array in (("propensities", propensities), ("rewards", rewards)):
            if array.shape != (n,):
                raise DataError(f"must have shape ({n},), got {array.shape}", field=name)
        if actions.min() < 0 or actions.max() >= k:
            raise DataError(f"action indices must be in [0, {k})", field="actions")
        if not (np.isfinite(propensities).all() and (propensities > 0).all()):
            bad = int(np.flatnonzero(~(np.isfinite(propensities) & (propensities > 0)))[0])
            raise DataError(
                f"must be in (0, 1]; row {bad} has {propensities[bad]!r} (a logging policy "
                "that never explores cannot be evaluated off-policy)",
                field="propensities",
            )
        if (propensities > 1 + 1e-9).any():
            raise DataError("must be in (0, 1]", field="propensities")
        if not np.isfinite(rewards).all():
            raise DataError("must be finite", field="rewards")
        if not np.isfinite(target).all() or (target < 0).any():
            raise DataError("must be finite and non-negative", field="target")
        sums = target.sum(axis=1)
        if not np.allclose(sums, 1.0, atol=1e-6):
            bad = int(np.flatnonzero(~np.isclose(sums, 1.0, atol=1e-6))[0])
            raise DataError(f"rows must sum to 1; row {bad} sums to {sums[bad]}", field="target")
        predictions = None
        if self.predictions is not None:
            predictions = np.asarray(self.predictions, dtype=np.float64)
            if predictions.shape != target.shape:
                raise DataError(
                    f"must have shape {target.shape}, got {predictions.shape}", field="predictions"
                )
            if not np.isfinite(predictions).all():
                raise DataError("must be finite", field="predictions")
        rows = np.arange(n)
        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "propensities", propensities)
        object.__setattr__(self, "rewards", rewards)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "predictions", predictions)
        object.__setattr__(self, "weights", target[rows, actions] / propensities)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def n_actions(self) -> int:
        return int(self.target.shape[1])


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimator's value with its bootstrap standard error and confidence interval."""

    estimator: str
    value: float
    std_error: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, slots=True)
class OffPolicyEvaluation:
    """Every requested estimate, with the importance-weight diagnostics.

    ``mean_weight`` should be close to 1 when propensities are right and the target's
    support is covered; ``ess`` is the effective sample size.
    """

    n: int
    ess: float
    mean_weight: float
    max_weight: float
    level: float
    n_bootstrap: int
    estimates: dict[str, Estimate]

    def __getitem__(self, name: str) -> Estimate:
        return self.estimates[name]


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of importance weights."""
    w = np.asarray(weights, dtype=np.float64)
    sq = float(w @ w)
    return float(w.sum()) ** 2 / sq if sq > 0 else 0.0


def check_estimators(names: Sequence[str]) -> None:
    """Refuse estimator names that are not in `ESTIMATORS`, naming them and the choices."""
    unknown = [name for name in names if name not in ESTIMATORS]
    if unknown:
        raise ConfigError(
            f"unknown estimator {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(ESTIMATORS)}",
            key="estimators",
        )


def evaluate(
    log: LoggedFeedback,
    estimators: Sequence[str] | None = None,
    *,
    n_bootstrap: int = 200,
    level: float = 0.95,
    tau: float = 10.0,
    lam: float = 10.0,
    rng: np.random.Generator | None = None,
) -> OffPolicyEvaluation:
    """Estimate the target policy's value with each estimator (all that ``log`` allows by
    default), with percentile bootstrap CIs at ``level``; ``tau`` is switch-DR's weight
    threshold and ``lam`` the shrinkage of ``dros``."""
    if estimators is None:
        estimators = [e for e in ESTIMATORS if log.predictions is not None or e not in _MODEL_BASED]
    names = list(estimators)
    check_estimators(names)
    for name in names:
        if name in _MODEL_BASED and log.predictions is None:
            raise ConfigError(f"{name!r} needs reward-model predictions", key="estimators")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 0:
        raise ConfigError(f"must be a non-negative integer, got {n_bootstrap!r}", key="n_bootstrap")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"must be in (0, 1), got {level!r}", key="level")
    if not tau > 0:
        raise ConfigError(f"must be > 0, got {tau!r}", key="tau")
    if not lam > 0:
        raise ConfigError(f"must be > 0, got {lam!r}", key="lam")
    rng = rng if rng is not None else np.random.default_rng()

    columns, combine = _terms(log, names, tau, lam)
    n = len(log)
    values = combine(columns.sum(axis=0), float(n))
    boot = np.empty((n_bootstrap, len(names)))
    for b in range(n_bootstrap):
        counts = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        boot[b] = combine(counts @ columns, float(n))
    alpha = (1.0 - level) / 2.0
    estimates = {}
    for j, name in enumerate(names):
        if n_bootstrap >= 2:
            low, high = np.quantile(boot[:, j], [alpha, 1.0 - alpha])
            se = float(boot[:, j].std(ddof=1))
        else:
            low = high = se = math.nan
        estimates[name] = Estimate(name, float(values[j]), se, float(low), float(high))
    w = log.weights
    return OffPolicyEvaluation(
        n=n,
        ess=effective_sample_size(w),
        mean_weight=float(w.mean()),
        max_weight=float(w.max()),
        level=level,
        n_bootstrap=n_bootstrap,
        estimates=estimates,
    )


def _terms(
    log: LoggedFeedback, names: list[str], tau: float, lam: float
) -> tuple[np.ndarray, Callable[[np.ndarray, float], np.ndarray]]:
    """Per-turn columns whose (weighted) sums give every estimator, and the combiner."""
    w, r = log.weights, log.rewards
    cols: dict[str, np.ndarray] = {"wr": w * r, "w": w}
    if log.predictions is not None and any(name in _MODEL_BASED for name in names):
        q = log.predictions
        q_pi = np.einsum("nk,nk->n", log.target, q)
        residual = r - q[np.arange(len(log)), log.actions]
        cols["dm"] = q_pi
        cols["dr"] = q_pi + w * residual
        cols["switch"] = q_pi + np.where(w <= tau, w, 0.0) * residual
        cols["dros"] = q_pi + (lam * w / (w * w + lam)) * residual
    order = list(cols)
    columns = np.column_stack([cols[c] for c in order])
    pos = {c: i for i, c in enumerate(order)}
    ips_col = {"ips": "wr", "dm": "dm", "dr": "dr", "switch": "switch", "dros": "dros"}

    def combine(sums: np.ndarray, n: float) -> np.ndarray:
        out = np.empty(len(names))
        for j, name in enumerate(names):
            if name == "snips":
                out[j] = sums[pos["wr"]] / sums[pos["w"]] if sums[pos["w"]] > 0 else math.nan
            else:
                out[j] = sums[pos[ips_col[name]]] / n
        return out

    return columns, combine


class RidgeRewardModel:
    """Ridge regression of reward on features, one model per action."""

    def __init__(self, l2: float = 1.0) -> None:
        if not (isinstance(l2, int | float) and l2 > 0):
            raise ConfigError(f"must be > 0, got {l2!r}", key="l2")
        self.l2 = float(l2)

    def fit(
        self, X: np.ndarray, actions: np.ndarray, rewards: np.ndarray, n_actions: int
    ) -> RidgeRewardModel:
        """Fit on logged features ``(n, p)``, action indices and rewards."""
        X = np.asarray(X, dtype=np.float64)
        actions = np.asarray(actions)
        rewards = np.asarray(rewards, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] != len(actions) or rewards.shape != actions.shape:
            raise DataError("X (n, p), actions (n,) and rewards (n,) must agree", field="X")
        p = X.shape[1]
        self.coef_ = np.zeros((n_actions, p))
        order = np.argsort(actions, kind="stable")
        bounds = np.searchsorted(actions[order], np.arange(n_actions + 1))
        for a in range(n_actions):
            rows = order[bounds[a] : bounds[a + 1]]
            Xa = X[rows]
            gram = Xa.T @ Xa + self.l2 * np.eye(p)
            self.coef_[a] = np.linalg.solve(gram, Xa.T @ rewards[rows])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted reward of every action, shape ``(n, n_actions)``."""
        return np.asarray(X, dtype=np.float64) @ self.coef_.T


def fit_reward_model(
    X: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    n_actions: int,
    *,
    l2: float = 1.0,
    folds: int = 2,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Reward predictions ``(n, n_actions)`` for every logged turn from a ridge model per
    action, cross-fitted over ``folds`` random folds (``folds=1``: fit and predict on all)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise ConfigError(f"must be a positive integer, got {folds!r}", key="folds")
    X = np.asarray(X, dtype=np.float64)
    actions = np.asarray(actions)
    if folds == 1:
        return RidgeRewardModel(l2).fit(X, actions, rewards, n_actions).predict(X)
    rng = rng if rng is not None else np.random.default_rng()
    fold = rng.integers(0, folds, len(actions))
    out = np.empty((len(actions), n_actions))
    rewards = np.asarray(rewards, dtype=np.float64)
    for f in range(folds):
        test = fold == f
        model = RidgeRewardModel(l2).fit(X[~test], actions[~test], rewards[~test], n_actions)
        out[test] = model.predict(X[test])
    return out


def target_probabilities(
    policy: Policy,
    contexts: Sequence[Context],
    candidates: Sequence[Sequence[str]],
    action_ids: Sequence[str],
) -> np.ndarray:
    """The target policy's probability of every action id per logged turn, ``(n, K)``:
    what a saved policy would have done on each logged context among that turn's
    candidates (actions not among a turn's candidates get 0). One policy call per turn."""
    if len(contexts) != len(candidates):
        raise DataError("one candidate list per context", field="candidates")
    column = {a: j for j, a in enumerate(action_ids)}
    out = np.zeros((len(contexts), len(action_ids)))
    for i, (context, actions) in enumerate(zip(contexts, candidates, strict=True)):
        p = policy.probabilities(context, actions)
        try:
            out[i, [column[a] for a in actions]] = p
        except KeyError as e:
            raise DataError(
                f"turn {i}: candidate {e} is not in action_ids", field="candidates"
            ) from None
    return out


def evaluate_policy(
    policy: Policy,
    contexts: Sequence[Context],
    candidates: Sequence[Sequence[str]],
    actions: Sequence[str],
    propensities: Sequence[float] | np.ndarray,
    rewards: Sequence[float] | np.ndarray,
    *,
    estimators: Sequence[str] | None = None,
    featurizer: Featurizer | None = None,
    l2: float = 1.0,
    folds: int = 2,
    n_bootstrap: int = 200,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> OffPolicyEvaluation:
    """The value ``policy`` would have had on logged turns — what ``voxloop ope`` runs.

    Per turn: its context, its candidate action ids, the logged action id, its propensity
    and its reward. The reward model is `fit_reward_model` on ``featurizer``'s context
    vectors (``Featurizer(32)`` by default), cross-fitted over ``folds``.
    """
    n = len(contexts)
    if not len(candidates) == len(actions) == n:
        raise DataError(
            f"one context, candidate list and action per turn; got {n}, {len(candidates)}, "
            f"{len(actions)}",
            field="actions",
        )
    for i, (action, offered) in enumerate(zip(actions, candidates, strict=True)):
        if action not in offered:
            raise DataError(f"turn {i}: logged action {action!r} is not among its candidates")
    action_ids = sorted({a for offered in candidates for a in offered})
    column = {a: j for j, a in enumerate(action_ids)}
    logged = np.array([column[a] for a in actions], dtype=np.intp)
    rewards = np.asarray(rewards, dtype=np.float64)
    rng = rng if rng is not None else np.random.default_rng()
    pi = target_probabilities(policy, contexts, candidates, action_ids)
    featurizer = featurizer if featurizer is not None else Featurizer(32)
    X = np.array([featurizer.context_vector(c) for c in contexts])
    q = fit_reward_model(X, logged, rewards, len(action_ids), l2=l2, folds=folds, rng=rng)
    log = LoggedFeedback(logged, np.asarray(propensities, dtype=np.float64), rewards, pi, q)
    return evaluate(log, estimators, n_bootstrap=n_bootstrap, level=level, rng=rng)
