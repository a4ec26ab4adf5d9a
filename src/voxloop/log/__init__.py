"""The turn log: durable Parquet files of every turn and feedback event, and SQL over them.

- `writer`: `LogWriter` appends turns and feedback to day-partitioned Parquet, durably.
- `store`: `LogStore` opens a log directory as the tables ``turns``, ``feedback`` and
  ``turns_with_feedback``.
- `engines`: the same SQL on DuckDB (default) or Spark.
- `kpi`: the KPI library (``kpi/*.sql``), defined once for both engines.
- `generate`: realistic simulated logs from real utterances through a real model.
"""

from voxloop.log.engines import DuckDBEngine, QueryError, SparkEngine, make_engine
from voxloop.log.generate import Behaviour, ModelArm, generate_log, generate_log_fast
from voxloop.log.kpi import (
    KPI_TABLES,
    KpiOptions,
    arm_users_sql,
    compute_kpis,
    format_kpis,
    kpis_to_json,
)
from voxloop.log.store import LogStore, open_log
from voxloop.log.writer import (
    FEEDBACK_SCHEMA,
    SCHEMA_VERSION,
    TURN_SCHEMA,
    LogWriter,
    feedback_row,
    read_log,
    turn_row,
)

__all__ = [
    "FEEDBACK_SCHEMA",
    "KPI_TABLES",
    "SCHEMA_VERSION",
    "TURN_SCHEMA",
    "Behaviour",
    "DuckDBEngine",
    "KpiOptions",
    "LogStore",
    "LogWriter",
    "ModelArm",
    "QueryError",
    "SparkEngine",
    "arm_users_sql",
    "compute_kpis",
    "feedback_row",
    "format_kpis",
    "generate_log",
    "generate_log_fast",
    "kpis_to_json",
    "make_engine",
    "open_log",
    "read_log",
    "turn_row",
]
