"""Corpus specs: FORMAT:PATH strings."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from voxloop.data.corpus import Corpus
from voxloop.data.spec import FORMATS, load_corpus, parse_spec
from voxloop.errors import DataError
from voxloop.schema import Utterance


@pytest.mark.parametrize(
    ("fmt", "folder", "split", "size"),
    [
        ("bio", "massive-pl-PL", "dev", 1_945),
        ("snips", "snips", "test", 700),
        ("atis", "atis", "test", 893),
        ("hwu64", "hwu64", "test", 1_076),
        ("slurp", "slurp", "dev", 2_033),
        ("massive", "massive/en-US.jsonl", "dev", 2_033),
    ],
)
def test_load_corpus_reads_each_format_and_keeps_the_spec(
    datasets: Path, fmt: str, folder: str, split: str, size: int
) -> None:
    spec = f"{fmt}:{datasets / folder}"
    corpus = load_corpus(spec)
    assert corpus.spec == spec
    assert len(corpus.split(split)) == size


def test_load_corpus_passes_locales_to_massive(datasets: Path) -> None:
    corpus = load_corpus(f"massive:{datasets / 'massive'}", locales=["ko-KR"])
    assert {u.locale for u in corpus.split("test")} == {"ko-KR"}
    assert len(corpus.split("test")) == 2_974


def test_load_corpus_reads_voxloop_jsonl(tmp_path: Path) -> None:
    (tmp_path / "u.jsonl").write_text('{"text": "hi", "intent": "greet"}\n', encoding="utf-8")
    corpus = load_corpus(f"jsonl:{tmp_path / 'u.jsonl'}")
    assert corpus.split("all") == [Utterance(text="hi", intent="greet")]


def test_load_corpus_calls_the_home_assistant_reader_for_hass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, bool]] = []

    def read_hass(lang: str, *, strict: bool = True) -> Corpus:
        calls.append((lang, strict))
        return Corpus(spec=f"hass:{lang}", splits={"all": [Utterance(text="turn on the light")]})

    fake = types.ModuleType("voxloop.data.hass")
    fake.read_hass = read_hass  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "voxloop.data.hass", fake)
    corpus = load_corpus("hass:de", strict=False)
    assert calls == [("de", False)]
    assert corpus.spec == "hass:de"


def test_parse_spec_splits_format_and_path() -> None:
    assert parse_spec("massive:/data/massive") == ("massive", "/data/massive")
    assert parse_spec("JSONL:c:/x.jsonl") == ("jsonl", "c:/x.jsonl")


def test_a_spec_without_a_colon_lists_the_formats() -> None:
    with pytest.raises(DataError) as caught:
        load_corpus("snips")
    assert "is not FORMAT:PATH" in str(caught.value)
    assert all(fmt in str(caught.value) for fmt in FORMATS)


def test_an_unknown_format_lists_the_formats() -> None:
    with pytest.raises(DataError, match=r"unknown corpus format 'csv' in 'csv:x' \(formats: bio,"):
        load_corpus("csv:x")


@pytest.mark.parametrize(("spec", "what"), [("bio:", "path"), ("hass: ", "language")])
def test_a_spec_without_a_path_says_so(spec: str, what: str) -> None:
    with pytest.raises(DataError, match=f"names no {what} after"):
        load_corpus(spec)


@pytest.mark.parametrize("fmt", ["bio", "hwu64", "slurp", "massive", "jsonl"])
def test_a_missing_path_is_named(tmp_path: Path, fmt: str) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=f"{missing}: {fmt} corpus path does not exist"):
        load_corpus(f"{fmt}:{missing}")


def test_locales_are_an_error_for_any_format_but_massive(datasets: Path) -> None:
    with pytest.raises(DataError, match="locales apply only to massive corpora, not 'snips'"):
        load_corpus(f"snips:{datasets / 'snips'}", locales=["en-US"])
