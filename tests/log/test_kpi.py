"""The KPI library: golden numbers on a hand-made log, and DuckDB == Spark on a simulated one."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from voxloop.errors import ConfigError
from voxloop.log.engines import DuckDBEngine, SparkEngine, spark_session
from voxloop.log.kpi import KPI_TABLES, compute_kpis, format_kpis, format_table, kpis_to_json
from voxloop.log.store import LogStore
from voxloop.log.writer import LogWriter
from voxloop.schema import Feedback, IntentScore, Parse, Turn

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def turn(
    i: int,
    text: str,
    *,
    at: float,
    user: str = "u1",
    intent: str | None = "HassTurnOn",
    confidence: float = 0.9,
    domain: str = "lights",
    latency: float = 5.0,
    model: str = "v1",
) -> Turn:
    top = intent or "HassTurnOn"
    return Turn(
        turn_id=f"t{i:03d}",
        timestamp=NOON + timedelta(seconds=at),
        text=text,
        parse=Parse(
            text,
            intent,
            confidence,
            (IntentScore(top, confidence), IntentScore("HassTurnOff", 0.05)),
            (),
            domain=domain,
        ),  # fmt: skip
        model_version=model,
        user_id=user,
        session_id=f"{user}-s",
        latency_ms=latency,
    )


@pytest.fixture()
def golden(tmp_path: Path) -> Path:
    """Ten lights turns of u1 and ten weather turns of u2, with known signals."""
    with LogWriter(tmp_path) as w:
        # u1: t000 declined, rephrased 4 s later (similar text); t001 is that rephrase
        w.append_turn(turn(0, "turn on the kitchen light", at=0, intent=None, confidence=0.3))
        w.append_turn(turn(1, "turn on the kitchen lights", at=4))
        # t002 -> t003: similar text but 60 s later: no rephrase
        w.append_turn(turn(2, "turn off the kitchen light", at=100))
        w.append_turn(turn(3, "turn off the kitchen lights", at=160))
        # t004 -> t005: 3 s later but a different request: no rephrase
        w.append_turn(turn(4, "dim the bedroom", at=300, confidence=0.45))
        w.append_turn(turn(5, "what time is it", at=303))
        for i in range(6, 10):
            w.append_turn(turn(i, "lights on", at=1000 + 100 * i))
        for i in range(10, 20):  # u2: latencies 1..10 ms; t010 barge-in, t011 1-star rating
            w.append_turn(turn(i, f"weather in city {i}", at=5000 + 100 * i, user="u2",
                               intent="Weather", domain="weather", latency=i - 9.0,
                               model="v2"))  # fmt: skip
        w.append_feedback(Feedback("t010", NOON + timedelta(hours=2), "barge_in"))
        w.append_feedback(Feedback("t011", NOON + timedelta(hours=2), "rating", 0.0))
        w.append_feedback(Feedback("t012", NOON + timedelta(hours=2), "rating", 1.0))
        w.append_feedback(Feedback("t013", NOON + timedelta(hours=2), "task_success", 1.0))
    return tmp_path


def rows(table: Any) -> list[dict[str, Any]]:
    return list(table.to_pylist())


def test_rates_per_domain_follow_the_defect_definition(golden: Path) -> None:
    kpis = compute_kpis(golden)
    by = {r["domain"]: r for r in rows(kpis["by_slice"])}
    lights, weather = by["lights"], by["weather"]
    assert lights["turns"] == 10 and weather["turns"] == 10
    assert lights["not_recognized_rate"] == pytest.approx(0.1)
    assert lights["low_confidence_rate"] == pytest.approx(0.2)  # 0.3 and 0.45 < 0.5
    assert lights["rephrase_rate"] == pytest.approx(0.1)  # only t000
    assert lights["defect_rate"] == pytest.approx(0.1)  # t000: declined and rephrased
    assert weather["barge_in_rate"] == pytest.approx(0.1)
    assert weather["negative_feedback_rate"] == pytest.approx(0.1)  # the 0.0 rating only
    assert weather["defect_rate"] == pytest.approx(0.2)
    (summary,) = rows(kpis["summary"])
    assert summary["turns"] == 20 and summary["users"] == 2 and summary["defects"] == 3


def test_rephrase_needs_both_the_window_and_the_similarity(golden: Path) -> None:
    wide = compute_kpis(golden, rephrase_window_s=61, tables=["summary"])
    assert rows(wide["summary"])[0]["rephrase_rate"] == pytest.approx(2 / 20)  # + t002
    strict = compute_kpis(golden, rephrase_similarity=0.95, tables=["summary"])
    assert rows(strict["summary"])[0]["rephrase_rate"] == pytest.approx(1 / 20)  # quick retry
    strict = compute_kpis(golden, rephrase_similarity=0.95, rephrase_quick_s=0,
                          tables=["summary"])  # fmt: skip
    assert rows(strict["summary"])[0]["rephrase_rate"] == 0


def test_a_quick_retry_after_an_unsure_turn_is_a_rephrase(tmp_path: Path) -> None:
    """A paraphrase shares few trigrams: it counts only as a quick retry (within
    rephrase_quick_s) after a declined or low-confidence turn, with some overlap."""
    with LogWriter(tmp_path) as w:
        w.append_turn(turn(0, "wake me at seven", at=0, intent=None, confidence=0.2))
        w.append_turn(turn(1, "set an alarm for seven am", at=5))  # similarity ~0.15
        w.append_turn(turn(2, "wake me at eight", at=100, confidence=0.9))  # sure: not a retry
        w.append_turn(turn(3, "set an alarm for eight am", at=105))
        w.append_turn(turn(4, "wake me at nine", at=200, intent=None, confidence=0.2))
        w.append_turn(turn(5, "set an alarm for nine am", at=215))  # 15 s: too slow
        w.append_turn(turn(6, "volume up", at=300, intent=None, confidence=0.2))
        w.append_turn(turn(7, "what time is it", at=303))  # no overlap: another request
        # two requests of another user at the same instant: a quick retry, unless turned off
        w.append_turn(turn(8, "wake me at ten", at=400, user="u2", intent=None, confidence=0.2))
        w.append_turn(turn(9, "set an alarm for ten am", at=400, user="u2"))
    from voxloop.log.generate import trigram_similarity

    assert 0.05 <= trigram_similarity("wake me at seven", "set an alarm for seven am") < 0.2
    engine = LogStore(tmp_path).engine()
    compute_kpis(engine, tables=["summary"])
    flagged = engine.sql("SELECT turn_id FROM turn_facts WHERE rephrased = 1").column(0)
    assert flagged.to_pylist() == ["t000", "t008"]
    compute_kpis(engine, tables=["summary"], rephrase_quick_s=0)
    assert engine.sql("SELECT SUM(rephrased) FROM turn_facts").column(0)[0].as_py() == 0
    compute_kpis(engine, tables=["summary"], rephrase_quick_s=20)
    flagged = engine.sql("SELECT turn_id FROM turn_facts WHERE rephrased = 1 ORDER BY 1")
    assert flagged.column(0).to_pylist() == ["t000", "t004", "t008"]


def test_ratings_are_read_on_the_one_scale(tmp_path: Path) -> None:
    """0 worst, 1 best (voxloop.schema.RATING_SCALE): 1.0 is praise, not one star."""
    with LogWriter(tmp_path) as w:
        for i, value in enumerate((1.0, 0.75, 0.25, 0.0)):
            w.append_turn(turn(i, f"lights {i}", at=100 * i))
            w.append_feedback(Feedback(f"t{i:03d}", NOON + timedelta(hours=1), "rating", value))
    kpis = compute_kpis(tmp_path, tables=["summary"])
    assert rows(kpis["summary"])[0]["negative_feedback_rate"] == pytest.approx(0.5)


def test_latency_percentiles_are_nearest_rank(golden: Path) -> None:
    latency = {r["model_version"]: r for r in rows(compute_kpis(golden)["latency"])}
    v2 = latency["v2"]  # 1, 2, ..., 10 ms
    assert (v2["p50_ms"], v2["p95_ms"], v2["p99_ms"], v2["max_ms"]) == (5.0, 10.0, 10.0, 10.0)
    assert v2["mean_ms"] == pytest.approx(5.5)


def test_top_failing_friction_and_hot_spots_name_the_failed_utterance(golden: Path) -> None:
    kpis = compute_kpis(golden)
    (failing,) = [r for r in rows(kpis["top_failing"]) if r["domain"] == "lights"]
    assert failing["utterance"] == "turn on the kitchen light" and failing["rank"] == 1
    (example,) = rows(kpis["friction_examples"])
    assert example["next_text"] == "turn on the kitchen lights"
    assert example["next_gap_s"] == pytest.approx(4.0)
    assert 0.8 < example["next_similarity"] < 1
    assert rows(kpis["hot_spots"])[0]["top_intent"] == "HassTurnOn"
    assert rows(kpis["confusions"])[0]["second_intent"] == "HassTurnOff"


def test_turns_declined_above_the_low_confidence_line_are_hot_spots_and_confusions(
    tmp_path: Path,
) -> None:
    """A decline threshold above --low-confidence declines turns that are not low-confidence
    (0.55 here): they rank an intent as a hot spot and show in the confusions all the same."""
    with LogWriter(tmp_path) as w:
        for i in range(3):  # HassTurnOn: declined at 0.55, never "low confidence"
            w.append_turn(turn(i, "lights on", at=100 * i, intent=None, confidence=0.55))
        for i in range(3, 5):  # Weather: two low-confidence answers
            w.append_turn(turn(i, "rain?", at=100 * i, intent="Weather", confidence=0.3,
                               domain="weather"))  # fmt: skip
    kpis = compute_kpis(tmp_path, tables=["hot_spots", "confusions"])
    spots = rows(kpis["hot_spots"])
    assert [r["top_intent"] for r in spots] == ["HassTurnOn", "Weather"]
    assert spots[0]["declined_or_unsure"] == 3 and spots[0]["low_confidence"] == 0
    assert {(r["top_intent"], r["turns"]) for r in rows(kpis["confusions"])} == {
        ("HassTurnOn", 3),
        ("Weather", 2),
    }


def test_by_several_columns_and_bad_options(golden: Path) -> None:
    kpis = compute_kpis(golden, by="domain,model_version", tables=["by_slice"])
    assert [(r["domain"], r["model_version"]) for r in rows(kpis["by_slice"])] == [
        ("lights", "v1"),
        ("weather", "v2"),
    ]
    with pytest.raises(ConfigError, match="cannot slice by 'text; drop'"):
        compute_kpis(golden, by=["text; drop"])
    with pytest.raises(ConfigError, match="low_confidence"):
        compute_kpis(golden, low_confidence=2)
    with pytest.raises(ConfigError, match="unknown KPI"):
        compute_kpis(golden, tables=["nope"])


def test_text_and_json_output(golden: Path) -> None:
    kpis = compute_kpis(golden)
    text = format_kpis(kpis)
    assert "== by_slice ==" in text and "lights" in text
    data = json.loads(json.dumps(kpis_to_json(kpis, log=str(golden))))
    assert set(KPI_TABLES) <= set(data)
    assert data["daily"][0]["day"] == "2026-11-25"


def test_text_output_counts_rows_left_out() -> None:
    table = pa.table({"n": [1, 2, 3]})
    assert format_table(table, limit=2).endswith("\n... 1 more row (--json for all)")
    assert format_table(table, limit=1).endswith("\n... 2 more rows (--json for all)")


# --- the same KPIs on both engines ----------------------------------------------------
@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    session = spark_session(
        "local[1]",
        {
            "spark.sql.shuffle.partitions": "1",
            "spark.default.parallelism": "1",
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.adaptive.enabled": "false",
            "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Path:
    """Two days of 40 simulated users talking to two real models trained on SLURP."""
    from voxloop.data import load_corpus
    from voxloop.log.generate import ModelArm, generate_log
    from voxloop.nlu.classical import ClassicalParser

    corpus = load_corpus(f"slurp:{datasets / 'slurp'}")
    train = corpus.split("dev")
    a = ClassicalParser(sentence_encoder="none", crf_epochs=2, gazetteer_folds=2).fit(train)
    b = ClassicalParser(sentence_encoder="none", crf_epochs=2, gazetteer_folds=2,
                        c_values=(0.05,)).fit(train)  # fmt: skip
    out = tmp_path_factory.mktemp("simulated")
    generate_log(out, corpus.split("test"), [ModelArm(a, "a"), ModelArm(b, "b", parse_ms=3)],
                 users=40, days=2, threshold=0.3, seed=1)  # fmt: skip
    return out


def normalised(table: Any) -> list[dict[str, Any]]:
    def value(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, 9)
        return v

    return [{k: value(v) for k, v in row.items()} for row in table.to_pylist()]


def test_duckdb_and_spark_give_equal_kpis(simulated: Path, spark: Any) -> None:
    store = LogStore(simulated)
    options = {"by": ("domain", "model_version"), "top_k": 5}
    duck = compute_kpis(store, **options)  # type: ignore[arg-type]
    engine = SparkEngine(store, session=spark)
    try:
        sparks = compute_kpis(engine, **options)  # type: ignore[arg-type]
    finally:
        engine.close()
    assert list(duck) == list(sparks) == list(KPI_TABLES)
    for name in KPI_TABLES:
        assert duck[name].column_names == sparks[name].column_names, name
        assert normalised(duck[name]) == normalised(sparks[name]), name
    # the simulated log exercises every table
    for name in ("arms", "top_failing", "friction_examples", "confusions"):
        assert duck[name].num_rows > 0, name
    assert {r["arm"] for r in rows(duck["arms"])} == {"control", "treatment"}


def test_both_engines_and_python_lower_case_turkish_and_greek_alike(
    tmp_path: Path, spark: Any
) -> None:
    """Spark lower-cases "İ" to "i" plus a combining dot and a final "Σ" to "ς"; DuckDB to
    "i" and "σ": the same log gave other similarities, rephrases and top utterances."""
    from voxloop.log.generate import trigram_similarity

    said = [("u1", "İSTANBUL'A GİT", None), ("u1", "istanbul'a git", "HassTurnOn"),
            ("u2", "ΑΝΑΨΕ ΤΟ ΦΩΣ", None), ("u2", "άναψε το φως σας", "HassTurnOn")]  # fmt: skip
    with LogWriter(tmp_path) as writer:
        for i, (user, text, intent) in enumerate(said):
            writer.append_turn(turn(i, text, at=10 * i, user=user, intent=intent))
    query = "SELECT turn_id, next_similarity, rephrased FROM turn_facts ORDER BY turn_id"
    found = {}
    store = LogStore(tmp_path)
    for engine in (DuckDBEngine(store), SparkEngine(store, session=spark)):
        try:
            top = compute_kpis(engine, tables=["top_failing"])["top_failing"]
            found[engine.name] = (normalised(engine.sql(query)), normalised(top))
        finally:
            engine.close()
    assert found["duckdb"] == found["spark"]
    facts, top = found["duckdb"]
    pairs = zip(said[::2], said[1::2], strict=True)
    expected = [round(trigram_similarity(a[1], b[1]), 9) for a, b in pairs]
    assert [facts[0]["next_similarity"], facts[2]["next_similarity"]] == expected
    assert expected[0] == 1.0 and facts[0]["rephrased"] == 1
    assert "istanbul'a git" in {r["utterance"] for r in top}


def test_spark_session_does_not_flood_stderr() -> None:
    """`voxloop kpi --engine spark` printed ~180 "No Partition Defined for Window operation!"
    lines (the KPI SQL's windows without PARTITION BY) and pyspark's pandas>=3
    FutureWarning; other Spark warnings must still show."""
    script = """
from voxloop.log.engines import spark_session
s = spark_session("local[1]", {"spark.sql.shuffle.partitions": "1",
                               "spark.sql.codegen.wholeStage": "false"})
s.sql("SELECT x, DENSE_RANK() OVER (ORDER BY x), SUM(x) OVER () FROM VALUES (2), (1) AS t(x)"
      ).collect()
s.sparkContext._jvm.org.apache.logging.log4j.LogManager.getLogger(
    "org.apache.spark.sql.execution.SparkPlan").warn("a real warning")
s.stop()
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "No Partition Defined" not in result.stderr
    assert "FutureWarning" not in result.stderr
    assert "WARN SparkPlan: a real warning" in result.stderr
