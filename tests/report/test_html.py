"""The HTML report: self-contained, and its charts render in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voxloop.errors import ConfigError
from voxloop.log.writer import LogWriter
from voxloop.report.html import write_report
from voxloop.schema import Feedback, IntentScore, Parse, Turn


def small_log(directory: Path) -> Path:
    start = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with LogWriter(directory) as w:
        for i in range(60):
            domain, intent = [("lights", "HassTurnOn"), ("weather", "Weather")][i % 2]
            recognized = i % 7 != 0
            text = f"{intent.lower()} please {i % 5}"
            w.append_turn(Turn(
                turn_id=f"t{i}", timestamp=start + timedelta(hours=9 * i), text=text,
                parse=Parse(text, intent if recognized else None, 0.9 if recognized else 0.2,
                            (IntentScore(intent, 0.9), IntentScore("Other", 0.05)), (),
                            domain=domain),
                model_version=f"v{i % 2}", user_id=f"u{i % 4}", latency_ms=3.0 + i % 11))
            if i % 9 == 0:
                w.append_feedback(Feedback(f"t{i}", start + timedelta(hours=9 * i), "barge_in"))
    return directory


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    page = write_report(small_log(tmp_path / "log"), tmp_path / "r.html").read_text()
    assert page.count('<svg class="chart"') == 4
    assert not re.search(r"(src|href)=\"https?:", page) and "<script" not in page


def test_a_directory_as_the_page_is_refused_before_the_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory; name the page, e.g. .*report.html"):
        write_report(tmp_path / "no-log-needed", tmp_path)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    page = write_report(small_log(tmp_path / "log"), tmp_path / "r.html")
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         page.resolve().as_uri()],
        capture_output=True, text=True, timeout=90, check=True,
    ).stdout
    points = [int(n) for n in re.findall(r'<svg class="chart" data-points="(\d+)"', dom)]
    assert len(points) == 4 and all(n > 0 for n in points)
    assert dom.count("<polyline") >= 4 and dom.count("<rect") >= 4
