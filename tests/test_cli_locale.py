"""The command line in many locales: a MASSIVE folder filtered by locale, per-locale
evaluation, `parse --locale`, and the demo in German."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voxloop.cli import main

PER_LOCALE = {"train": 300, "dev": 60, "test": 100}


@pytest.fixture(scope="module")
def massive_dir(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Path:
    """A folder of official MASSIVE files, three locales, a slice of each partition."""
    folder = tmp_path_factory.mktemp("massive")
    for locale in ("de-DE", "ja-JP", "fr-FR"):
        kept, counts = [], dict.fromkeys(PER_LOCALE, 0)
        with open(datasets / "massive" / f"{locale}.jsonl", encoding="utf-8") as f:
            for line in f:
                partition = json.loads(line)["partition"]
                if counts[partition] < PER_LOCALE[partition]:
                    counts[partition] += 1
                    kept.append(line)
        (folder / f"{locale}.jsonl").write_text("".join(kept), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, massive_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("models") / "de-ja"
    argv = ["train", "--data", f"massive:{massive_dir}", "--locales", "de-DE,ja-JP"]
    assert main([*argv, "--out", str(out), "--sentence-encoder", "none"]) == 0
    return out


def test_a_folder_filtered_by_locale_trains_a_model_that_lists_them(model: Path) -> None:
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["locales"] == ["de-DE", "ja-JP"]
    assert manifest["default_locale"] in manifest["locales"]
    assert manifest["training_data"]["n"] == 600


def test_eval_json_has_per_locale_figures_beside_the_overall_ones(
    model: Path, massive_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data", f"massive:{massive_dir}", "--locales", "de-DE,ja-JP"]
    assert main(["eval", "--model", str(model), *data, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 200 and sorted(result["per_locale"]) == ["de-DE", "ja-JP"]
    for figures in (result, *result["per_locale"].values()):
        for key in ("intent_accuracy", "slot_f1", "slot_f1_paper", "exact_match"):
            assert 0.0 <= figures[key] <= 1.0
    assert result["per_locale"]["de-DE"]["n"] == 100
    # characters are the paper's words in Japanese: both conventions agree there
    ja = result["per_locale"]["ja-JP"]
    assert ja["slot_f1_paper"] == pytest.approx(ja["slot_f1"])


def test_eval_prints_a_per_locale_table(
    model: Path, massive_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data", f"massive:{massive_dir}", "--locales", "de-DE,ja-JP"]
    assert main(["eval", "--model", str(model), *data]) == 0
    out = capsys.readouterr().out
    table = out[out.index("per locale") :]
    assert "de-DE" in table and "ja-JP" in table
    assert "MASSIVE paper's convention" in out


def test_parse_answers_in_the_locale_asked(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--model", str(model), "--locale", "ja", "--json", "明日の天気は"]) == 0
    assert json.loads(capsys.readouterr().out)["locale"] == "ja-JP"
    assert main(["parse", "--model", str(model), "--json", "wie wird das wetter morgen"]) == 0
    manifest = json.loads((model / "manifest.json").read_text())
    assert json.loads(capsys.readouterr().out)["locale"] == manifest["default_locale"]


def test_parse_refuses_a_locale_the_model_does_not_serve(
    model: Path, massive_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["parse", "--model", str(model), "--locale", "fr-FR", "allume la lumière"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'fr-FR'" in err[0] and "de-DE, ja-JP" in err[0]


def test_an_unknown_locale_in_the_folder_is_one_line_naming_those_it_has(
    massive_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["data", "stats", f"massive:{massive_dir}", "--locales", "de-DE,xx-XX"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "xx-XX" in err and "de-DE, fr-FR, ja-JP" in err


def test_the_demo_runs_in_german(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voxloop", "demo", "--language", "de", "--workdir", str(tmp_path)]
        + ["--users", "20", "--days", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hass:de" in result.stdout and "held-out intent accuracy" in result.stdout
    for version in ("v1", "v2"):
        manifest = json.loads((tmp_path / "models" / version / "manifest.json").read_text())
        assert manifest["locales"] == ["de-DE"] and manifest["default_locale"] == "de-DE"
    from voxloop.log.store import LogStore

    (row,) = LogStore(tmp_path / "log").sql("SELECT DISTINCT locale FROM turns").to_pylist()
    assert row["locale"] == "de-DE"
