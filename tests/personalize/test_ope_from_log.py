"""`voxloop ope` over a turn log written by `LogWriter`: turns answered by a uniform
logging policy with known rewards; the estimates of a target policy land around its exact
value, and logs without policy decisions get a clear error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from voxloop.cli import main
from voxloop.log.writer import LogWriter
from voxloop.personalize import Context, Featurizer, LinUCB
from voxloop.personalize.from_log import evaluate_log
from voxloop.personalize.ope import target_probabilities
from voxloop.schema import Feedback, IntentScore, Parse, Turn

INTENTS = ("HassTurnOn", "HassGetWeather", "HassTimerSet")
ACTIONS = ("brief", "detailed", "ask")
BEST = {"HassTurnOn": "brief", "HassGetWeather": "detailed", "HassTimerSet": "ask"}


def _reward(intent: str, action: str) -> float:
    return 1.0 if BEST[intent] == action else 0.2


def _write_log(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    with LogWriter(path, flush_interval=60, flush_rows=100_000) as writer:
        for i in range(n):
            intent = INTENTS[rng.integers(3)]
            action = ACTIONS[rng.integers(3)]
            turn_id = f"t{i}"
            ts = start + timedelta(minutes=i)
            parse = Parse("x", intent, 0.9, (IntentScore(intent, 0.9),), (), domain="home")
            writer.append_turns([Turn(
                turn_id=turn_id, timestamp=ts, text="x", parse=parse, model_version="v1",
                user_id=f"u{i % 50}", action=action, propensity=1 / 3, candidates=ACTIONS,
            )])  # fmt: skip
            if i % 10 != 9:  # every tenth turn has no feedback
                success = float(rng.random() < _reward(intent, action))
                writer.append_feedback(Feedback(turn_id, ts, "task_success", success))


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A greedy policy that learned the best action of each intent."""
    policy = LinUCB(alpha=0.0, featurizer=Featurizer(32))
    rng = np.random.default_rng(1)
    for _ in range(600):
        intent = INTENTS[rng.integers(3)]
        action = ACTIONS[rng.integers(3)]
        policy.update(Context(intent=intent, domain="home"), action, _reward(intent, action))
    path = tmp_path_factory.mktemp("policy") / "greedy"
    policy.save(path)
    return path


def test_estimates_land_around_the_target_policys_true_value(
    tmp_path: Path, policy_dir: Path
) -> None:
    _write_log(tmp_path / "log", 3000)
    from voxloop.personalize import load_policy

    policy = load_policy(policy_dir)
    result, decisions = evaluate_log(tmp_path / "log", policy, n_bootstrap=200)
    assert result.n == len(decisions) == 2700 and decisions.without_reward == 300
    # the logging policy is uniform: its value is the mean reward (1 + 0.2 + 0.2) / 3
    assert decisions.logged_value == pytest.approx(1.4 / 3, abs=0.04)
    assert result.mean_weight == pytest.approx(1.0, abs=0.1)
    # the target's exact value on these contexts: its probabilities times the true rewards
    pi = target_probabilities(policy, decisions.contexts, decisions.candidates, list(ACTIONS))
    truth = float(np.mean([
        sum(p * _reward(str(c.intent), a) for p, a in zip(row, ACTIONS, strict=True))
        for row, c in zip(pi, decisions.contexts, strict=True)
    ]))  # fmt: skip
    assert truth > 0.9  # far above the logging policy: the estimators must see that
    for name in ("ips", "snips", "dr"):
        estimate = result[name]
        assert estimate.ci_low - 0.01 <= truth <= estimate.ci_high + 0.01, (name, truth, estimate)


def test_the_command_prints_and_writes_json(
    tmp_path: Path, policy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_log(tmp_path / "log", 600)
    args = ["ope", "--log", str(tmp_path / "log"), "--policy", str(policy_dir)]
    assert main([*args, "--default-reward", "1"]) == 0
    out = capsys.readouterr().out
    assert "600 logged decisions" in out and "snips" in out
    assert main([*args, "--json", "--estimators", "ips,snips"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["turns"] == 540 and set(data["estimates"]) == {"ips", "snips"}


def test_a_log_without_policy_decisions_is_named(tmp_path: Path, policy_dir: Path) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with LogWriter(tmp_path / "log") as writer:
        parse = Parse("x", "HassTurnOn", 0.9, (), ())
        writer.append_turns([Turn("t0", start, "x", parse, "v1")])
    assert main(["ope", "--log", str(tmp_path / "log"), "--policy", str(policy_dir)]) == 1


def test_an_arm_the_log_does_not_have_is_named_with_the_arms_it_has(
    tmp_path: Path, policy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    parse = Parse("x", "HassTurnOn", 0.9, (IntentScore("HassTurnOn", 0.9),), (), domain="home")
    with LogWriter(tmp_path / "log") as writer:
        for i, arm in enumerate(("bandit", "fixed", "bandit")):
            writer.append_turns([Turn(
                turn_id=f"t{i}", timestamp=start, text="x", parse=parse, model_version="v1",
                experiment="responses", arm=arm, action="brief", propensity=1.0,
                candidates=("brief",),
            )])  # fmt: skip
            writer.append_feedback(Feedback(f"t{i}", start, "task_success", 1.0))
    args = ["ope", "--log", str(tmp_path / "log"), "--policy", str(policy_dir)]
    assert main([*args, "--arm", "bandt"]) == 1
    err = capsys.readouterr().err
    assert "no arm 'bandt' in the turn log; its arms: bandit, fixed" in err
    assert main([*args, "--arm", "fixed", "--estimators", "ips"]) == 0


def test_an_unknown_estimator_is_named_with_the_choices_as_a_plain_list(
    tmp_path: Path, policy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_log(tmp_path / "log", 30)
    args = ["ope", "--log", str(tmp_path / "log"), "--policy", str(policy_dir)]
    assert main([*args, "--estimators", "ips,drr"]) == 1
    expected = "--estimators: unknown estimator 'drr'; choose from ips, snips, dm, dr, switch, dros"
    assert expected in capsys.readouterr().err
