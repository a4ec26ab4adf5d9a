"""Specification of `voxloop.personalize.ope`: old logs tell what a new policy is worth."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from voxloop.errors import ConfigError, DataError
from voxloop.personalize.bandits import EpsilonGreedy, LinUCB
from voxloop.personalize.features import Context, Featurizer
from voxloop.personalize.ope import (
    ESTIMATORS,
    LoggedFeedback,
    RidgeRewardModel,
    effective_sample_size,
    evaluate,
    evaluate_policy,
    fit_reward_model,
    target_probabilities,
)
from voxloop.personalize.simulator import ContextBatch, UserSimulator, softmax

# ----------------------------------------------------------------------- hand example

#: Three logged turns, two actions.
HAND = LoggedFeedback(
    actions=np.array([0, 1, 0]),
    propensities=np.array([0.5, 0.25, 0.8]),
    rewards=np.array([1.0, 0.0, 1.0]),
    target=np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]),
    predictions=np.array([[0.6, 0.3], [0.5, 0.2], [0.7, 0.1]]),
)
# importance weights 0.9/0.5, 0.8/0.25, 0.5/0.8; target-weighted predictions q_pi;
# residuals r - q(logged action)
W = (1.8, 3.2, 0.625)
Q_PI = (0.9 * 0.6 + 0.1 * 0.3, 0.2 * 0.5 + 0.8 * 0.2, 0.5 * 0.7 + 0.5 * 0.1)
RES = (1 - 0.6, 0 - 0.2, 1 - 0.7)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


HAND_VALUES = {
    "ips": (1.8 * 1 + 3.2 * 0 + 0.625 * 1) / 3,
    "snips": (1.8 * 1 + 3.2 * 0 + 0.625 * 1) / (1.8 + 3.2 + 0.625),
    "dm": _mean(list(Q_PI)),
    "dr": _mean([q + w * e for q, w, e in zip(Q_PI, W, RES, strict=True)]),
    # tau = 2: the weight 3.2 is switched to the model alone
    "switch": _mean([Q_PI[0] + W[0] * RES[0], Q_PI[1], Q_PI[2] + W[2] * RES[2]]),
    # lam = 1: weights shrunk to w / (w^2 + 1)
    "dros": _mean([q + w / (w * w + 1) * e for q, w, e in zip(Q_PI, W, RES, strict=True)]),
}


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_estimators_agree_with_closed_form_values_on_a_hand_example(estimator: str) -> None:
    result = evaluate(HAND, [estimator], tau=2.0, lam=1.0, n_bootstrap=0)
    assert result[estimator].value == pytest.approx(HAND_VALUES[estimator], rel=1e-12)


def test_weight_diagnostics_on_the_hand_example() -> None:
    result = evaluate(HAND, n_bootstrap=0)
    assert result.ess == pytest.approx(5.625**2 / (1.8**2 + 3.2**2 + 0.625**2))
    assert effective_sample_size(np.array(W)) == pytest.approx(result.ess)
    assert result.mean_weight == pytest.approx(5.625 / 3)
    assert result.max_weight == 3.2
    assert list(result.estimates) == list(ESTIMATORS)


def test_ips_and_dr_are_exact_when_the_target_is_the_logging_policy() -> None:
    log = LoggedFeedback(
        actions=np.array([0, 1, 1]),
        propensities=np.array([0.3, 0.7, 0.7]),
        rewards=np.array([1.0, 0.0, 1.0]),
        target=np.array([[0.3, 0.7]] * 3),
        predictions=np.zeros((3, 2)),
    )
    result = evaluate(log, n_bootstrap=0)
    for name in ("ips", "snips", "dr", "switch"):
        assert result[name].value == pytest.approx(2 / 3)
    assert result.ess == pytest.approx(3.0)


# ----------------------------------------------------------------------- on the simulator

SIM = UserSimulator(n_users=40, n_actions=5, seed=7)


def logging_probabilities(batch: ContextBatch) -> np.ndarray:
    """A reasonable production policy that still explores: 80 % softmax, 20 % uniform."""
    return 0.8 * softmax(SIM.noisy_scores(batch, 1.0, seed=1)) + 0.2 / SIM.n_actions


def target_probs(batch: ContextBatch) -> np.ndarray:
    """A sharper candidate policy built from other noisy scores."""
    return softmax(SIM.noisy_scores(batch, 0.7, seed=2), temperature=0.5)


def simulated_log(n: int, seed: int, predictions: str = "ridge") -> LoggedFeedback:
    rng = np.random.default_rng(seed)
    batch = SIM.sample(n, rng)
    actions, propensities, rewards = SIM.log(batch, logging_probabilities(batch), rng)
    if predictions == "truth":
        q = SIM.reward_probabilities(batch)
    else:
        X = SIM.features(batch, users=True)
        q = fit_reward_model(X, actions, rewards, SIM.n_actions, folds=2, rng=rng)
    return LoggedFeedback(actions, propensities, rewards, target_probs(batch), q)


TRUE_VALUE = SIM.policy_value(target_probs)


def test_the_target_policy_differs_from_the_logging_policy() -> None:
    assert TRUE_VALUE - SIM.policy_value(logging_probabilities) > 0.05


@pytest.mark.parametrize("estimator", ["ips", "snips", "dr", "switch", "dros"])
def test_estimates_land_within_their_ci_of_the_true_value(estimator: str) -> None:
    result = evaluate(
        simulated_log(30_000, seed=0), [estimator], n_bootstrap=300, rng=np.random.default_rng(0)
    )
    estimate = result[estimator]
    assert estimate.ci_low <= TRUE_VALUE <= estimate.ci_high, (estimate, TRUE_VALUE)
    assert estimate.ci_high - estimate.ci_low < 0.05


def test_dr_has_lower_variance_than_ips_when_the_reward_model_is_good() -> None:
    values = np.array(
        [
            [
                evaluate(simulated_log(2000, seed=s, predictions="truth"), [e], n_bootstrap=0)[
                    e
                ].value
                for e in ("ips", "dr")
            ]
            for s in range(200)
        ]
    )
    ips, dr = values[:, 0], values[:, 1]
    assert dr.var() < 0.5 * ips.var()
    # both unbiased: their means over 200 independent logs are within 4 standard errors
    for v in (ips, dr):
        assert abs(v.mean() - TRUE_VALUE) < 4 * v.std() / np.sqrt(len(v))


def test_bootstrap_intervals_cover_at_about_the_nominal_rate() -> None:
    covered = 0
    for s in range(100):
        log = simulated_log(800, seed=1000 + s, predictions="truth")
        ci = evaluate(log, ["ips"], n_bootstrap=200, rng=np.random.default_rng(s))["ips"]
        covered += ci.ci_low <= TRUE_VALUE <= ci.ci_high
    assert 85 <= covered <= 100


def test_bootstrap_is_reproducible_from_the_generator() -> None:
    log = simulated_log(2000, seed=3)
    a = evaluate(log, n_bootstrap=50, rng=np.random.default_rng(1))
    b = evaluate(log, n_bootstrap=50, rng=np.random.default_rng(1))
    assert a == b


# ----------------------------------------------------------------------- reward model


def test_ridge_reward_model_recovers_a_linear_truth() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(5000), rng.normal(size=(5000, 3))])
    coef = rng.normal(size=(3, 4))
    actions = rng.integers(0, 3, 5000)
    rewards = (X @ coef.T)[np.arange(5000), actions] + rng.normal(0, 0.1, 5000)
    model = RidgeRewardModel(l2=1e-3).fit(X, actions, rewards, n_actions=3)
    np.testing.assert_allclose(model.coef_, coef, atol=0.02)
    crossfit = fit_reward_model(X, actions, rewards, 3, l2=1e-3, folds=3, rng=rng)
    np.testing.assert_allclose(crossfit, X @ coef.T, atol=0.05)


def test_an_action_never_logged_is_predicted_zero() -> None:
    X = np.ones((4, 2))
    model = RidgeRewardModel().fit(X, np.array([0, 0, 0, 0]), np.ones(4), n_actions=2)
    assert (model.predict(X)[:, 1] == 0).all()


# ----------------------------------------------------------------------- from a saved policy


def test_target_probabilities_of_a_policy_over_varying_candidate_sets() -> None:
    policy = EpsilonGreedy(0.2, featurizer=Featurizer(32), rng=np.random.default_rng(0))
    contexts = [Context(user_id="a", hour=8), Context(user_id="b", device="phone")]
    candidates = [["short", "long"], ["long", "follow_up", "short"]]
    pi = target_probabilities(policy, contexts, candidates, ["short", "long", "follow_up"])
    np.testing.assert_allclose(pi, [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    with pytest.raises(DataError, match="not in action_ids"):
        target_probabilities(policy, contexts, candidates, ["short", "long"])


def test_a_saved_policy_is_evaluated_on_logs_of_another_policy() -> None:
    sim = UserSimulator(n_users=10, n_actions=3, seed=0)
    logger = EpsilonGreedy(0.5, featurizer=Featurizer(32), rng=np.random.default_rng(0))
    target = LinUCB(0.3, featurizer=Featurizer(32), rng=np.random.default_rng(1))
    sim.run(logger, 200, np.random.default_rng(2))
    sim.run(target, 1500, np.random.default_rng(3))
    rng = np.random.default_rng(4)
    batch = sim.sample(6000, rng)
    contexts = [sim.context(batch, i) for i in range(len(batch))]
    candidates = [sim.actions] * len(batch)
    pi = target_probabilities(logger, contexts, candidates, sim.actions)
    actions, propensities, rewards = sim.log(batch, pi, rng)
    result = evaluate_policy(
        target,
        contexts,
        candidates,
        [sim.actions[a] for a in actions],
        propensities,
        rewards,
        n_bootstrap=200,
        rng=rng,
    )
    truth = sim.value_of(target)
    for name in ("ips", "snips", "dr"):
        assert result[name].ci_low <= truth <= result[name].ci_high, (name, result[name], truth)
    assert truth > sim.value_of(logger) + 0.05  # the comparison is not vacuous


def test_evaluate_policy_refuses_a_logged_action_outside_its_candidates() -> None:
    policy = EpsilonGreedy(0.2, featurizer=Featurizer(32))
    with pytest.raises(DataError, match="not among its candidates"):
        evaluate_policy(policy, [Context()], [["a", "b"]], ["c"], [0.5], [1.0])


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"propensities": np.array([0.5, 0.0, 0.8])}, "propensities"),
        ({"propensities": np.array([0.5, 1.5, 0.8])}, "propensities"),
        ({"propensities": np.array([0.5, 0.25])}, "propensities"),
        ({"rewards": np.array([1.0, np.nan, 1.0])}, "rewards"),
        ({"actions": np.array([0, 2, 0])}, "actions"),
        ({"actions": np.array([0.0, 1.0, 0.0])}, "actions"),
        ({"target": np.array([[0.9, 0.2], [0.2, 0.8], [0.5, 0.5]])}, "target"),
        ({"target": np.ones((2, 2)) / 2}, "target"),
        ({"predictions": np.zeros((3, 3))}, "predictions"),
    ],
)
def test_bad_logs_are_rejected_naming_the_column(change: dict[str, np.ndarray], field: str) -> None:
    columns: dict[str, Any] = {
        "actions": HAND.actions,
        "propensities": HAND.propensities,
        "rewards": HAND.rewards,
        "target": HAND.target,
        "predictions": HAND.predictions,
        **change,
    }
    with pytest.raises(DataError) as info:
        LoggedFeedback(**columns)
    assert info.value.field == field


def test_model_based_estimators_need_predictions() -> None:
    log = LoggedFeedback(HAND.actions, HAND.propensities, HAND.rewards, HAND.target)
    assert list(evaluate(log, n_bootstrap=0).estimates) == ["ips", "snips"]
    with pytest.raises(ConfigError, match="'dr' needs reward-model predictions"):
        evaluate(log, ["dr"])
    with pytest.raises(ConfigError, match="unknown estimator 'ipw'; choose from ips, snips, dm,"):
        evaluate(HAND, ["ipw"])
    with pytest.raises(ConfigError, match="level"):
        evaluate(HAND, level=95)
