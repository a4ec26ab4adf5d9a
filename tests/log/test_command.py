"""The analytics commands as a user meets them: ``voxloop log generate``, ``kpi``, ``log sql``
and ``report`` through `voxloop.cli.main`, on a small generated log; one line per mistake."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from voxloop.cli import main
from voxloop.data import load_corpus, write_jsonl
from voxloop.log.writer import LogWriter
from voxloop.schema import IntentScore, Parse, Turn


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Path:
    """``voxloop log generate`` (fast mode): two days of a real model on 300 SLURP test
    utterances (the model is trained on SLURP dev, small settings)."""
    from voxloop.nlu.classical import ClassicalParser

    corpus = load_corpus(f"slurp:{datasets / 'slurp'}")
    root = tmp_path_factory.mktemp("cli-log")
    model = ClassicalParser(sentence_encoder="none", crf_epochs=2, gazetteer_folds=2)
    model.fit(corpus.split("dev")).save(root / "model")
    write_jsonl(corpus.split("test")[:300], root / "test.jsonl", split="test")
    out = root / "log"
    args = ["log", "generate", "--out", str(out), "--model", str(root / "model"),
            "--data", f"jsonl:{root / 'test.jsonl'}", "--turns", "4000", "--days", "2",
            "--threshold", "0.3", "--start", "2026-11-20"]  # fmt: skip
    assert main(args) == 0
    return out


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_log_generate_reports_what_it_wrote(log: Path) -> None:
    days = sorted(p.name for p in (log / "turns").iterdir())
    assert days == ["date=2026-11-20", "date=2026-11-21"]
    assert list((log / "feedback").glob("date=*/part-*.parquet"))


def test_log_generate_simulated_users_mode(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, data = log.parent / "model", log.parent / "test.jsonl"
    code, out, _ = run(capsys, "log", "generate", "--out", str(tmp_path), "--model", str(model),
                       "--data", f"jsonl:{data}", "--users", "15", "--days", "1")  # fmt: skip
    assert code == 0
    pattern = r"wrote ([\d,]+) turns and ([\d,]+) feedback events of (\d+) users? over 1 day "
    match = re.match(pattern, out)
    assert match and int(match.group(1).replace(",", "")) > 0
    # the users who spoke (the log's), not the 15 simulated
    spoke = pq.read_table(tmp_path / "turns", columns=["user_id"]).column(0).unique()
    assert int(match.group(3)) == len(spoke) <= 15


def test_log_generate_names_the_model_as_serve_does(log: Path) -> None:
    """A model whose manifest has no version is named after its folder, as `voxloop serve`
    names it (not "model-0")."""
    versions = pq.read_table(log / "turns", columns=["model_version"]).column(0).unique()
    assert versions.to_pylist() == ["model"]


def test_log_generate_refuses_two_models_of_one_name(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = log.parent / "model"
    shutil.copytree(model, tmp_path / "b" / "model")
    code, out, err = run(capsys, "log", "generate", "--out", str(tmp_path / "log"), "--model",
                         str(model), "--model", str(tmp_path / "b" / "model"), "--data",
                         f"jsonl:{log.parent / 'test.jsonl'}")  # fmt: skip
    assert code == 1 and out == ""
    assert err.startswith("voxloop: error: model: both models are named 'model'"), err
    assert not (tmp_path / "log").exists()


def test_log_generate_warns_of_intents_the_model_does_not_know(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = log.parent / "model"
    known = load_corpus(f"jsonl:{log.parent / 'test.jsonl'}").split("test")[:20]
    data = [replace(u, intent="order_pizza") if i % 4 == 0 else u for i, u in enumerate(known)]
    write_jsonl(data, tmp_path / "data.jsonl", split="test")
    code, out, err = run(capsys, "log", "generate", "--out", str(tmp_path / "log"), "--model",
                         str(model), "--data", f"jsonl:{tmp_path / 'data.jsonl'}", "--users",
                         "3", "--days", "1")  # fmt: skip
    assert code == 0 and out.startswith("wrote ")
    assert err == (
        f"voxloop: warning: {model}: 5 of 20 utterances have intents the model does not know "
        "(order_pizza); its simulated users are misunderstood on them\n"
    )
    code, out, err = run(capsys, "log", "generate", "--out", str(tmp_path / "log2"), "--model",
                         str(model), "--data", f"jsonl:{log.parent / 'test.jsonl'}", "--users",
                         "3", "--days", "1")  # fmt: skip
    assert code == 0 and err == ""


def test_kpi_json_agrees_with_log_sql(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "kpi", "--log", str(log), "--json", "--by", "domain,model_version")
    assert code == 0
    kpis = json.loads(out)
    query = "SELECT COUNT(*) AS n, COUNT(DISTINCT user_id) AS users FROM turns"
    code, out, _ = run(capsys, "log", "sql", "--log", str(log), "--json", query)
    assert code == 0
    (counts,) = json.loads(out)
    (summary,) = kpis["summary"]
    assert summary["turns"] == counts["n"] > 3000 and summary["users"] == counts["users"]
    assert sum(r["turns"] for r in kpis["by_slice"]) == counts["n"]
    assert {"domain", "model_version", "defect_rate"} <= set(kpis["by_slice"][0])
    assert kpis["log"] == str(log) and kpis["engine"] == "duckdb"


def test_kpi_text_and_a_day_range(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "kpi", "--log", str(log), "--since", "2026-11-21", "--json")
    assert code == 0
    assert {r["day"] for r in json.loads(out)["daily"]} == {"2026-11-21"}
    code, out, _ = run(capsys, "kpi", "--log", str(log), "--rephrase-quick", "0")
    assert code == 0
    assert "== by_slice ==" in out and "defect_rate" in out and "== friction_examples ==" in out


def test_kpi_over_an_empty_range_says_so(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "kpi", "--log", str(log), "--since", "2027-01-01", "--json")
    assert code == 0
    assert err == f"voxloop: warning: no turns in {log} from 2027-01-01 to the end\n"
    assert json.loads(out)["summary"][0]["defects"] == 0  # not null
    code, out, _ = run(capsys, "kpi", "--log", str(log), "--since", "2027-01-01")
    assert "(no rows)" in out and "(none)" not in out  # "(none)" labels NULL values


def test_log_sql_prints_a_table(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    query = "SELECT day, COUNT(*) AS turns FROM turns GROUP BY day ORDER BY day"
    code, out, _ = run(capsys, "log", "sql", "--log", str(log), query)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["day", "turns"] and lines[2].startswith("2026-11-20")
    assert len(lines) == 4
    # a SUM of integers (a DECIMAL in DuckDB) prints as an integer, not 1124.0
    query = "SELECT SUM(CASE WHEN intent IS NULL THEN 1 ELSE 0 END) AS declined FROM turns"
    code, out, _ = run(capsys, "log", "sql", "--log", str(log), query, "--json")
    (row,) = json.loads(out)
    assert isinstance(row["declined"], int) and row["declined"] > 0
    code, out, _ = run(capsys, "log", "sql", "--log", str(log), query)
    assert out.splitlines()[2] == f"{row['declined']:,}"


def test_report_writes_one_page_with_charts(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    code, printed, _ = run(capsys, "report", "--log", str(log), "--out", str(out))
    assert code == 0 and printed.strip() == f"wrote {out}"
    page = out.read_text(encoding="utf-8")
    assert page.count('<svg class="chart"') == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["log", "sql", "SELEC oops FROM turns"], "query failed: Parser Error"),
        (["log", "sql", "SELECT no_such_column FROM turns"], "no_such_column"),
        (["kpi", "--by", "text"], "cannot slice by 'text'"),
        (["kpi", "--since", "yesterday"], "'yesterday' is not a day"),
        (["kpi", "--since", "2026-11-22", "--until", "2026-11-20"], "is after until"),
        (["kpi", "--rephrase-similarity", "2"], "--rephrase-similarity: must be a number in"),
    ],
    ids=["bad-sql", "unknown-column", "bad-by", "bad-day", "empty-range", "bad-threshold"],
)
def test_mistakes_get_one_clear_line(
    log: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    where = args.index("sql") + 1 if "sql" in args else 1
    code, out, err = run(capsys, *args[:where], "--log", str(log), *args[where:])
    assert code == 1 and out == ""
    assert err.startswith("voxloop: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_missing_log_directory_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    commands = (["kpi"], ["log", "sql"], ["report"])
    rest = ([], ["SELECT 1"], ["--out", str(tmp_path / "r")])
    for command, more in zip(commands, rest, strict=True):
        code, _, err = run(capsys, *command, "--log", str(missing), *more)
        assert code == 1 and "no such log directory" in err and str(missing) in err, err
    assert not (tmp_path / "r").exists()


def test_a_file_that_is_not_a_turn_log_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "turns" / "date=2026-11-20"
    folder.mkdir(parents=True)
    stray = folder / "part-0.parquet"
    pq.write_table(pa.table({"city": ["Lisbon"], "population": [545_000]}), stray)
    code, _, err = run(capsys, "kpi", "--log", str(tmp_path))
    assert code == 1 and str(stray) in err and "no column turn_id" in err, err
    (folder / "part-0.parquet").write_text("turn_id,text\nt1,hello\n", encoding="utf-8")
    code, _, err = run(capsys, "log", "sql", "--log", str(tmp_path), "SELECT * FROM turns")
    assert code == 1 and str(stray) in err and "not a Parquet file" in err, err


def small_log(directory: Path, turns: int = 3) -> Path:
    """``turns`` declined turns of distinct texts and users, without training a model."""
    with LogWriter(directory) as writer:
        for i in range(turns):
            parse = Parse(f"lights {i} on", None, 0.2, (IntentScore("on", 0.2),), ())
            when = datetime(2026, 11, 20, 9, tzinfo=UTC) + timedelta(seconds=40 * i)
            writer.append_turn(Turn(f"t{i}", when, parse.text, parse, "v1", user_id=f"u{i}"))
    return directory


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0", "SELECT * FROM turns"], "--limit: must be at least 1, got 0"),
        (["--limit", "-3", "SELECT * FROM turns"], "--limit: must be at least 1, got -3"),
        ([""], "query: is empty"),
        (["  \n"], "query: is empty"),
    ],
    ids=["limit-0", "limit-negative", "empty", "blank"],
)
def test_log_sql_refuses_a_limit_below_one_and_an_empty_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "log", "sql", "--log", str(small_log(tmp_path)), *args)
    assert code == 1 and out == ""
    assert err.startswith(f"voxloop: error: {message}") and len(err.splitlines()) == 1, err


def test_log_generate_names_a_bad_start_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("2026-02-30", "26-11-02"):
        code, out, err = run(capsys, "log", "generate", "--out", str(tmp_path / "log"),
                             "--model", str(tmp_path / "model"), "--data",
                             f"jsonl:{tmp_path / 'x.jsonl'}", "--start", bad)  # fmt: skip
        assert code == 1 and out == ""
        assert err == f"voxloop: error: --start: {bad!r} is not a day (YYYY-MM-DD)\n"
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["log", "sql", "--limit", "100000", "SELECT range AS n FROM range(100000)"],
        ["log", "sql", "--json", "SELECT range AS n FROM range(100000)"],
        ["kpi", "--json", "--top", "100000"],  # 2,000 failing texts: more than a pipe holds
    ],
    ids=["sql", "sql-json", "kpi"],
)
def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path, args: list[str]) -> None:
    """``voxloop ... | head -1``: no BrokenPipeError traceback when the reader goes."""
    where = args.index("sql") + 1 if "sql" in args else 1
    log = small_log(tmp_path, turns=2000 if args[0] == "kpi" else 3)
    command = [*args[:where], "--log", str(log), *args[where:]]
    with subprocess.Popen([sys.executable, "-m", "voxloop", *command], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(1)  # the command has started writing
        proc.stdout.close()
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
    assert code == 141 and "Traceback" not in err and "BrokenPipe" not in err, err
