"""docs/serving.md keeps up with the code: every option of ``voxloop serve`` with its
default, every column of the turn log, every reason a refusal is counted under."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from voxloop.log.writer import TURN_SCHEMA
from voxloop.serve.command import add_arguments

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "serving.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    return DOC.partition(f"\n{title}\n")[2].partition("\n#")[0]


def _row(section: str, name: str) -> str:
    rows = [line for line in section.splitlines() if line.startswith(f"| `{name}")]
    rows += [line for line in section.splitlines() if f", `{name}`" in line.partition(" | ")[0]]
    assert rows, f"docs/serving.md has no row for {name}"
    return rows[0]


def _options() -> list[argparse.Action]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


@pytest.mark.parametrize("action", _options(), ids=lambda a: a.option_strings[0])
def test_every_serve_option_is_documented_with_its_default(action: argparse.Action) -> None:
    row = _row(_section("## Options"), action.option_strings[0])
    default = action.default
    if default is None or default is False or default == []:
        return  # "none" / "off": the meaning says what happens without it
    shown = {str(default)} | ({f"{default:g}"} if isinstance(default, float) else set())
    assert any(f"`{s}`" in row.split(" | ")[1] for s in shown), (row, default)


@pytest.mark.parametrize("column", TURN_SCHEMA.names)
def test_every_turn_log_column_is_documented(column: str) -> None:
    assert f"`{column}`" in _section("`turns`:"), column


def test_the_channels_and_every_rejected_reason_are_documented() -> None:
    channel = _row(_section("`turns`:"), "channel")
    for name in ("http", "rasa", "wyoming", "speech"):
        assert f"`{name}`" in channel
    code = "".join(p.read_text() for p in (ROOT / "src" / "voxloop" / "serve").glob("*.py"))
    reasons = set(re.findall(r'rejected\.inc\(.*?reason="(\w+)"', code))
    assert {"queue_full", "timeout", "log_backlog", "redaction_failed"} <= reasons
    metrics = _section("## Metrics")
    assert [r for r in sorted(reasons) if f"| `{r}` |" not in metrics] == []
