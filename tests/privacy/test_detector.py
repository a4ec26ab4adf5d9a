"""The personal-word detector: trained on a slice of HWU64, it meets its held-out target,
survives save/load, and plugs into the redactor through the config."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from voxloop.data import load_corpus, write_jsonl
from voxloop.errors import ConfigError
from voxloop.privacy import DEFAULT_SLOT_TYPES, Redactor, load_redaction_config
from voxloop.privacy.detector import PersonalDetector
from voxloop.privacy.evaluate import redaction_recall
from voxloop.schema import Parse

SALT = {"VOXLOOP_PRIVACY_SALT": "a-secret-salt-of-some-length"}


@pytest.fixture(scope="module")
def trained(datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    train = list(load_corpus(f"hwu64:{datasets / 'hwu64'}").split("train"))
    random.Random(0).shuffle(train)
    detector = PersonalDetector(DEFAULT_SLOT_TYPES, target_recall=0.9)
    detector.fit(train[:800], train[800:1300])
    assert detector.heldout_recall_ is not None and detector.heldout_recall_ >= 0.9
    out = tmp_path_factory.mktemp("detector")
    detector.save(out)
    return out


def test_save_load_gives_the_same_regions(trained: Path) -> None:
    detector = PersonalDetector.load(trained)
    text = "send an email to my sister jessica about dinner in london"
    regions = detector.regions(text)
    assert regions == PersonalDetector.load(trained).regions(text)
    assert any("jessica" in text[s:e] for s, e, _ in regions)
    assert all(0 <= s < e <= len(text) for s, e, _ in regions)


def test_a_batch_finds_what_one_text_at_a_time_finds(trained: Path) -> None:
    detector = PersonalDetector.load(trained)
    texts = ["send an email to my sister jessica", "", "call mom in paris", "   ", "set a timer"]
    assert detector.regions_many(texts) == [detector.regions(t) for t in texts]
    assert detector.regions_many([]) == []


def test_the_detector_raises_recall_over_slots_alone(trained: Path, datasets: Path) -> None:
    test = list(load_corpus(f"hwu64:{datasets / 'hwu64'}").split("test"))
    config = load_redaction_config(_config(trained.parent, trained.name), environ=SALT)
    none = [Parse(u.text, None, 0.0, (), ()) for u in test]  # a parser that found no slot
    without = redaction_recall(test, config, none)
    with_detector = redaction_recall(test, config, none, detector=Redactor(config).detector)
    assert without.recall() < 0.05 < 0.8 < with_detector.recall()
    assert with_detector.over_redaction < 0.35  # the price of recall (RESULTS.md)


def _config(folder: Path, detector: str) -> Path:
    path = folder / "redact.toml"
    path.write_text(f'detector = "{detector}"\n')
    return path


def test_a_missing_detector_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_redaction_config(_config(tmp_path, "nowhere"), environ=SALT)
    assert e.value.key == "detector"


def test_the_transformer_detector_finds_personal_words_and_survives_save_load(
    datasets: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    corpus = load_corpus(f"hwu64:{datasets / 'hwu64'}")
    train = list(corpus.split("train"))
    random.Random(0).shuffle(train)
    detector = PersonalDetector(
        DEFAULT_SLOT_TYPES, target_recall=0.9, encoder="transformer", epochs=2
    )
    detector.fit(train[:800], train[800:1100])
    detector.save(tmp_path / "detector")
    assert {p.name for p in (tmp_path / "detector").iterdir()} == {"detector.json", "encoder"}
    loaded = PersonalDetector.load(tmp_path / "detector")
    text = "send an email to my sister jessica about dinner in london"
    assert loaded.regions(text) == detector.regions(text)
    assert any("jessica" in text[s:e] for s, e, _ in loaded.regions(text))

    test = list(corpus.split("test"))
    config = load_redaction_config(_config(tmp_path, "detector"), environ=SALT)
    none = [Parse(u.text, None, 0.0, (), ()) for u in test]
    found = redaction_recall(test, config, none, detector=Redactor(config).detector)
    assert found.recall() > 0.8 and found.over_redaction < 0.35


def test_an_unknown_detector_encoder_is_refused() -> None:
    with pytest.raises(ConfigError, match="hashed, transformer") as e:
        PersonalDetector(DEFAULT_SLOT_TYPES, encoder="bert")  # type: ignore[arg-type]
    assert e.value.key == "encoder"


def test_the_command_line_trains_one_quietly(datasets: Path, tmp_path: Path) -> None:
    """``python -m voxloop.privacy.detector`` warned twice that runpy found the module
    imported already (by the package), and printed the recall with 16 digits."""
    train = list(load_corpus(f"hwu64:{datasets / 'hwu64'}").split("train"))
    random.Random(0).shuffle(train)
    write_jsonl(train[:800], tmp_path / "train.jsonl", split="train")
    done = subprocess.run(
        [sys.executable, "-m", "voxloop.privacy.detector", "--data",
         f"jsonl:{tmp_path / 'train.jsonl'}", "--out", str(tmp_path / "detector")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert re.fullmatch(r"saved \S+: threshold [\d.e-]+, held-out span recall [01]\.\d{3}\n",
                        done.stdout), done.stdout  # fmt: skip
