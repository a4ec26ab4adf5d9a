"""The turn log: durable Parquet files of every turn and feedback event."""

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
    "SCHEMA_VERSION",
    "TURN_SCHEMA",
    "LogWriter",
    "feedback_row",
    "read_log",
    "turn_row",
]
