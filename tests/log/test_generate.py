"""The log generator: real turn logs from simulated users talking to a real model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from voxloop.log.generate import ModelArm, generate_log, generate_log_fast, trigram_similarity
from voxloop.log.kpi import compute_kpis
from voxloop.log.store import LogStore
from voxloop.log.writer import TURN_SCHEMA


@pytest.fixture(scope="module")
def world(datasets: Path) -> tuple[Any, Any]:
    from voxloop.data import load_corpus
    from voxloop.nlu.classical import ClassicalParser

    corpus = load_corpus(f"slurp:{datasets / 'slurp'}")
    model = ClassicalParser(sentence_encoder="none", crf_epochs=2, gazetteer_folds=2)
    return model.fit(corpus.split("dev")), corpus.split("test")


def test_simulated_users_write_a_real_turn_log(world: tuple[Any, Any], tmp_path: Path) -> None:
    model, test = world
    made = generate_log(tmp_path, test, ModelArm(model, "m1"), users=30, days=3, threshold=0.3)
    store = LogStore(tmp_path)
    (row,) = store.sql(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT user_id) AS users, COUNT(DISTINCT day) AS days, "
        "SUM(CASE WHEN intent IS NULL THEN 1 ELSE 0 END) AS declined FROM turns"
    ).to_pylist()
    assert row["n"] == made.turns > 100 and row["days"] == 3 and row["users"] <= 30
    assert made.users == row["users"]  # those who spoke, not the 30 simulated
    assert row["declined"] > 0  # the threshold declines some of the real model's parses
    assert 0 < made.wrong < made.turns and made.rephrased_turn_ids
    assert store.sql("SELECT COUNT(*) FROM feedback").column(0)[0].as_py() == made.feedback


def test_sql_rephrase_detection_is_precise_on_the_simulation(
    world: tuple[Any, Any], tmp_path: Path
) -> None:
    model, test = world
    made = generate_log(tmp_path, test, ModelArm(model, "m1"), users=60, days=2, seed=3)
    engine = LogStore(tmp_path).engine()
    compute_kpis(engine, tables=["summary"])
    found = set(engine.sql("SELECT turn_id FROM turn_facts WHERE rephrased = 1").column(0)
                .to_pylist())  # fmt: skip
    true = made.rephrased_turn_ids
    assert set(made.rephrase_kinds.values()) == {"repeat", "edit", "paraphrase"}
    assert len(found & true) / len(found) >= 0.9
    assert len(found & true) / len(true) >= 0.6
    # repeats and edits are found; paraphrases only in part (few shared characters)
    for kind, least in (("repeat", 0.95), ("edit", 0.9)):
        ids = {t for t, k in made.rephrase_kinds.items() if k == kind}
        assert len(found & ids) / len(ids) >= least, kind


def test_the_fast_generator_writes_the_writer_schema_with_two_arms(
    world: tuple[Any, Any], tmp_path: Path
) -> None:
    model, test = world
    made = generate_log_fast(tmp_path, test, [ModelArm(model, "a"), ModelArm(model, "b")],
                             turns=20_000, days=3, seed=2)  # fmt: skip
    assert 19_000 < made.turns < 21_000
    assert made.rephrase_kinds and made.rephrased_turn_ids <= set(
        pq.read_table(tmp_path / "turns", columns=["turn_id"]).column(0).to_pylist()
    )
    files = sorted((tmp_path / "turns").glob("date=*/part-*.parquet"))
    assert len(files) == 3
    schema = pq.read_schema(files[0])
    assert schema.equals(TURN_SCHEMA)
    assert schema.metadata[b"voxloop.kind"] == b"turns"
    kpis = compute_kpis(tmp_path, tables=["summary", "arms"])
    assert kpis["summary"].column("turns")[0].as_py() == made.turns
    assert kpis["summary"].column("users")[0].as_py() == made.users
    assert kpis["arms"].column("arm").to_pylist() == ["control", "treatment"]
    # every turn, rephrases after late sessions included, is in its own day's partition
    store = LogStore(tmp_path)
    assert store.sql("SELECT COUNT(*) AS n FROM turns WHERE CAST(ts AS DATE) <> day").column(
        "n"
    ).to_pylist() == [0]


def test_trigram_similarity_matches_its_definition() -> None:
    assert trigram_similarity("Lights on", "lights on") == 1.0
    assert trigram_similarity("abc", "xyz") == 0.0
    assert 0 < trigram_similarity("turn on the light", "turn on the lights") < 1
