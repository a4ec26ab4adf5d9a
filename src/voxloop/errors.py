"""One error family: every mistake a user can make raises a ``VoxloopError`` subclass.

The CLI turns these into one readable line and a non-zero exit code; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ConfigError", "DataError", "ModelFormatError", "VoxloopError", "option_names"]


class VoxloopError(Exception):
    """Base class of every error voxloop raises on purpose."""


class DataError(VoxloopError):
    """A corpus or input record is wrong; names the file, line and field where known."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
        if self.field is not None:
            where += f" [{self.field}]" if where else f"[{self.field}]"
        return f"{where}: {self.problem}" if where else self.problem


class ConfigError(VoxloopError):
    """A configuration value is wrong; names the key path."""

    def __init__(self, problem: str, *, key: str | None = None) -> None:
        self.problem = problem
        self.key = key
        super().__init__(f"{key}: {problem}" if key else problem)


@contextmanager
def option_names(options: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a `ConfigError` whose key is a parameter named in ``options`` under its
    command-line option (``{"top_k": "--top"}``): a command's user knows the options."""
    try:
        yield
    except ConfigError as e:
        if e.key is None or e.key not in options:
            raise
        raise ConfigError(e.problem, key=options[e.key]) from None


class ModelFormatError(VoxloopError):
    """A saved model directory is missing, damaged, or of a format this version cannot read."""
