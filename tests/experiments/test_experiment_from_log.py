"""`analyze_log` and ``voxloop experiment analyze`` over a generated A/B turn log: the
per-arm figures equal those computed directly from the log, and bad configs are named."""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from voxloop.cli import main
from voxloop.data import load_corpus
from voxloop.errors import ConfigError
from voxloop.experiments import loads_config
from voxloop.experiments.from_log import analyze_log
from voxloop.log.generate import ModelArm, generate_log
from voxloop.log.store import LogStore
from voxloop.log.writer import LogWriter
from voxloop.nlu.classical import ClassicalParser
from voxloop.schema import Parse, Turn

CONFIG = """
version = 1

[experiments.model]
salt = "model"
control = "control"

[experiments.model.arms.control]
weight = 0.5

[experiments.model.arms.treatment]
weight = 0.5

[experiments.model.metrics.defect_rate]
type = "ratio"
role = "primary"
direction = "decrease"

[experiments.model.metrics.had_defect]
type = "proportion"
direction = "decrease"

[experiments.model.metrics.turns_per_user]
type = "mean"
cuped = true
"""


@pytest.fixture(scope="module")
def ab_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = load_corpus("hass:en")
    train = list(corpus.split("train"))
    random.Random(0).shuffle(train)
    weak = ClassicalParser(sentence_encoder="none", crf_epochs=3, gazetteer_folds=2, seed=0)
    strong = ClassicalParser(sentence_encoder="none", crf_epochs=5, gazetteer_folds=2, seed=1)
    weak.fit(train[:60])
    strong.fit(train[:600])
    out = tmp_path_factory.mktemp("ablog")
    generate_log(
        out,
        corpus.split("test")[:300],
        [ModelArm(weak, "weak"), ModelArm(strong, "strong")],
        users=160,
        days=4,
        start=date(2026, 11, 1),
        threshold=0.3,
        seed=3,
    )
    return out


def _direct(log: Path, since: str) -> dict[str, tuple[int, float]]:
    rows = (
        LogStore(log)
        .sql(
            "SELECT arm, COUNT(DISTINCT user_id) AS users FROM turns "
            f"WHERE experiment = 'model' AND day >= DATE '{since}' GROUP BY arm"
        )
        .to_pylist()
    )
    return {r["arm"]: r["users"] for r in rows}


def test_analysis_from_the_log_matches_the_log(ab_log: Path) -> None:
    config = loads_config(CONFIG)["model"]
    analysis = analyze_log(ab_log, config, since="2026-11-03")
    users = _direct(ab_log, "2026-11-03")
    assert {a.name: a.users for a in analysis.result.arms} == users
    assert analysis.users == sum(users.values()) and analysis.mixed_users == 0
    # the weak model (control) fails far more often: the verdict sees it
    row = analysis.result.metric("defect_rate", "treatment")
    assert row.treatment_mean < row.control_mean
    assert row.ci_high is not None and row.ci_high < 0
    assert analysis.result.verdict == "ship"
    # CUPED read a pre-period (days 1-2) and used it
    assert analysis.result.metric("turns_per_user", "treatment").theta is not None


def test_the_defect_rate_is_defects_over_turns_per_arm(ab_log: Path) -> None:
    config = loads_config(CONFIG.replace("cuped = true", ""))["model"]
    analysis = analyze_log(ab_log, config)
    from voxloop.log.kpi import compute_kpis

    arms = compute_kpis(ab_log, tables=["arms"])["arms"].to_pylist()
    for arm in arms:
        row = analysis.result.metric("defect_rate", "treatment")
        mean = row.control_mean if arm["arm"] == "control" else row.treatment_mean
        assert mean == pytest.approx(arm["defect_rate"], rel=1e-9)


def test_turns_logged_without_an_arm_are_left_out_and_counted(ab_log: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    shutil.copytree(ab_log, log)
    at = datetime(2026, 11, 3, 9, tzinfo=UTC)
    parse = Parse("lights on", None, 0.1, (), ())
    lost = Turn("armless-1", at, "lights on", parse, "weak", user_id="u-new", experiment="model")
    with LogWriter(log) as writer:
        writer.append_turn(lost)
    config = loads_config(CONFIG.replace("cuped = true", ""))["model"]
    before = analyze_log(ab_log, config)
    after = analyze_log(log, config)
    assert after.armless_turns == 1 and before.armless_turns == 0
    assert after.users == before.users and after.result == before.result


def test_unknown_or_mistyped_metrics_are_named() -> None:
    bad = CONFIG.replace("metrics.had_defect]", "metrics.happiness]")
    with pytest.raises(ConfigError, match="no metric 'happiness'.*defect_rate"):
        analyze_log("/nonexistent", loads_config(bad)["model"])
    wrong = CONFIG.replace('type = "ratio"', 'type = "mean"')
    with pytest.raises(ConfigError, match='ratio metric in the turn log; set type = "ratio"'):
        analyze_log("/nonexistent", loads_config(wrong)["model"])
    with pytest.raises(ConfigError, match="pre-period"):
        analyze_log("/nonexistent", loads_config(CONFIG)["model"])


def test_the_command_prints_a_verdict_and_json(
    ab_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(CONFIG, encoding="utf-8")
    args = ["experiment", "analyze", "--log", str(ab_log), "--config", str(config)]
    assert main([*args, "--since", "2026-11-02"]) == 0
    out = capsys.readouterr().out
    assert "defect_rate" in out and "ship" in out.lower()
    assert main([*args, "--since", "2026-11-02", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["experiment"] == "model" and result["log"]["users"] > 100
    assert main([*args]) == 1  # CUPED without --since
    assert "--since" in capsys.readouterr().err


def test_the_report_has_a_section_per_experiment(ab_log: Path, tmp_path: Path) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "report.html"
    args = ["report", "--log", str(ab_log), "--out", str(out), "--experiments", str(config)]
    assert main([*args, "--since", "2026-11-02"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "<h2>Experiment model</h2>" in page and "ship treatment" in page
    assert page.count("<td>defect_rate</td>") == 1
