"""One conformance suite for every bandit policy: what the server and the off-policy
evaluation rely on, whatever the policy behind the interface."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from voxloop.errors import ConfigError, DataError, ModelFormatError
from voxloop.personalize.bandits import (
    POLICIES,
    EpsilonGreedy,
    LinearPolicy,
    LinearThompson,
    LinUCB,
    Policy,
    load_policy,
)
from voxloop.personalize.features import Context, Featurizer
from voxloop.personalize.simulator import UserSimulator

DISJOINT = Featurizer(48)
SHARED = Featurizer(96, action_crosses=True)

FACTORIES: dict[str, Callable[[np.random.Generator], LinearPolicy]] = {
    "epsilon-greedy": lambda rng: EpsilonGreedy(0.1, featurizer=DISJOINT, rng=rng),
    "epsilon-greedy-shared": lambda rng: EpsilonGreedy(
        0.1, featurizer=SHARED, shared=True, rng=rng
    ),
    "linucb": lambda rng: LinUCB(0.5, featurizer=DISJOINT, rng=rng),
    "linucb-explore": lambda rng: LinUCB(0.5, epsilon=0.05, featurizer=DISJOINT, rng=rng),
    "linucb-shared": lambda rng: LinUCB(0.5, featurizer=SHARED, shared=True, rng=rng),
    "thompson": lambda rng: LinearThompson(0.3, featurizer=DISJOINT, rng=rng),
    "thompson-shared": lambda rng: LinearThompson(0.3, featurizer=SHARED, shared=True, rng=rng),
}
#: Policies that give every candidate a positive probability (a logging policy for OPE).
EXPLORING = {"epsilon-greedy", "epsilon-greedy-shared", "linucb-explore"}

SIM = UserSimulator(n_users=20, n_actions=5, seed=3)


def contexts(n: int, seed: int = 0) -> list[Context]:
    batch = SIM.sample(n, np.random.default_rng(seed))
    return [SIM.context(batch, i) for i in range(n)]


def trained(name: str, seed: int = 0, turns: int = 300) -> LinearPolicy:
    policy = FACTORIES[name](np.random.default_rng(seed))
    SIM.run(policy, turns, np.random.default_rng(seed + 1))
    return policy


@pytest.fixture(params=sorted(FACTORIES))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_policy_implements_the_protocol(name: str) -> None:
    policy = FACTORIES[name](np.random.default_rng(0))
    assert isinstance(policy, Policy)
    assert POLICIES[policy.name] is type(policy)


def test_decision_probabilities_are_a_distribution_and_carry_the_propensity(name: str) -> None:
    policy = trained(name)
    for context in contexts(40):
        d = policy.choose(context, SIM.actions)
        p = np.array(d.probabilities)
        assert d.actions == SIM.actions and len(d.scores) == len(SIM.actions)
        assert (p >= 0).all() and (p <= 1).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert 0 < d.propensity <= 1
        assert d.action == d.actions[d.index] and d.propensity == p[d.index]


@pytest.mark.parametrize("name", sorted(EXPLORING))
def test_exploring_policies_give_every_action_at_least_epsilon_over_k(name: str) -> None:
    policy = trained(name)
    epsilon = policy.epsilon  # type: ignore[attr-defined]
    for context in contexts(20):
        p = policy.probabilities(context, SIM.actions)
        assert (p >= epsilon / len(SIM.actions) - 1e-15).all()


def test_choices_are_drawn_with_the_stated_probabilities(name: str) -> None:
    policy = trained(name)
    context = contexts(1, seed=9)[0]
    n = 3000
    counts = np.zeros(len(SIM.actions))
    stated = np.zeros(len(SIM.actions))
    for _ in range(n):
        d = policy.choose(context, SIM.actions)
        counts[d.index] += 1
        stated += d.probabilities
    expected = stated / n
    # binomial 4.5-sigma band per action (plus Monte-Carlo slack for Thompson sampling)
    band = 4.5 * np.sqrt(expected * (1 - expected) / n) + 0.01
    assert np.all(np.abs(counts / n - expected) <= band), (counts / n, expected)


def test_probabilities_agree_with_the_decision(name: str) -> None:
    policy = trained(name)
    for context in contexts(10):
        d = policy.choose(context, SIM.actions)
        p = policy.probabilities(context, SIM.actions)
        if isinstance(policy, LinearThompson):  # a fresh Monte-Carlo estimate
            assert np.abs(p - d.probabilities).max() < 0.15
        else:
            np.testing.assert_array_equal(p, d.probabilities)


def test_the_same_generator_state_gives_the_same_decisions(name: str) -> None:
    a, b = trained(name, seed=4), trained(name, seed=4)
    for context in contexts(30):
        assert a.choose(context, SIM.actions) == b.choose(context, SIM.actions)


def test_save_then_load_gives_identical_decisions(name: str, tmp_path: Path) -> None:
    policy = trained(name)
    policy.save(tmp_path / "policy")
    policy.rng = np.random.default_rng(11)
    loaded = load_policy(tmp_path / "policy", rng=np.random.default_rng(11))
    assert type(loaded) is type(policy) and loaded.featurizer == policy.featurizer
    for context in contexts(30, seed=5):
        assert loaded.choose(context, SIM.actions) == policy.choose(context, SIM.actions)
    # and they keep learning identically
    for context in contexts(20, seed=6):
        policy.update(context, "a1", 1.0)
        loaded.update(context, "a1", 1.0)
    for context in contexts(10, seed=7):
        assert loaded.choose(context, SIM.actions) == policy.choose(context, SIM.actions)


def test_saved_state_is_versioned_json_and_npy_without_pickle(name: str, tmp_path: Path) -> None:
    trained(name, turns=50).save(tmp_path)
    manifest = json.loads((tmp_path / "policy.json").read_text())
    assert manifest["format"] == "voxloop-policy" and manifest["format_version"] == 1
    assert manifest["produced_by"].startswith("voxloop ")
    assert sorted(manifest["actions"]) == sorted(SIM.actions)
    for file in tmp_path.glob("*.npy"):
        np.load(file, allow_pickle=False)  # would raise on an object array
    assert not [f for f in tmp_path.iterdir() if f.suffix not in {".json", ".npy"}]


def test_update_changes_the_state(name: str) -> None:
    policy = FACTORIES[name](np.random.default_rng(0))
    context = contexts(1)[0]
    before = np.array(policy.choose(context, SIM.actions).scores)
    estimate = policy.estimates(context, SIM.actions)[2]
    for _ in range(5):
        policy.update(context, "a2", 1.0)
    after = np.array(policy.choose(context, SIM.actions).scores)
    assert not np.array_equal(before, after)
    assert policy.estimates(context, SIM.actions)[2] > estimate


def test_an_action_never_seen_before_can_be_chosen_and_learned(name: str) -> None:
    policy = trained(name, turns=100)
    context = contexts(1)[0]
    actions = (*SIM.actions, "brand_new")
    d = policy.choose(context, actions)
    assert len(d.probabilities) == 6 and sum(d.probabilities) == pytest.approx(1.0)
    policy.update(context, "brand_new", 1.0)
    assert "brand_new" in policy.model_.actions


@pytest.mark.parametrize("name", sorted(n for n in FACTORIES if not n.startswith("thompson")))
def test_candidate_order_does_not_change_an_action_s_probability(name: str) -> None:
    policy = trained(name)
    context = contexts(1)[0]
    forward = dict(zip(SIM.actions, policy.probabilities(context, SIM.actions), strict=True))
    reverse = SIM.actions[::-1]
    backward = dict(zip(reverse, policy.probabilities(context, reverse), strict=True))
    for action in SIM.actions:
        assert forward[action] == pytest.approx(backward[action], abs=1e-12)


def test_the_feature_path_equals_the_context_path(name: str) -> None:
    a, b = trained(name, seed=2), trained(name, seed=2)
    for context in contexts(10):
        X = a.featurizer.matrix(context, SIM.actions)
        assert a.choose(context, SIM.actions) == b.choose_features(X, SIM.actions)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p, c: p.choose(c, []), "actions"),
        (lambda p, c: p.choose(c, ["a0", "a0"]), "actions"),
        (lambda p, c: p.choose(c, ["a0", 3]), "actions"),
        (lambda p, c: p.choose(c, "a0"), "actions"),
        (lambda p, c: p.update(c, "a0", math.nan), "reward"),
        (lambda p, c: p.update(c, "a0", math.inf), "reward"),
        (lambda p, c: p.update(c, "a0", "1"), "reward"),
        (lambda p, c: p.update(c, "a0", True), "reward"),
        (lambda p, c: p.update(c, "", 1.0), "actions"),
        (lambda p, c: p.choose_features(np.zeros((2, 3)), ["a0", "a1"]), "features"),
        (lambda p, c: p.choose(Context(hour=25), ["a0"]), "hour"),
        (lambda p, c: p.choose({"user_id": "x"}, ["a0"]), "context"),
    ],
)
def test_bad_input_raises_a_data_error_naming_the_field(
    name: str, call: Callable[[LinearPolicy, Context], object], field: str
) -> None:
    policy = FACTORIES[name](np.random.default_rng(0))
    with pytest.raises(DataError) as info:
        call(policy, contexts(1)[0])
    assert info.value.field == field


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda: EpsilonGreedy(1.5), "epsilon"),
        (lambda: EpsilonGreedy(-0.1), "epsilon"),
        (lambda: LinUCB(-1.0), "alpha"),
        (lambda: LinUCB(1.0, epsilon=math.nan), "epsilon"),
        (lambda: LinUCB(1.0, l2=0.0), "l2"),
        (lambda: LinearThompson(0.5, n_draws=0), "n_draws"),
        (lambda: LinearThompson(-0.5), "scale"),
        (lambda: LinUCB(shared=True), "featurizer.action_crosses"),
        (lambda: LinUCB(rng=np.random.RandomState(0)), "rng"),  # type: ignore[arg-type]
    ],
)
def test_bad_hyperparameters_raise_a_config_error_naming_the_key(
    make: Callable[[], object], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.key == key


def test_loading_another_format_version_says_what_to_do(tmp_path: Path) -> None:
    trained("linucb", turns=20).save(tmp_path)
    manifest = json.loads((tmp_path / "policy.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "policy.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="version 99.*reads version 1"):
        load_policy(tmp_path)


def test_loading_a_damaged_state_is_a_model_format_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="not a saved voxloop policy"):
        load_policy(tmp_path)
    trained("linucb", turns=20).save(tmp_path)
    np.save(tmp_path / "theta.npy", np.zeros((2, 3)))
    with pytest.raises(ModelFormatError, match="theta.npy has shape"):
        load_policy(tmp_path)
    with pytest.raises(ModelFormatError, match="not 'thompson'"):
        trained("linucb", turns=20).save(tmp_path / "b")
        LinearThompson.load(tmp_path / "b")


def test_linucb_without_exploration_is_deterministic_with_propensity_one() -> None:
    policy = trained("linucb")
    for context in contexts(20):
        d = policy.choose(context, SIM.actions)
        assert d.propensity == 1.0 and sorted(d.probabilities)[-2] == 0.0


def test_ties_are_split_evenly_before_anything_is_learned() -> None:
    for policy in (EpsilonGreedy(0.2, rng=np.random.default_rng(0)), LinUCB(1.0)):
        p = policy.probabilities(contexts(1)[0], SIM.actions)
        np.testing.assert_allclose(p, 1 / len(SIM.actions))


def test_the_inverse_stays_accurate_over_many_updates() -> None:
    rng = np.random.default_rng(0)
    policy = LinUCB(1.0, featurizer=Featurizer(16), rng=rng)
    for _ in range(10_000):
        policy.update_features(rng.normal(size=16), "a", float(rng.random()))
    model = policy.model_
    np.testing.assert_allclose(model.A_inv[0] @ model.A[0], np.eye(16), atol=1e-9)
    np.testing.assert_allclose(model.theta[0], np.linalg.solve(model.A[0], model.b[0]), atol=1e-9)
