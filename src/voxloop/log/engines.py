"""SQL engines over a turn log: DuckDB (embedded, the default) and Spark (``[spark]`` extra).

Both expose the same views (``turns``, ``feedback``, ``turns_with_feedback``, see
`voxloop.log.store`) and run the same KPI SQL files. The only dialect-specific SQL lives
here, in the views' derived columns:

=================  ==========================  ===========================================
column             DuckDB                      Spark SQL
=================  ==========================  ===========================================
``day``            ``CAST("date" AS DATE)``    ``CAST(`date` AS DATE)`` (the partition)
``ts_us``          ``epoch_us(ts)``            ``unix_micros(ts)``
``second_intent``  ``ranking[2].intent``       ``try_element_at(ranking, 2).intent``
=================  ==========================  ===========================================

(``second_intent`` is a column of the log since it was found to cost a fifth of
``turn_facts`` to read out of the list; the list is read only for older files without it.)

Files are read with DuckDB's ``read_parquet(..., hive_partitioning=true,
union_by_name=true)`` and Spark's ``mergeSchema``; both sessions run in UTC.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from voxloop.errors import ConfigError, VoxloopError
from voxloop.log.store import LogStore

__all__ = [
    "ENGINES",
    "QueryError",
    "DuckDBEngine",
    "Engine",
    "SparkEngine",
    "make_engine",
    "spark_session",
    "trigram_positions",
]

ENGINES = ("duckdb", "spark")
# Texts are compared on their first MAX_CHARS characters (padded with a space each side).
MAX_CHARS = 256


class Engine(Protocol):
    """What the KPI library needs of a SQL engine."""

    name: str
    store: LogStore

    def sql(self, query: str) -> pa.Table:
        """Run one query; the result as an Arrow table."""
        ...

    def materialize(self, name: str, query: str) -> None:
        """Compute ``query`` once and keep it as table ``name``."""
        ...

    def register(self, store: LogStore) -> None:
        """(Re)define the log views over ``store``."""
        ...

    def close(self) -> None: ...


def trigram_positions(max_chars: int = MAX_CHARS) -> pa.Table:
    """``(len, i)`` for every start position ``i`` (1-based) of a character trigram in a
    string of length ``len`` (3..max_chars): joining a text on ``len = LENGTH(text)``
    explodes it into its trigrams with an equi-join, in any SQL engine, with no UDF."""
    lengths, starts = [], []
    for length in range(3, max_chars + 1):
        for i in range(1, length - 1):
            lengths.append(length)
            starts.append(i)
    return pa.table({"len": pa.array(lengths, pa.int32()), "i": pa.array(starts, pa.int32())})


def _sql_file(name: str) -> str:
    return resources.files("voxloop.log").joinpath("kpi", f"{name}.sql").read_text("utf-8")


class _Dialect:
    """The few spellings that differ between engines."""

    name = "duckdb"

    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def ts_us(self, column: str) -> str:
        return f"epoch_us({column})"

    def second_intent(self, column: str) -> str:
        return f"{column}[2].intent"

    def type_name(self, t: pa.DataType) -> str:
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return "VARCHAR"
        if pa.types.is_timestamp(t):
            return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return f"{self.type_name(t.value_type)}[]"
        if pa.types.is_struct(t):
            fields = ", ".join(f"{self.quote(f.name)} {self.type_name(f.type)}" for f in t)
            return f"STRUCT({fields})"
        return _SCALAR[str(t)]


class _SparkDialect(_Dialect):
    name = "spark"

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    def ts_us(self, column: str) -> str:
        return f"unix_micros({column})"

    def second_intent(self, column: str) -> str:
        return f"try_element_at({column}, 2).intent"

    def type_name(self, t: pa.DataType) -> str:
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return "STRING"
        if pa.types.is_timestamp(t):
            return "TIMESTAMP" if t.tz else "TIMESTAMP_NTZ"
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return f"ARRAY<{self.type_name(t.value_type)}>"
        if pa.types.is_struct(t):
            fields = ", ".join(f"{self.quote(f.name)}: {self.type_name(f.type)}" for f in t)
            return f"STRUCT<{fields}>"
        return _SCALAR[str(t)]


_SCALAR = {
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "date32[day]": "DATE",
}


def _view_sql(
    dialect: _Dialect,
    columns: Mapping[str, pa.DataType],
    present: set[str],
    everywhere: set[str],
    source: str | None,
    *,
    derived: bool,
) -> str:
    """``SELECT`` every column (NULL when no file has it) plus the derived columns, from
    ``source`` (None: no files in range, an empty table of the same columns). With
    ``derived``, ``second_intent`` falls back to the ranking list where a file lacks it."""
    q = dialect.quote
    select = []
    for name, t in columns.items():
        value = q(name) if source is not None and name in present else None
        if derived and name == "second_intent" and name not in everywhere and source is not None:
            if "ranking" in present:
                older = dialect.second_intent(q("ranking"))
                value = older if value is None else f"COALESCE({value}, {older})"
        if value is None:
            value = f"CAST(NULL AS {dialect.type_name(t)})"
        select.append(f"{value} AS {q(name)}")
    select.append(f"CAST({q('date') if source else 'NULL'} AS DATE) AS day")
    if derived:
        select.append(f"{dialect.ts_us(q('ts'))} AS ts_us")
    body = ",\n  ".join(select)
    if source is None:
        return f"SELECT\n  {body}\nWHERE 1 = 0"
    return f"SELECT\n  {body}\nFROM {source}"


class DuckDBEngine:
    """DuckDB over a log (in memory; ``threads``/``memory_limit`` as DuckDB spells them)."""

    name = "duckdb"

    def __init__(
        self,
        store: LogStore,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        connection: Any = None,
    ) -> None:
        import duckdb

        self.dialect = _Dialect()
        self.connection = connection if connection is not None else duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        if threads:
            self.connection.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.connection.execute(f"SET memory_limit = '{_size(memory_limit)}'")
        self.connection.register("_trigram_positions", trigram_positions())
        self.store = store
        self.register(store)

    def _source(self, files: list[Path]) -> str | None:
        if not files:
            return None
        paths = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        return f"read_parquet([{paths}], hive_partitioning = true, union_by_name = true)"

    def register(self, store: LogStore) -> None:
        self.store = store
        for view, table, extra in (
            ("turns", "turns", 0),
            ("feedback", "feedback", 0),
            ("_feedback_for_turns", "feedback", 1),
        ):
            files = store.files(table, extra_days=extra)
            sql = _view_sql(
                self.dialect,
                store.columns(table),
                store.present(files),
                store.everywhere(files),
                self._source(files),
                derived=table == "turns",
            )
            self.connection.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {sql}")
        self.connection.execute(
            f"CREATE OR REPLACE TEMP VIEW turns_with_feedback AS {_sql_file('turns_with_feedback')}"
        )

    def sql(self, query: str) -> pa.Table:
        import duckdb

        try:
            result = self.connection.sql(query)
            if result is None:  # a statement, not a query
                return pa.table({})
            table: pa.Table = result.to_arrow_table()
            return table
        except duckdb.Error as e:
            raise _query_error(e) from None

    def materialize(self, name: str, query: str) -> None:
        self.connection.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")

    def close(self) -> None:
        self.connection.close()


class SparkEngine:
    """Spark SQL over a log: a local session by default (``master="local[2]"``), or
    ``spark://host:7077`` / ``yarn``; pass ``session`` to reuse a running one."""

    name = "spark"

    def __init__(
        self,
        store: LogStore,
        *,
        master: str | None = None,
        session: Any = None,
        config: Mapping[str, str] | None = None,
    ) -> None:
        self.dialect = _SparkDialect()
        self._owns_session = session is None
        self.session = session if session is not None else spark_session(master, config)
        positions = trigram_positions()
        frame = self.session.createDataFrame(
            list(
                zip(*(positions.column(c).to_pylist() for c in positions.column_names), strict=True)
            ),
            "len INT, i INT",
        )
        frame.createOrReplaceTempView("_trigram_positions")
        self._cached: dict[str, Any] = {}
        self.store = store
        self.register(store)

    def register(self, store: LogStore) -> None:
        self.store = store
        for view, table, extra in (
            ("turns", "turns", 0),
            ("feedback", "feedback", 0),
            ("_feedback_for_turns", "feedback", 1),
        ):
            files = store.files(table, extra_days=extra)
            source = None
            if files:
                raw = f"_{view}_files"
                (
                    self.session.read.option("mergeSchema", "true")
                    .option("basePath", str(store.root(table)))
                    .parquet(*(str(f) for f in files))
                    .createOrReplaceTempView(raw)
                )
                source = raw
            sql = _view_sql(
                self.dialect,
                store.columns(table),
                store.present(files),
                store.everywhere(files),
                source,
                derived=table == "turns",
            )
            self.session.sql(f"CREATE OR REPLACE TEMP VIEW {view} AS {sql}")
        self.session.sql(
            f"CREATE OR REPLACE TEMP VIEW turns_with_feedback AS {_sql_file('turns_with_feedback')}"
        )

    def sql(self, query: str) -> pa.Table:
        try:
            table: pa.Table = self.session.sql(query).toArrow()
        except Exception as e:  # pyspark raises its own AnalysisException family
            if type(e).__module__.startswith("pyspark"):
                raise _query_error(e) from None
            raise
        return table

    def materialize(self, name: str, query: str) -> None:
        old = self._cached.pop(name, None)
        if old is not None:
            old.unpersist()
        frame = self.session.sql(query).cache()
        frame.count()
        frame.createOrReplaceTempView(name)
        self._cached[name] = frame

    def close(self) -> None:
        for frame in self._cached.values():
            frame.unpersist()
        self._cached.clear()
        if self._owns_session:
            self.session.stop()


class QueryError(VoxloopError):
    """A query the engine refused (a user's SQL: unknown column, syntax error)."""


def _query_error(e: Exception) -> QueryError:
    message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return QueryError(f"query failed: {message}")


def _size(value: str) -> str:
    text = value.strip().upper().replace(" ", "")
    if not text or not text[0].isdigit() or not all(c.isalnum() or c == "." for c in text):
        raise ConfigError(f"{value!r} is not a memory size like 8GB", key="memory_limit")
    return text


def _spark_size(value: str) -> str:
    """``8GB`` (DuckDB's spelling) as Spark spells it: ``8g``."""
    text = _size(value).lower().removesuffix("b").removesuffix("i")
    return text if text[-1:].isalpha() else text + "m"


def spark_session(master: str | None = None, config: Mapping[str, str] | None = None) -> Any:
    """A Spark session for the log (UTC, small shuffles for one machine unless configured);
    ``master`` defaults to $VOXLOOP_SPARK_MASTER, else ``local[2]``."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "the Spark engine needs pyspark: pip install 'voxloop[spark]' (and Java 17, "
            "e.g. apt-get install openjdk-17-jre-headless)",
            key="engine",
        ) from None
    builder = (
        SparkSession.builder.appName("voxloop-kpi")
        .master(master or os.environ.get("VOXLOOP_SPARK_MASTER", "local[2]"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    for key, value in (config or {}).items():
        builder = builder.config(key, value)
    try:
        with warnings.catch_warnings():
            # pyspark's own import-time check (pyspark.testing.utils); voxloop hands Spark
            # Arrow tables, never pandas frames.
            warnings.filterwarnings(
                "ignore", "PySpark does not yet fully support pandas", FutureWarning
            )
            session = builder.getOrCreate()
    except Exception as e:  # no Java, bad master URL
        raise ConfigError(f"cannot start Spark ({str(e).strip()[:300]})", key="engine") from None
    _quiet_loggers(session)
    return session


# Loggers set to ERROR in the sessions of `spark_session`. WindowExec warns "No Partition
# Defined for Window operation!" at every window without PARTITION BY (~180 lines per
# `voxloop kpi`), but the KPI SQL's windows without one are small and meant to be one:
# `DENSE_RANK() OVER (ORDER BY text)` over the distinct texts (or trigrams) of the range,
# `SUM(COUNT(*)) OVER ()` over a few groups.
QUIET_LOGGERS = ("org.apache.spark.sql.execution.window.WindowExec",)


def _quiet_loggers(session: Any) -> None:
    """Set the log4j level of `QUIET_LOGGERS` to ERROR in ``session``'s JVM (other
    loggers keep theirs: real warnings and errors stay visible)."""
    try:
        jvm = session.sparkContext._jvm
        log4j = jvm.org.apache.logging.log4j
        for name in QUIET_LOGGERS:
            log4j.core.config.Configurator.setLevel(name, log4j.Level.ERROR)
    except Exception:  # no JVM here (Spark Connect) or another logging backend: only noise
        pass


def make_engine(
    store: LogStore,
    engine: str = "duckdb",
    *,
    master: str | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Engine:
    """An engine by name: ``duckdb`` (default) or ``spark``."""
    if engine == "duckdb":
        return DuckDBEngine(store, memory_limit=memory_limit, threads=threads)
    if engine == "spark":
        config = {"spark.driver.memory": _spark_size(memory_limit)} if memory_limit else None
        return SparkEngine(store, master=master, config=config)
    raise ConfigError(
        f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}", key="engine"
    )
