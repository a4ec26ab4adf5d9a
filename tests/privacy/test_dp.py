"""Differentially private KPIs: the noise is the mechanism's, the budget holds, bad input
gets a clear error."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from voxloop.errors import ConfigError, DataError
from voxloop.log.engines import QueryError
from voxloop.log.kpi import compute_kpis
from voxloop.log.writer import LogWriter
from voxloop.privacy.dp import (
    BUDGET_FILE,
    BudgetExhausted,
    DpOptions,
    analytic_gaussian_sigma,
    dp_kpis,
    format_dp_kpis,
    noise_scale,
    release,
)
from voxloop.schema import IntentScore, Parse, Turn


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_the_released_noise_has_the_mechanisms_distribution(mechanism: str) -> None:
    options = DpOptions(epsilon=2.0, delta=1e-5, mechanism=mechanism, max_turns_per_user=5)
    counts = {"turns": np.full(4000, 100.0), "defect": np.full(4000, 7.0)}
    noisy = release(counts, options, np.random.default_rng(0))
    scale = noise_scale(options, families=2)
    dist = stats.laplace(scale=scale) if mechanism == "laplace" else stats.norm(scale=scale)
    for name, values in noisy.items():
        residual = values - counts[name]
        assert stats.kstest(residual, dist.cdf).pvalue > 0.01
        wrong = stats.laplace(scale=scale * 1.15) if mechanism == "laplace" else stats.norm(
            scale=scale * 1.15)  # fmt: skip
        assert stats.kstest(residual, wrong.cdf).pvalue < 0.01  # the test can tell


def test_laplace_scale_is_sensitivity_over_epsilon_per_family() -> None:
    assert noise_scale(DpOptions(1.0, max_turns_per_user=10), families=9) == pytest.approx(90)


def test_analytic_gaussian_sigma_meets_its_privacy_profile() -> None:
    sigma = analytic_gaussian_sigma(1.0, 1.0, 1e-5)
    assert 3.6 < sigma < 3.9  # Balle & Wang (2018) report ~3.73; the classical bound is 4.84
    a, b = 1 / (2 * sigma), sigma
    delta = stats.norm.cdf(a - b) - math.e * stats.norm.cdf(-a - b)
    assert delta == pytest.approx(1e-5, rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"epsilon": -1.0}, "dp_epsilon"), ({"epsilon": 0.0}, "dp_epsilon"),
     ({"epsilon": float("nan")}, "dp_epsilon"), ({"epsilon": 1.0, "delta": 2.0}, "dp_delta"),
     ({"epsilon": 1.0, "mechanism": "gaussian", "delta": 0.0}, "dp_delta"),
     ({"epsilon": 1.0, "mechanism": "exponential"}, "dp_mechanism"),
     ({"epsilon": 1.0, "max_turns_per_user": 0}, "dp_max_turns")],
)  # fmt: skip
def test_bad_options_name_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        DpOptions(**kwargs)
    assert e.value.key == key


def _log(directory: Path, users: int = 60, turns_per_user: int = 8) -> Path:
    rng = np.random.default_rng(1)
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    with LogWriter(directory) as writer:
        for u in range(users):
            for t in range(turns_per_user):
                ts = start + timedelta(hours=u, minutes=5 * t)
                ok = rng.random() > 0.2
                domain = ["music", "weather", "alarm"][u % 3]
                parse = Parse(f"utterance {u} {t} {'x' * (t * 7)}", "x" if ok else None, 0.9,
                              (IntentScore("x", 0.9),), (), domain)  # fmt: skip
                writer.append_turn(Turn(f"{u}-{t}", ts, parse.text, parse, "v1", user_id=f"u{u}"))
    return directory


def test_with_a_huge_epsilon_the_release_equals_the_kpis(tmp_path: Path) -> None:
    log = _log(tmp_path)
    exact = {r["domain"]: r for r in compute_kpis(log, tables=["by_slice"])["by_slice"].to_pylist()}
    result = dp_kpis(log, DpOptions(epsilon=1e7), budget=1e8, seed=0)
    assert len(result["by_slice"]) == 3
    for row in result["by_slice"]:
        assert row["turns"] == exact[row["domain"]]["turns"] == 160
        assert row["users"] == 20
        assert row["not_recognized_rate"] == pytest.approx(
            exact[row["domain"]]["not_recognized_rate"], abs=1e-3)  # fmt: skip


def test_contribution_bounding_caps_each_users_turns(tmp_path: Path) -> None:
    log = _log(tmp_path, users=6, turns_per_user=30)
    result = dp_kpis(log, DpOptions(epsilon=1e7, max_turns_per_user=4), budget=1e8, seed=0)
    assert result["summary"]["turns"] == 24


def test_the_text_release_says_one_turn_per_user(tmp_path: Path) -> None:
    log = _log(tmp_path, users=6, turns_per_user=2)
    result = dp_kpis(log, DpOptions(epsilon=1e7, max_turns_per_user=1), budget=1e8, seed=0)
    assert "at most 1 turn per user (a turn without a user id counts as a user of its own)" in (
        format_dp_kpis(result)
    )


def test_the_budget_ledger_refuses_queries_past_the_budget(tmp_path: Path) -> None:
    log = _log(tmp_path, users=6, turns_per_user=2)
    dp_kpis(log, DpOptions(epsilon=0.6), budget=1.0, seed=0)
    with pytest.raises(BudgetExhausted, match="0.6 of epsilon 1 spent, this query needs 0.5"):
        dp_kpis(log, DpOptions(epsilon=0.5), seed=0)
    dp_kpis(log, DpOptions(epsilon=0.4), seed=0)  # exactly what is left
    ledger = json.loads((log / BUDGET_FILE).read_text())
    assert [r["epsilon"] for r in ledger["releases"]] == [0.6, 0.4]
    with pytest.raises(ConfigError, match="cannot be changed"):
        dp_kpis(log, DpOptions(epsilon=0.1), budget=5.0)


def test_gaussian_deltas_add_up_against_the_delta_budget(tmp_path: Path) -> None:
    """Each Gaussian release has a chance delta of failing its epsilon: without a delta
    budget, any number of releases at delta 0.1 passed while epsilon lasted."""
    log = _log(tmp_path / "a", users=6, turns_per_user=2)
    gauss = DpOptions(epsilon=0.5, mechanism="gaussian", delta=4e-6)
    dp_kpis(log, gauss, seed=0)
    result = dp_kpis(log, gauss, seed=0)
    assert result["spent_delta"] == pytest.approx(8e-6) and result["budget_delta"] == 1e-5
    assert "(delta 8e-06 of 1e-05)" in format_dp_kpis(result)
    with pytest.raises(BudgetExhausted, match="8e-06 of delta 1e-05 spent, this query needs 4e-06"):
        dp_kpis(log, gauss, seed=0)
    dp_kpis(log, DpOptions(epsilon=0.5), seed=0)  # Laplace spends no delta
    with pytest.raises(ConfigError, match="cannot be changed"):
        dp_kpis(log, DpOptions(epsilon=0.1), delta_budget=1e-3)
    other = _log(tmp_path / "b", users=6, turns_per_user=2)
    with pytest.raises(BudgetExhausted, match="delta"):  # a larger delta needs a larger budget
        dp_kpis(other, DpOptions(epsilon=1.0, mechanism="gaussian", delta=0.01), seed=0)
    dp_kpis(other, DpOptions(epsilon=1.0, mechanism="gaussian", delta=0.01), delta_budget=0.05)


def test_concurrent_queries_cannot_spend_past_the_budget(tmp_path: Path) -> None:
    """Each query reads the ledger, computes, then records: without the log's lock, three
    at once all found budget left and released epsilon 12 of a budget of 10."""
    log = _log(tmp_path, users=30, turns_per_user=4)
    dp_kpis(log, DpOptions(epsilon=6.0), budget=10.0, seed=0)
    start = threading.Barrier(3)

    def query(seed: int) -> str:
        start.wait()
        try:
            dp_kpis(log, DpOptions(epsilon=4.0), seed=seed)
        except BudgetExhausted:
            return "refused"
        return "released"

    with ThreadPoolExecutor(3) as pool:
        outcomes = sorted(pool.map(query, range(3)))
    assert outcomes == ["refused", "refused", "released"]
    ledger = json.loads((log / BUDGET_FILE).read_text())
    assert [r["epsilon"] for r in ledger["releases"]] == [6.0, 4.0]


def test_cli_negative_epsilon_and_exhausted_budget(tmp_path: Path) -> None:
    log = _log(tmp_path, users=6, turns_per_user=2)
    cli = [sys.executable, "-m", "voxloop", "kpi", "--log", str(log)]
    env = dict(os.environ)
    done = subprocess.run(cli + ["--dp-epsilon", "-1"], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "dp_epsilon: must be positive" in done.stderr
    done = subprocess.run(cli + ["--dp-epsilon", "3", "--dp-budget", "4", "--json", "--by", "day"],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    released = json.loads(done.stdout)
    assert released["spent_epsilon"] == 3 and released["by_slice"][0]["day"] == "2026-11-01"
    done = subprocess.run(cli + ["--dp-epsilon", "2"], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "budget exhausted" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_query_that_fails_spends_no_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import voxloop.privacy.dp as dp

    log = _log(tmp_path, users=6, turns_per_user=2)
    dp_kpis(log, DpOptions(epsilon=1.0), budget=4.0, seed=0)

    def fail(*args: object, **kwargs: object) -> None:
        raise QueryError("query failed: Binder Error")

    monkeypatch.setattr(dp, "bounded_counts", fail)
    with pytest.raises(QueryError):
        dp_kpis(log, DpOptions(epsilon=3.0), seed=0)
    ledger = json.loads((log / BUDGET_FILE).read_text())
    assert [r["epsilon"] for r in ledger["releases"]] == [1.0]
    with pytest.raises(BudgetExhausted):  # still refused before anything is computed
        dp_kpis(log, DpOptions(epsilon=3.5), seed=0)


def test_a_release_the_ledger_cannot_record_is_not_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import voxloop.privacy.dp as dp

    log = _log(tmp_path, users=6, turns_per_user=2)
    dp_kpis(log, DpOptions(epsilon=1.0), budget=4.0, seed=0)
    before = (log / BUDGET_FILE).read_text()

    def read_only(path: Path, data: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(dp, "write_json_atomic", read_only)
    with pytest.raises(DataError, match="Read-only file system.*nothing was released") as e:
        dp_kpis(log, DpOptions(epsilon=1.0), seed=0)
    assert str(log / BUDGET_FILE) in str(e.value)
    assert (log / BUDGET_FILE).read_text() == before
