"""The classical parser's own behaviour beyond the shared conformance suite."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxloop.data import load_corpus
from voxloop.nlu.classical import ClassicalParser
from voxloop.nlu.slot_tagger import bio_tags, spans_from_tags
from voxloop.nlu.tokenize import tokenize
from voxloop.schema import Span, Utterance


@given(st.lists(st.sampled_from(["O", "B-a", "I-a", "B-b", "I-b"]), min_size=1, max_size=12))
def test_bio_tags_and_spans_round_trip_through_character_offsets(tags: list[str]) -> None:
    text = " ".join(f"w{i}" for i in range(len(tags)))
    tokens = tokenize(text)
    spans = spans_from_tags(text, tokens, tags)
    assert spans_from_tags(text, tokens, bio_tags(tokens, spans)) == spans
    for s in spans:
        assert text[s.start : s.end] == s.value


def test_an_orphan_inside_tag_opens_a_span_as_conlleval_does() -> None:
    text = "fly to new york"
    spans = spans_from_tags(text, tokenize(text), ["O", "O", "I-city", "I-city"])
    assert spans == (Span(7, 15, "city", "new york"),)


def test_a_span_confidence_never_passes_one() -> None:
    # CRFsuite gave 1.0000000000000007 for "road trip" in a SNIPS parse.
    text = "my road trip playlist"
    tags = ["O", "B-playlist", "I-playlist", "O"]
    (span,) = spans_from_tags(text, tokenize(text), tags, [1.0, 1.0000000000000007, 0.98, 1.0])
    assert span.confidence == 0.98
    (span,) = spans_from_tags(text, tokenize(text), tags, [1.0, 1.0000000000000007, 1.0, 1.0])
    assert span.confidence == 1.0


def test_manifest_records_what_was_trained_and_chosen(tmp_path: Path) -> None:
    corpus = load_corpus("hass:en")
    parser = ClassicalParser(sentence_encoder="none").fit(corpus.split("train")[::6])
    parser.save(tmp_path / "m", {"training_data": {"spec": "hass:en"}})
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["model_type"] == "classical" and manifest["format_version"] == 1
    assert manifest["locales"] == ["en-US"]
    assert "HassTurnOn" in manifest["intents"] and "area" in manifest["slot_labels"]
    assert manifest["domains"]["HassTurnOn"] == "devices"
    assert manifest["selected"]["sentence_encoder"] == "none"
    assert manifest["training_data"] == {"spec": "hass:en"}
    (parse,) = parser.parse(["turn on the kitchen light"])
    assert parse.domain is not None and parse.locale == "en-US"


def test_the_sentence_encoder_is_used_when_asked(datasets: Path) -> None:
    corpus = load_corpus(f"hwu64:{datasets / 'hwu64'}")
    train = corpus.split("train")[::10]
    parser = ClassicalParser(sentence_encoder="use").fit(train)
    assert parser.intents_ is not None and parser.intents_.use_encoder_
    (parse,) = parser.parse(["wake me up at seven tomorrow"])
    assert parse.intent is not None and parse.intent.startswith("alarm")


def test_dev_split_chooses_between_with_and_without_the_encoder(datasets: Path) -> None:
    corpus = load_corpus(f"atis:{datasets / 'atis'}")
    parser = ClassicalParser(sentence_encoder="auto").fit(
        corpus.split("train")[:600], corpus.split("dev")[:200]
    )
    assert parser.intents_ is not None
    tried = {row["sentence_encoder"] for row in parser.intents_.selection_}
    assert tried == {False, True}
    best = max(parser.intents_.selection_, key=lambda row: row["accuracy"])["accuracy"]
    chosen = [
        r
        for r in parser.intents_.selection_
        if r["sentence_encoder"] == parser.intents_.use_encoder_
    ]
    assert chosen[0]["accuracy"] == best


def test_an_intent_too_rare_to_hold_out_does_not_break_calibration() -> None:
    common = [Utterance(f"turn on light number {i}", "on") for i in range(40)]
    common += [Utterance(f"turn off light number {i}", "off") for i in range(40)]
    common += [Utterance(f"what time is it in zone {i}", "time") for i in range(40)]
    rare = [
        Utterance(f"play some {genre}", f"music_{genre}")
        for genre in "jazz rock pop folk soul funk punk metal blues disco".split()
    ]
    parser = ClassicalParser(sentence_encoder="none").fit(common + rare)
    (parse,) = parser.parse(["turn on light number 7"])
    assert parse.intent == "on"
    assert parser.intents_ is not None and len(parser.intents_.classes_) == 13


def test_the_same_seed_trains_the_same_crf_whatever_trained_before(tmp_path: Path) -> None:
    # crfsuite shuffles with the C library's rand(): the first training moves its state,
    # which the second would inherit if the tagger did not seed it.
    train = load_corpus("hass:en").split("train")[:300]
    files = []
    for name in ("first", "second"):
        parser = ClassicalParser(sentence_encoder="none", crf_epochs=5, seed=3).fit(train)
        parser.save(tmp_path / name)
        files.append((tmp_path / name / "slots.crfsuite").read_bytes())
    assert files[0] == files[1]


@pytest.mark.parametrize(
    "name, damage, message",
    [
        ("slots.crfsuite", lambda b: b[:1000], "truncated or not a CRFsuite file"),
        ("slots.crfsuite", lambda b: b[:600] + bytes([b[600] ^ 0xFF]) + b[601:], "SHA-256"),
        ("intents.npz", lambda b: b[: len(b) // 2], "unreadable intent classifier"),
    ],
)
def test_a_damaged_model_file_is_refused_before_it_can_crash_the_process(
    name: str, damage: Callable[[bytes], bytes], message: str, tmp_path: Path
) -> None:
    # CRFsuite reads its file unchecked: a truncated one used to kill the process (SIGSEGV),
    # a server loading it through /admin/models with it. Run in a child process so that a
    # crash fails this test instead of ending the test run.
    train = load_corpus("hass:en").split("train")[:200]
    ClassicalParser(sentence_encoder="none", crf_epochs=3).fit(train).save(tmp_path / "m")
    file = tmp_path / "m" / name
    file.write_bytes(damage(file.read_bytes()))
    code = (
        "import sys\n"
        "from voxloop.errors import ModelFormatError\n"
        "from voxloop.nlu.base import load_parser\n"
        "try:\n"
        f"    load_parser({str(tmp_path / 'm')!r}).parse(['turn on the light'])\n"
        "except ModelFormatError as e:\n"
        "    print(e)\n"
        "    sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 3, result.stderr[-2000:]
    assert str(file.parent) in result.stdout and message in result.stdout
