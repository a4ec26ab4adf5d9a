"""Would one aggregation pass make the KPI suite faster? A probe, not the library.

    python benchmarks/probe_kpi_one_pass.py LOG current    # the suite as compute_kpis runs it
    python benchmarks/probe_kpi_one_pass.py LOG cube       # the probe

``current`` materialises ``texts``, ``rephrase_candidates`` and the 30-column ``turn_facts``,
then runs every KPI query over it. ``cube`` materialises the first two only and computes the
per-slice counts and rates in one ``GROUPING SETS`` query over ``turn_facts`` as a CTE (never
written), and the latency percentiles and distinct users, sessions and days from ``turns``
directly (they need no rephrase detection). It leaves out ``friction_examples`` (20 rows in
ts order: another pass) and the last formatting steps, so it is a lower bound on the time a
one-pass design would take. Run each in a fresh process, alternating, on a quiet machine.
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
        timed(stage, lambda stage=stage: engine.materialize(stage, kpi_sql(stage, options)))
    if variant == "current":
        timed(
            "turn_facts", lambda: engine.materialize("turn_facts", kpi_sql("turn_facts", options))
        )
        timed("kpis", lambda: [engine.sql(kpi_sql(name, options)) for name in KPI_TABLES])
    else:
        timed("cube", lambda: engine.sql(cube_sql(options)))
        timed("from_turns", lambda: [engine.sql(q) for q in FROM_TURNS])
    print(variant, round(time.perf_counter() - started, 2), steps)
    engine.close()


if __name__ == "__main__":
    main()
