"""Specification of `voxloop.experiments.assign`: deterministic, correctly weighted,
exclusive within a layer, and stable when traffic allocation changes (the documented
guarantees, tested one by one)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from voxloop.experiments.assign import Assigner, assign, choose_arm, unit_hash
from voxloop.experiments.config import (
    Arm,
    ExperimentConfig,
    Holdout,
    LayerSlot,
    Metric,
    load_config,
)
from voxloop.experiments.stats import srm_check

EXAMPLE = Path(__file__).parent / "data" / "experiments.toml"
USERS = [f"user-{i}" for i in range(100_000)]
METRIC = (Metric("success", "proportion", role="primary"),)


def experiment(weights: dict[str, float], **changes) -> ExperimentConfig:
    arms = tuple(Arm(name, weight) for name, weight in weights.items())
    exp = ExperimentConfig("exp", arms, next(iter(weights)), METRIC, salt="exp-salt")
    return dataclasses.replace(exp, **changes) if changes else exp


def arms_of(exp: ExperimentConfig, users=USERS, holdout: Holdout | None = None) -> list:
    return [assign(u, exp, holdout=holdout).arm for u in users]


def test_unit_hash_is_a_pinned_blake2b_value_not_pythons_hash():
    # Changing these numbers re-randomises every running experiment: don't.
    assert unit_hash("nlu-v2", "user-1") == 0.9814493607009915
    assert unit_hash("nlu-v2", "coverage", "user-1") == 0.9070354631090805
    code = "from voxloop.experiments.assign import unit_hash; print(repr(unit_hash('s', 'u')))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    assert float(other.stdout) == unit_hash("s", "u")


def test_unit_hash_is_uniform_on_the_unit_interval():
    values = np.array([unit_hash("salt", u) for u in USERS[:50_000]])
    assert 0 < values.min() and values.max() < 1
    assert sps.kstest(values, "uniform").pvalue > 0.001


def test_assignment_is_deterministic():
    exp = experiment({"A": 0.5, "B": 0.5})
    assert arms_of(exp, USERS[:2000]) == arms_of(exp, USERS[:2000])


def test_arm_shares_match_the_weights_on_100k_users():
    weights = {"A": 0.5, "B": 0.3, "C": 0.2}
    arms = arms_of(experiment(weights))
    counts = {arm: arms.count(arm) for arm in weights}
    for arm, weight in weights.items():
        assert counts[arm] / len(USERS) == pytest.approx(weight, abs=0.006)  # ~4 SE
    assert not srm_check(counts, weights).flagged


def test_raising_coverage_only_adds_users_and_nobody_changes_arm():
    weights = {"A": 0.5, "B": 0.5}
    before = arms_of(experiment(weights, coverage=0.2), USERS[:20_000])
    after = arms_of(experiment(weights, coverage=0.6), USERS[:20_000])
    assert sum(a is not None for a in before) / 20_000 == pytest.approx(0.2, abs=0.01)
    assert sum(a is not None for a in after) / 20_000 == pytest.approx(0.6, abs=0.01)
    assert all(new == old for old, new in zip(before, after, strict=True) if old is not None)


def test_adding_weight_to_an_arm_keeps_its_users_and_moves_only_the_added_share():
    before = arms_of(experiment({"A": 0.9, "B": 0.1}), USERS[:50_000])
    after = arms_of(experiment({"A": 0.5, "B": 0.5}), USERS[:50_000])
    pairs = list(zip(before, after, strict=True))
    assert all(new == "B" for old, new in pairs if old == "B")  # B's users all stay
    moved = sum(old != new for old, new in pairs) / len(pairs)
    assert moved == pytest.approx(0.4, abs=0.01)  # exactly the weight added, no churn


def test_with_three_arms_users_only_move_into_the_arm_that_gained():
    # B gains; A and C shrink in proportion (0.6 : 0.3 stays 0.4 : 0.2).
    before = arms_of(experiment({"A": 0.6, "B": 0.1, "C": 0.3}), USERS[:50_000])
    after = arms_of(experiment({"A": 0.4, "B": 0.4, "C": 0.2}), USERS[:50_000])
    moves = {(old, new) for old, new in zip(before, after, strict=True) if old != new}
    assert moves == {("A", "B"), ("C", "B")}


def test_the_order_of_arms_does_not_matter():
    weights = {"A": 0.5, "B": 0.3, "C": 0.2}
    reordered = dict(reversed(list(weights.items())))
    assert [choose_arm("s", u, weights) for u in USERS[:5000]] == [
        choose_arm("s", u, reordered) for u in USERS[:5000]
    ]


def test_experiments_in_one_layer_never_share_a_user_and_split_the_layer():
    config = load_config(EXAMPLE)
    assigner = Assigner(config)
    users = USERS[:40_000]
    bandit = [assigner.assign(u, "bandit") for u in users]
    templates = [assigner.assign(u, "templates") for u in users]
    assert not any(b.assigned and t.assigned for b, t in zip(bandit, templates, strict=True))
    holdout = sum(b.reason == "holdout" for b in bandit) / len(users)
    in_templates = sum(t.assigned for t in templates) / len(users)
    in_bandit = sum(b.assigned for b in bandit) / len(users)
    assert holdout == pytest.approx(0.05, abs=0.005)
    assert in_templates == pytest.approx(0.95 * 0.5, abs=0.01)
    assert in_bandit == pytest.approx(0.95 * 0.5 * 0.8, abs=0.01)  # coverage 0.8


def test_widening_a_layer_range_into_free_space_only_adds_users():
    slot = LayerSlot("layer", "layer-salt", 0.0, 0.3)
    narrow = experiment({"A": 0.5, "B": 0.5}, layer=slot)
    wide = experiment({"A": 0.5, "B": 0.5}, layer=dataclasses.replace(slot, end=0.7))
    before, after = arms_of(narrow, USERS[:20_000]), arms_of(wide, USERS[:20_000])
    assert all(new == old for old, new in zip(before, after, strict=True) if old is not None)
    assert sum(a is not None for a in after) > sum(b is not None for b in before)


def test_raising_the_holdout_only_removes_users():
    exp = experiment({"A": 0.5, "B": 0.5})
    small = arms_of(exp, USERS[:20_000], Holdout(0.05))
    large = arms_of(exp, USERS[:20_000], Holdout(0.2))
    assert all(old == new for old, new in zip(small, large, strict=True) if new is not None)
    assert sum(a is None for a in large) / 20_000 == pytest.approx(0.2, abs=0.01)


def test_experiments_in_different_layers_are_assigned_independently():
    config = load_config(EXAMPLE)
    assigner = Assigner(config)
    table = np.zeros((2, 3))
    index = {"classical": 0, "transformer": 1, "greedy": 0, "linucb": 1, "thompson": 2}
    for user in USERS[:30_000]:
        arms = assigner.arms(user)
        if "nlu-v2" in arms and "bandit" in arms:
            table[index[arms["nlu-v2"].name], index[arms["bandit"].name]] += 1
    assert sps.chi2_contingency(table).pvalue > 0.001


def test_assigner_reports_why_a_user_has_no_arm():
    config = load_config(EXAMPLE)
    result = Assigner(config).assign_all("user-42")
    assert set(result) == {"nlu-v2", "bandit", "templates"}
    for assignment in result.values():
        assert assignment.assigned == (assignment.reason == "assigned")
        assert assignment.reason in {"assigned", "holdout", "outside_layer_range", "not_covered"}
    counts = Assigner(config).counts(USERS[:2000], "nlu-v2")
    assert set(counts) == {"classical", "transformer"}
    assert sum(counts.values()) == pytest.approx(2000 * 0.95, abs=40)
