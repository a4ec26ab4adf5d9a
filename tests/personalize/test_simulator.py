"""Specification of the user simulator, and of what the policies learn on it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from voxloop.errors import ConfigError, DataError
from voxloop.personalize.bandits import EpsilonGreedy, LinearPolicy, LinearThompson, LinUCB
from voxloop.personalize.features import Context, Featurizer
from voxloop.personalize.simulator import (
    ContextBatch,
    UserSimulator,
    sample_actions,
    softmax,
)


def test_the_same_seed_gives_the_same_users_and_another_seed_other_users() -> None:
    a, b, c = UserSimulator(seed=5), UserSimulator(seed=5), UserSimulator(seed=6)
    batch = a.sample(100, np.random.default_rng(0))
    np.testing.assert_array_equal(a.reward_probabilities(batch), b.reward_probabilities(batch))
    assert not np.allclose(a.reward_probabilities(batch), c.reward_probabilities(batch))


def test_reward_probabilities_follow_the_documented_logistic_model() -> None:
    sim = UserSimulator(n_users=3, n_actions=4, seed=1)
    batch = ContextBatch(np.array([2]), np.array([1]), np.array([19]))
    logit = (
        sim.base
        + sim.action_bias
        + sim.scale * sim.user_latent[2] @ sim.action_latent.T
        + sim.device_effect[1]
        + sim.daypart_effect[3]  # 19 h is evening
    )
    np.testing.assert_allclose(sim.reward_probabilities(batch)[0], 1 / (1 + np.exp(-logit)))
    context = sim.context(batch, 0)
    assert context.user_id == "u2" and context.device == "phone" and context.hour == 19
    np.testing.assert_array_equal(
        sim.reward_probabilities_for(context), sim.reward_probabilities(batch)[0]
    )


def test_policy_value_is_the_exact_expectation_over_all_contexts() -> None:
    sim = UserSimulator(n_users=10, n_actions=3, seed=2)
    batch, weights = sim.all_contexts()
    assert weights.sum() == pytest.approx(1.0)
    assert len(batch) == 10 * 3 * 24
    uniform = sim.policy_value(lambda b: np.full((len(b), 3), 1 / 3))
    assert uniform == pytest.approx(weights @ sim.reward_probabilities(batch).mean(axis=1))
    # ... and a large sample agrees with it
    sample = sim.sample(400_000, np.random.default_rng(0))
    assert sim.reward_probabilities(sample).mean() == pytest.approx(uniform, abs=2e-3)
    best_action, fixed = sim.best_fixed_action()
    assert uniform < fixed < sim.best_value()
    assert fixed == pytest.approx(sim.policy_value(lambda b: np.eye(3)[[best_action] * len(b)]))


def test_personalisation_pays_on_the_default_population() -> None:
    sim = UserSimulator(seed=0)
    assert sim.best_value() - sim.best_fixed_action()[1] > 0.15


def test_value_of_a_policy_matches_its_probabilities() -> None:
    sim = UserSimulator(n_users=5, n_actions=3, seed=4)
    policy = EpsilonGreedy(0.3, featurizer=Featurizer(32), rng=np.random.default_rng(0))
    sim.run(policy, 200, np.random.default_rng(1))
    batch, weights = sim.all_contexts()
    pi = np.array(
        [policy.probabilities(sim.context(batch, i), sim.actions) for i in range(len(batch))]
    )
    assert sim.value_of(policy) == pytest.approx(
        weights @ (pi * sim.reward_probabilities(batch)).sum(axis=1)
    )


def test_sample_actions_draws_each_row_from_its_probabilities() -> None:
    p = np.array([[0.2, 0.0, 0.8], [0.0, 1.0, 0.0]])
    draws = sample_actions(np.repeat(p, 20_000, axis=0), np.random.default_rng(0))
    first, second = draws[:20_000], draws[20_000:]
    assert np.bincount(first, minlength=3) / 20_000 == pytest.approx([0.2, 0.0, 0.8], abs=0.01)
    assert (second == 1).all()
    np.testing.assert_allclose(softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])


def test_logged_turns_carry_the_logging_propensities() -> None:
    sim = UserSimulator(n_users=10, n_actions=4, seed=0)
    batch = sim.sample(1000, np.random.default_rng(0))
    probs = softmax(sim.noisy_scores(batch, 1.0, seed=1))
    actions, propensities, rewards = sim.log(batch, probs, np.random.default_rng(1))
    np.testing.assert_array_equal(propensities, probs[np.arange(1000), actions])
    assert set(np.unique(rewards)) <= {0.0, 1.0}


def test_bad_configuration_and_foreign_contexts_are_rejected() -> None:
    with pytest.raises(ConfigError, match="n_actions"):
        UserSimulator(n_actions=1)
    with pytest.raises(ConfigError, match="device_probs"):
        UserSimulator(devices=("a", "b"), device_probs=(0.5, 0.6))
    with pytest.raises(DataError, match="unknown"):
        UserSimulator().reward_probabilities_for(
            Context(user_id="stranger", device="speaker", hour=3)
        )


# ----------------------------------------------------------------------- learning

LEARNERS: dict[str, Callable[[np.random.Generator], LinearPolicy]] = {
    "linucb": lambda rng: LinUCB(0.5, featurizer=Featurizer(128), rng=rng),
    "linucb-shared": lambda rng: LinUCB(
        0.5, featurizer=Featurizer(256, action_crosses=True), shared=True, rng=rng
    ),
    "epsilon-greedy": lambda rng: EpsilonGreedy(0.05, featurizer=Featurizer(128), rng=rng),
    "thompson": lambda rng: LinearThompson(0.3, featurizer=Featurizer(128), rng=rng),
}
LEARNING_SIM = UserSimulator(n_users=50, n_actions=6, seed=1)
TURNS = 4000


@pytest.fixture(scope="module", params=sorted(LEARNERS))
def run(request: pytest.FixtureRequest) -> tuple[str, np.ndarray, LinearPolicy]:
    policy = LEARNERS[request.param](np.random.default_rng(0))
    result = LEARNING_SIM.run(policy, TURNS, np.random.default_rng(5))
    return request.param, result.regret, policy


def test_regret_grows_sublinearly(run: tuple[str, np.ndarray, LinearPolicy]) -> None:
    name, regret, _ = run
    first, second = regret[: TURNS // 2].sum(), regret[TURNS // 2 :].sum()
    assert (regret >= 0).all()
    assert second < 0.65 * first, (name, first, second)


def test_every_policy_beats_the_best_fixed_action(
    run: tuple[str, np.ndarray, LinearPolicy],
) -> None:
    name, regret, policy = run
    _, fixed = LEARNING_SIM.best_fixed_action()
    gap = LEARNING_SIM.best_value() - fixed  # the per-turn regret of the fixed policy
    assert regret.sum() < 0.5 * gap * TURNS, name
    if name != "thompson":  # Monte-Carlo probabilities make value_of slow and noisy
        assert LEARNING_SIM.value_of(policy) > fixed + 0.5 * gap, name
