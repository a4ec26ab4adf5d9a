"""A running server with --experiments and --policy: users are routed to their arm's model
and policy, the log records arm, action and propensity, and feedback teaches the policy."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from servers import API_KEY, Models, Server, admin_headers, start_server

from voxloop.experiments import Assigner, loads_config
from voxloop.log.store import LogStore
from voxloop.personalize import Featurizer, LinUCB, load_policy

EXPERIMENTS = """
version = 1

[experiments.nlu-v2]
salt = "nlu-v2-test"
control = "old"

[experiments.nlu-v2.arms.old]
weight = 0.5
model_version = "v1"
policy = "fixed"

[experiments.nlu-v2.arms.new]
weight = 0.5
model_version = "v2"
policy = "ucb"

[experiments.nlu-v2.metrics.defect_rate]
type = "ratio"
role = "primary"
direction = "decrease"
"""

HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    path = tmp_path / "ucb-start"
    LinUCB(alpha=0.5, featurizer=Featurizer(32)).save(path)
    return path


def _experiment_server(
    models: Models, tmp_path: Path, policy_dir: Path, *extra: str, wait: bool = True
) -> Server:
    return start_server(
        models.v1,
        tmp_path,
        "--model-version",
        "v1",
        "--extra-model",
        f"v2={models.v2}",
        "--experiments",
        str(_write(tmp_path, EXPERIMENTS)),
        "--policy",
        f"ucb={policy_dir}",
        "--save-policies",
        str(tmp_path / "learned"),
        "--log-flush-interval",
        "0.2",
        "--replay-clock",
        *extra,
        wait_ready=wait,
    )


def test_users_get_their_arms_model_and_policy_and_the_log_records_it(
    models: Models, tmp_path: Path, policy_dir: Path, serve: list[Server]
) -> None:
    server = _experiment_server(models, tmp_path, policy_dir)
    serve.append(server)
    assigner = Assigner(loads_config(EXPERIMENTS))
    answers = []
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=10) as client:
        for i in range(60):
            user = f"user-{i}"
            text = models.texts[i]
            when = f"2026-10-{1 + i % 3:02d}T{i % 24:02d}:30:00+00:00"
            r = client.post("/v1/parse", json={"text": text, "user_id": user, "timestamp": when})
            assert r.status_code == 200, r.text
            body = r.json()
            arm = assigner.assign(user, "nlu-v2").arm
            assert (body["experiment"], body["arm"]) == ("nlu-v2", arm)
            assert body["model_version"] == {"old": "v1", "new": "v2"}[arm]
            response = body["response"]
            assert response["policy"] == {"old": "fixed", "new": "ucb"}[arm]
            assert 0 < response["propensity"] <= 1 and response["text"]
            answers.append((user, arm, body))
        # a user without an id is in no experiment: the active model, no response chosen
        plain = client.post("/v1/parse", json={"text": "turn on the kitchen light"}).json()
        assert plain["model_version"] == "v1" and "experiment" not in plain
        assert "response" not in plain
        # the server assigns arms itself
        r = client.post("/v1/parse", json={"text": "hi", "user_id": "u", "arm": "new"})
        assert r.status_code == 422 and "assigns experiment arms itself" in r.json()["error"]
        # an arm's model cannot be unloaded while the experiment runs
        r = client.delete("/admin/models/v2", headers=admin_headers())
        assert r.status_code == 409 and "nlu-v2" in r.json()["error"]
        # feedback on the policy's turns teaches it
        treated = [body for _, arm, body in answers if arm == "new"]
        assert len(treated) >= 15
        for body in treated:
            r = client.post(
                "/v1/feedback", json={"turn_id": body["turn_id"], "kind": "task_success"}
            )
            assert r.status_code == 202
        metrics = client.get("/metrics").text
    assert f"voxloop_policy_updates_total {len(treated)}" in metrics
    assert server.stop() == 0

    turns = (
        LogStore(server.log_dir)
        .sql(
            "SELECT turn_id, user_id, experiment, arm, model_version, action, propensity, "
            "candidates, day, HOUR(ts AT TIME ZONE 'UTC') AS hour FROM turns"
        )
        .to_pylist()
    )
    by_id = {t["turn_id"]: t for t in turns}
    for user, arm, body in answers:
        row = by_id[body["turn_id"]]
        assert (row["user_id"], row["experiment"], row["arm"]) == (user, "nlu-v2", arm)
        assert row["model_version"] == body["model_version"]
        assert row["action"] == body["response"]["action"]
        assert row["propensity"] == pytest.approx(body["response"]["propensity"], abs=1e-6)
        assert row["action"] in row["candidates"]
        i = int(user.split("-")[1])  # replayed at the time the request said
        assert (row["day"].day, row["hour"]) == (1 + i % 3, i % 24)
    learned = load_policy(tmp_path / "learned" / "ucb")
    assert int(learned.model_.arrays()["counts"].sum()) == len(treated)


def test_an_arm_naming_a_model_that_is_not_loaded_stops_the_server(
    models: Models, tmp_path: Path, serve: list[Server]
) -> None:
    server = start_server(
        models.v1,
        tmp_path,
        "--experiments",
        str(_write(tmp_path, EXPERIMENTS.replace('"v2"', '"v9"'))),
        wait_ready=False,
    )
    serve.append(server)
    assert server.process.wait(60) != 0
    output = server.log_text()
    assert "model version 'v9'" in output and "--extra-model" in output


def test_overlapping_experiments_are_refused(models: Models, tmp_path: Path) -> None:
    from voxloop.errors import ConfigError
    from voxloop.serve.routing import Router

    second = EXPERIMENTS.replace("nlu-v2", "other").replace('salt = "other-test"', 'salt = "x"')
    with pytest.raises(ConfigError, match="one experiment per turn"):
        Router(loads_config(EXPERIMENTS + second.replace("version = 1", "")))


def test_timestamps_need_the_replay_clock(server: Server) -> None:
    r = httpx.post(
        server.url + "/v1/parse",
        json={"text": "turn on the light", "timestamp": "2026-10-01T08:00:00+00:00"},
        headers=HEADERS,
    )
    assert r.status_code == 422 and "--replay-clock" in r.json()["error"]
    r = httpx.post(
        server.url + "/v1/parse",
        json={"text": "turn on the light", "timestamp": "2026-10-01T08:00:00"},
        headers=HEADERS,
    )
    assert r.status_code == 422 and "UTC offset" in r.json()["error"]
