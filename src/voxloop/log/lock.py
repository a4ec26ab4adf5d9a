"""One command at a time on what a log directory holds besides the server's own writes.

Commands that rewrite or delete log files (``log forget``, ``log retain``) or spend the
log's privacy budget (``kpi --dp-epsilon``) read, decide and write: two at once would each
decide on what the other is about to change (two deletions, each rewriting a file without
the other's removals; two DP queries, each finding budget left). `exclusive` makes them take
turns on an advisory lock, ``.voxloop.lock`` in the log directory (``flock``: released when
the process ends, however it ends). The server's log writer only adds new files and does
not take it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from voxloop.errors import DataError

__all__ = ["LOCK_FILE", "exclusive"]

LOCK_FILE = ".voxloop.lock"
_log = logging.getLogger(__name__)


@contextlib.contextmanager
def exclusive(directory: str | Path, what: str) -> Iterator[None]:
    """Hold the log's lock while the block runs (waiting, with a warning, while another
    command holds it)."""
    path = Path(directory) / LOCK_FILE
    try:
        handle = open(path, "a+b")  # noqa: SIM115 (closed below, after the lock)
    except OSError as e:
        raise DataError(f"cannot lock the log for {what} ({e.strerror or e})", file=path) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log.warning("%s: waiting for another command on this log to finish", directory)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
