"""The `voxloop` command as a user meets it: one call per command, one line per mistake."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from voxloop.cli import main
from voxloop.data import load_corpus, write_jsonl


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Path:
    corpus = load_corpus(f"snips:{datasets / 'snips'}")
    path = tmp_path_factory.mktemp("data") / "snips-small.jsonl"
    write_jsonl(corpus.split("train")[:1500], path, split="train")
    with path.open("a", encoding="utf-8") as f:
        extra = path.with_suffix(".test.jsonl")
        write_jsonl(corpus.split("test")[:200], extra, split="test")
        f.write(extra.read_text(encoding="utf-8"))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path) -> Path:
    out = tmp_path_factory.mktemp("models") / "m1"
    assert (
        main(
            [
                "train",
                "--data",
                f"jsonl:{small_corpus}",
                "--out",
                str(out),
                "--sentence-encoder",
                "none",
            ]
        )
        == 0
    )
    return out


def test_train_writes_a_model_with_a_manifest(model: Path) -> None:
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["version"] == "m1"
    assert manifest["training_data"]["n"] == 1500


def test_train_transformer_stops_after_the_epochs_asked_for(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "transformer"
    data = f"jsonl:{small_corpus}"
    args = ["train", "--model-type", "transformer", "--epochs", "1", "--data", data]
    assert main([*args, "--out", str(out), "--dev-split", ""]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_type"] == "transformer"
    assert len(manifest["history"]) == 1
    assert manifest["hyperparameters"]["max_epochs"] == 1
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--data", data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["intent_accuracy"] > 0.5


def test_eval_json_has_the_headline_keys(
    model: Path, small_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--model", str(model), "--data", f"jsonl:{small_corpus}", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 200
    for key in ("intent_accuracy", "slot_f1", "exact_match"):
        assert 0.5 < result[key] <= 1.0


def test_eval_warns_when_the_data_has_intents_the_model_does_not_know(
    model: Path, datasets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--model", str(model), "--data", f"atis:{datasets / 'atis'}"]) == 0
    err = capsys.readouterr().err
    assert "warning: 893 of 893 utterances have intents the model does not know" in err
    assert "atis_flight" in err


def test_eval_warns_when_the_data_is_in_a_locale_the_model_does_not_serve(
    model: Path, datasets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = f"massive:{datasets / 'massive'}"
    assert main(["eval", "--model", str(model), "--data", data, "--locales", "de-DE"]) == 0
    err = capsys.readouterr().err
    assert "utterances are in locales the model does not serve (de-DE; it serves en-US)" in err


def test_eval_prints_a_readable_table(
    model: Path, small_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--model", str(model), "--data", f"jsonl:{small_corpus}"]) == 0
    out = capsys.readouterr().out
    assert "intent accuracy" in out and "slot F1" in out


def test_parse_prints_intent_and_slots(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--model", str(model), "--json", "play the latest album by madonna"]) == 0
    parse = json.loads(capsys.readouterr().out)
    assert parse["intent"] == "PlayMusic"
    text = parse["text"]
    assert any(
        s["label"] == "artist" and text[s["start"] : s["end"]] == "madonna" for s in parse["slots"]
    )


def test_parse_refuses_an_empty_text_as_the_server_does(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["parse", "--model", str(model), "play jazz", "  "]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "voxloop: error: text 2 is empty or only whitespace"


def test_train_refuses_refit_when_the_corpus_has_a_dev_split(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("torch")
    argv = TRANSFORMER
    assert main([*argv, "--refit"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "voxloop: error: --refit: trains again on all of train when there is no dev split to "
        "choose on; this training has one"
    )


def test_train_refuses_an_out_folder_holding_other_files_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["train", "--data", "hass:en", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "exists and is not a voxloop model directory" in err and "training on" not in err
    assert [f.name for f in tmp_path.iterdir()] == ["notes.txt"]


def test_parse_names_a_text_that_is_not_utf8(model: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voxloop", "parse", "--model", str(model)],
        input=b"play jazz\nplay \xff madonna\n",
        capture_output=True,
    )
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.decode().strip() == (
        "voxloop: error: text 2: not UTF-8 (byte 0xff at character 6)"
    )


def test_output_cut_short_by_its_reader_ends_quietly(model: Path) -> None:
    # `voxloop parse ... | head -1`: the reader closes the pipe after one line.
    with subprocess.Popen(
        [sys.executable, "-m", "voxloop", "parse", "--model", str(model)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"play some jazz\n" * 20000)
        process.stdin.close()
        assert process.stdout.readline().startswith(b"play some jazz")
        process.stdout.close()
        assert process.wait(timeout=120) == 141
        assert process.stderr is not None and b"Traceback" not in process.stderr.read()


def test_data_check_lists_every_problem_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"text": "turn on the light", "intent": "on"}\n'
        "{not json\n"
        '{"text": "", "intent": "on"}\n'
        '{"text": "hi", "intent": "greet", "slots": [{"start": 0, "end": 9, "label": "x"}]}\n',
        encoding="utf-8",
    )
    assert main(["data", "check", f"jsonl:{bad}"]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:2" in out and f"{bad}:3" in out and f"{bad}:4" in out
    assert out.count("3 problems") == 1


def test_data_check_notes_duplicate_ids_and_texts_in_several_splits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "dup.jsonl"
    data.write_text(
        '{"id": "a1", "text": "turn on the light", "intent": "on", "split": "train"}\n'
        '{"id": "a1", "text": "Turn on the  light", "intent": "on", "split": "test"}\n',
        encoding="utf-8",
    )
    assert main(["data", "check", f"jsonl:{data}"]) == 0  # worth knowing, not malformed
    out = capsys.readouterr().out
    assert "note: ids used more than once: 1; texts in more than one split: 1" in out


def test_data_stats_describes_a_corpus(datasets: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "stats", f"atis:{datasets / 'atis'}", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert json.dumps(stats).count("4478") >= 1


# `voxloop train` of each model type, with an output folder that does not exist.
TRAIN = ["train", "--data", "hass:en", "--out", "/nonexistent/out"]
TRANSFORMER = [*TRAIN, "--model-type", "transformer"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "--model", "/nonexistent/model", "--data", "hass:en"], "no such model directory"),
        (["train", "--data", "nosuchformat:x", "--out", "/nonexistent/out"], "format"),
        (["data", "check", "bio:/nonexistent/dir"], "/nonexistent/dir"),
        (["data", "check", "hass:en", "--limit", "0"], "--limit: must be at least 1, got 0"),
        (["kpi", "--log", "/nonexistent", "--top", "0"], "--top: must be a whole number >= 1"),
        (
            ["log", "generate", "--out", "/nonexistent/log", "--model", "/nonexistent/m"]
            + ["--data", "hass:en", "--threshold", "3"],
            "--threshold: must be a confidence in [0, 1], got 3.0",
        ),
        (
            ["ope", "--log", "/nonexistent", "--policy", "/nonexistent", "--default-reward", "7"],
            "--default-reward: must be in [0, 1], got 7.0",
        ),
        (["parse", "--model", "/nonexistent/model", "hi"], "no such model directory"),
        (["train", "--data", "hass:en", "--out", "/proc/voxloop"], "cannot write /proc/voxloop"),
        (
            [*TRAIN, "--teacher", "m", "--epochs", "2"],
            "--epochs, --teacher apply only to --model-type transformer",
        ),
        (
            [*TRANSFORMER, "--sentence-encoder", "use"],
            "--sentence-encoder applies only to --model-type classical",
        ),
        ([*TRAIN, "--crf"], "--crf applies only to --model-type transformer"),
        (
            [*TRANSFORMER, "--crf", "--teacher", "m"],
            "--crf: a CRF slot head cannot be distilled from teachers",
        ),
        (
            [*TRANSFORMER, "--distill-weight", "0.3"],
            "--distill-weight: weighs the teachers' targets: give --teacher DIR",
        ),
        (
            [*TRANSFORMER, "--teacher", "m", "--distill-weight", "2"],
            "--distill-weight: must be between 0 and 1, not 2.0",
        ),
        (
            [*TRANSFORMER, "--substitute-slots", "-1"],
            "--substitute-slots: must be 0 or more, not -1",
        ),
        ([*TRANSFORMER, "--epochs", "0"], "--epochs: must be at least 1, not 0"),
        (
            [*TRANSFORMER, "--layers", "2", "--freeze-layers", "3"],
            "--freeze-layers: 3 frozen of 2 layers kept",
        ),
        ([*TRAIN, "--dev-split", "nope"], "--dev-split: no split 'nope' (the corpus has: "),
    ],
)
def test_user_mistakes_print_one_line_and_exit_1(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("voxloop: error:") and message in err[0]


def test_demo_runs_the_whole_loop_on_the_embedded_corpus(tmp_path: Path) -> None:
    stale = tmp_path / "log" / "turns" / "date=2026-10-01"  # a previous run's day
    stale.mkdir(parents=True)
    (stale / "part-0.parquet").write_bytes(b"an earlier run")
    result = subprocess.run(
        [sys.executable, "-m", "voxloop", "demo", "--workdir", str(tmp_path),
         "--users", "40", "--days", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in range(1, 7):
        assert f"[{step}/6]" in out
    assert "experiment nlu-v2:" in out and "experiment responses:" in out
    # every simulated turn reached the log through the real server
    simulated = int(
        re.search(r"([\d,]+) turns logged from ([\d,]+) simulated", out)[2].replace(",", "")
    )
    from voxloop.log.store import LogStore

    store = LogStore(tmp_path / "log")
    (row,) = store.sql(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT arm) AS arms, COUNT(action) AS actions FROM turns"
    ).to_pylist()
    assert row["n"] == simulated > 100 and row["arms"] == 4 and row["actions"] == row["n"]
    assert not stale.exists()  # replaced, not mixed into this run's log
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Experiment nlu-v2</h2>" in page and "Off-policy evaluation" in page
    assert (tmp_path / "retrain_candidates.jsonl").stat().st_size > 0
    assert (tmp_path / "policies" / "learned" / "bandit" / "policy.json").is_file()


def test_demo_refuses_a_workdir_holding_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "thesis.tex").write_text("mine")
    assert main(["demo", "--workdir", str(tmp_path), "--users", "5", "--days", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("voxloop: error: --workdir: ") and "thesis.tex" in err
    assert (tmp_path / "thesis.tex").read_text() == "mine"


def test_a_failing_demo_step_is_named_and_the_workdir_kept(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voxloop", "demo", "--workdir", str(tmp_path), "--lang", "xx"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "step 1 (training two model versions" in result.stderr
    assert tmp_path.is_dir()
