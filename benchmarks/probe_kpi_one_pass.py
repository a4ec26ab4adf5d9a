"""Would one aggregation pass make the KPI suite faster, and what is the least the suite can
cost? A probe, not the library.

    python benchmarks/probe_kpi_one_pass.py LOG current    # the suite as compute_kpis runs it
    python benchmarks/probe_kpi_one_pass.py LOG cube       # one GROUPING SETS pass
    python benchmarks/probe_kpi_one_pass.py LOG grain      # one GROUP BY at the finest grain
    python benchmarks/probe_kpi_one_pass.py LOG floor      # the work every KPI depends on
    python benchmarks/probe_kpi_one_pass.py LOG floor-hash # the same, users' turns found by hash

``current`` materialises ``texts``, ``rephrase_candidates`` and the 30-column ``turn_facts``,
then runs every KPI query over it. ``cube`` materialises the first two only and computes the
per-slice counts and rates in one ``GROUPING SETS`` query over ``turn_facts`` as a CTE (never
written), and the latency percentiles and distinct users, sessions and days from ``turns``
directly (they need no rephrase detection). It leaves out ``friction_examples`` (20 rows in
ts order: another pass) and the last formatting steps, so it is a lower bound on the time a
one-pass design would take. ``grain`` aggregates ``turn_facts`` (a CTE) once, by every
dimension and the text (the table every other KPI could roll up from in milliseconds), then
computes latency and distinct counts from ``turns``: also without ``friction_examples``.
``floor`` computes ``turn_facts`` and only counts its flags (no table written, no KPI): the
work every KPI depends on, a floor under any design of the suite on this engine;
``floor-hash`` partitions the candidates' window by a 64-bit hash of the user id (sorting
integers, not strings; the fastest window found, though two users whose ids collide would
share one sequence). Run each in a fresh process, alternating, on a quiet machine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from voxloop.log.engines import DuckDBEngine
from voxloop.log.kpi import KPI_TABLES, STAGES, KpiOptions, kpi_sql
from voxloop.log.store import LogStore

FLAGS = ("defect", "not_recognized", "low_confidence", "rephrased", "barge_in", "abandoned",
         "negative_feedback")  # fmt: skip
FROM_TURNS = (
    """SELECT model_version, COUNT(*) AS turns,
         PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
         PERCENTILE_DISC(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
         PERCENTILE_DISC(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99
       FROM turns WHERE latency_ms IS NOT NULL GROUP BY model_version""",
    "SELECT COUNT(DISTINCT user_id), COUNT(DISTINCT session_id), COUNT(DISTINCT day) FROM turns",
    """SELECT COALESCE(experiment, '(none)'), COALESCE(arm, '(none)'), COUNT(DISTINCT user_id)
       FROM turns GROUP BY 1, 2""",
)


def cube_sql(options: KpiOptions) -> str:
    sums = ", ".join(f"SUM({f}) AS {f}" for f in FLAGS)
    return f"""
WITH f AS ({kpi_sql("turn_facts", options)})
SELECT GROUPING(domain, intent, day, experiment, arm, top_intent, second_intent, text_id) AS g,
  domain, intent, day, experiment, arm, top_intent, second_intent, text_id,
  COUNT(*) AS turns, {sums},
  COUNT(*) FILTER (WHERE low_confidence = 1) AS low_confidence_turns,
  AVG(confidence) AS mean_confidence,
  AVG(confidence) FILTER (WHERE low_confidence = 1) AS low_confidence_mean,
  AVG(latency_ms) AS mean_latency, MIN(model_version) AS model_version
FROM f
GROUP BY GROUPING SETS ((), (domain), (domain, intent), (day, domain), (experiment, arm),
  (top_intent), (top_intent, second_intent), (domain, text_id))
"""


GRAIN = ("day, locale, domain, intent, top_intent, second_intent, model_version, experiment, "
         "arm, channel, text_id")  # fmt: skip


def grain_sql(options: KpiOptions) -> str:
    sums = ", ".join(f"SUM({f}) AS {f}" for f in FLAGS)
    return f"""
SELECT {GRAIN}, COUNT(*) AS turns, {sums}, SUM(confidence) AS confidence_sum,
  COUNT(confidence) AS confidence_n, SUM(latency_ms) AS latency_sum, COUNT(latency_ms) AS latency_n
FROM ({kpi_sql("turn_facts", options)}) f
GROUP BY {GRAIN}
"""


def floor_sql(options: KpiOptions) -> str:
    sums = ", ".join(f"SUM({f})" for f in FLAGS)
    return f"SELECT COUNT(*), {sums} FROM ({kpi_sql('turn_facts', options)}) f"


def main() -> None:
    log, variant = sys.argv[1], sys.argv[2]
    engine = DuckDBEngine(LogStore(log), memory_limit="6GB", threads=2)
    options = KpiOptions()
    steps: dict[str, float] = {}

    def timed(name: str, work: Callable[[], Any]) -> None:
        started = time.perf_counter()
        work()
        steps[name] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    for stage in STAGES[:2]:
        sql = kpi_sql(stage, options)
        if variant == "floor-hash" and stage == "rephrase_candidates":
            if "PARTITION BY t.user_id" not in sql:
                sys.exit("rephrase_candidates.sql no longer partitions by t.user_id")
            sql = sql.replace("PARTITION BY t.user_id", "PARTITION BY hash(t.user_id)")
        timed(stage, lambda stage=stage, sql=sql: engine.materialize(stage, sql))
    if variant == "current":
        timed(
            "turn_facts", lambda: engine.materialize("turn_facts", kpi_sql("turn_facts", options))
        )
        timed("kpis", lambda: [engine.sql(kpi_sql(name, options)) for name in KPI_TABLES])
    elif variant == "cube":
        timed("cube", lambda: engine.sql(cube_sql(options)))
        timed("from_turns", lambda: [engine.sql(q) for q in FROM_TURNS])
    elif variant == "grain":
        timed("grain", lambda: engine.materialize("grain", grain_sql(options)))
        timed("from_turns", lambda: [engine.sql(q) for q in FROM_TURNS])
    else:
        timed("floor", lambda: engine.sql(floor_sql(options)))
    print(variant, round(time.perf_counter() - started, 2), steps)
    engine.close()


if __name__ == "__main__":
    main()
