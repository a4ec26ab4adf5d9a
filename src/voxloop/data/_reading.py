"""Plumbing shared by the corpus readers: problem collection, text files, JSON lines.

Private: the readers' public surface is in their own modules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from voxloop.errors import DataError

__all__ = [
    "ProblemLog",
    "get_optional_str",
    "get_str",
    "iter_json_objects",
    "locale_in_name",
    "read_lines",
    "require_dir",
    "require_path",
]

_LOCALE = re.compile(r"(?<![A-Za-z])([a-z]{2,3}-[A-Z]{2})(?![A-Za-z])")


class ProblemLog:
    """Raise the first problem (``strict``) or collect every one of them."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self._problems: list[DataError] = []

    def add(self, error: DataError) -> None:
        """Raise ``error`` when strict, else remember it and let the reader go on."""
        if self.strict:
            raise error
        self._problems.append(error)

    @property
    def problems(self) -> tuple[DataError, ...]:
        return tuple(self._problems)


def require_path(path: str | Path, what: str = "corpus") -> Path:
    """``path`` as a ``Path``; a ``DataError`` naming it when it does not exist."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{what} path does not exist", file=p)
    return p


def require_dir(path: str | Path, what: str = "corpus") -> Path:
    """``path`` as a ``Path``; a ``DataError`` naming it unless it is a directory."""
    p = require_path(path, what)
    if not p.is_dir():
        raise DataError(f"{what} path is not a directory", file=p)
    return p


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, without line ends (a BOM and CRs are dropped).

    A final newline does not make an extra empty line. Missing or undecodable files raise
    a ``DataError`` naming the file (and the line of the first bad byte).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError("missing file", file=path) from None
    except OSError as e:
        raise DataError(f"cannot read file: {e.strerror}", file=path) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"not UTF-8 text ({e.reason})", file=path, line=line) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [s[:-1] if s.endswith("\r") else s for s in lines]


def iter_json_objects(path: Path, log: ProblemLog) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSON-lines file.

    Lines that are not JSON, or not a JSON object, go to ``log``.
    """
    for number, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            log.add(
                DataError(f"not valid JSON: {e.msg} (column {e.colno})", file=path, line=number)
            )
            continue
        if not isinstance(obj, dict):
            log.add(
                DataError(
                    f"expected a JSON object, got {type(obj).__name__}", file=path, line=number
                )
            )
            continue
        yield number, obj


def get_str(obj: Mapping[str, Any], key: str, *, file: Path, line: int) -> str:
    """``obj[key]``, which must be present and a non-blank string."""
    value = get_optional_str(obj, key, file=file, line=line)
    if value is None:
        problem = "missing field" if key not in obj else "null field"
        raise DataError(f"{problem} {key!r}", file=file, line=line, field=key)
    if not value.strip():
        raise DataError(f"{key!r} is empty", file=file, line=line, field=key)
    return value


def get_optional_str(obj: Mapping[str, Any], key: str, *, file: Path, line: int) -> str | None:
    """``obj[key]`` when it is a string, ``None`` when absent or null; else a ``DataError``."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise DataError(
        f"{key!r} must be a string, got {type(value).__name__}", file=file, line=line, field=key
    )


def locale_in_name(name: str) -> str | None:
    """A locale code such as ``pl-PL`` inside a file or folder name, if there is one."""
    match = _LOCALE.search(name)
    return match.group(1) if match else None
