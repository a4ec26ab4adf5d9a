"""What `voxloop data check` reports: corpus numbers and every problem."""

from __future__ import annotations

import json
from pathlib import Path

from voxloop.data.check import check_corpus, corpus_stats, format_problems, format_stats
from voxloop.data.corpus import Corpus
from voxloop.errors import DataError
from voxloop.schema import Span, Utterance


def small_corpus() -> Corpus:
    train = [
        Utterance("wake me at five", "alarm_set", (Span(11, 15, "time", "five"),), "alarm", id="1"),
        Utterance("Play  jazz", "play_music", (Span(6, 10, "genre", "jazz"),), "play", id="2"),
        Utterance("stop", "audio_mute", (), "audio", id="2"),
    ]
    test = [
        Utterance("play jazz", "play_radio", (), "play", id="3"),
        Utterance("stop", None, (), None, locale="de-DE", id="2"),
    ]
    return Corpus(spec="jsonl:x", splits={"train": train, "test": test})


def test_corpus_stats_counts_each_split_and_the_total() -> None:
    stats = corpus_stats(small_corpus())
    assert stats["splits"]["train"] == {
        "utterances": 3,
        "intents": 3,
        "unlabelled": 0,
        "slot_types": 2,
        "slots": 2,
        "domains": 3,
        "locales": ["en-US"],
        "mean_tokens": (4 + 2 + 1) / 3,
        "mean_chars": (15 + 10 + 4) / 3,
    }
    assert stats["total"]["utterances"] == 5
    assert stats["total"]["unlabelled"] == 1
    assert stats["total"]["locales"] == ["de-DE", "en-US"]
    assert stats["top_domains"] == [("play", 2), ("alarm", 1), ("audio", 1)]
    assert stats["top_intents"][:1] == [("alarm_set", 1)]


def test_corpus_stats_counts_repeated_ids_conflicting_texts_and_leakage() -> None:
    stats = corpus_stats(small_corpus())
    assert stats["duplicate_ids"] == 1  # "2" twice in en-US; de-DE's "2" is another locale
    assert stats["conflicting_texts"] == 1  # "play jazz": play_music and play_radio
    assert stats["texts_in_several_splits"] == 1  # "play jazz" in train and test
    assert stats["problems"] == 0


def test_corpus_stats_of_real_snips(datasets: Path) -> None:
    stats = corpus_stats(check_corpus(f"snips:{datasets / 'snips'}"), top=3)
    assert [s["utterances"] for s in stats["splits"].values()] == [13_084, 700, 700]
    assert stats["total"]["intents"] == 7
    assert stats["total"]["slot_types"] == 39
    assert len(stats["top_intents"]) == 3
    assert stats["problems"] == 0


def test_format_stats_shows_every_split_and_the_overlaps() -> None:
    text = format_stats(corpus_stats(small_corpus()))
    lines = text.splitlines()
    assert lines[0] == "corpus jsonl:x"
    assert lines[1].split()[:3] == ["split", "utterances", "intents"]
    assert lines[2].split()[:3] == ["train", "3", "3"]
    assert lines[4].split()[:2] == ["total", "5"]
    assert "top domains: play 2, alarm 1, audio 1" in text
    assert "texts with conflicting intents: 1" in text
    assert text.endswith("problems: 0")


def test_check_corpus_reports_every_problem_of_a_corpus(tmp_path: Path) -> None:
    file = tmp_path / "u.jsonl"
    rows = [{"text": "ok"}, {"text": ""}, {"text": "x", "intnet": "a"}, {"text": "fine"}, "oops"]
    file.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    corpus = check_corpus(f"jsonl:{file}")
    assert [u.text for u in corpus.split("all")] == ["ok", "fine"]
    assert [p.line for p in corpus.problems] == [2, 3, 5]
    assert corpus_stats(corpus)["problems"] == 3


def test_check_corpus_finds_no_problem_in_the_real_hwu64(datasets: Path) -> None:
    assert check_corpus(f"hwu64:{datasets / 'hwu64'}").problems == ()


def test_format_problems_lists_them_up_to_the_limit() -> None:
    problems = [DataError(f"bad {i}", file="u.jsonl", line=i) for i in range(1, 6)]
    assert format_problems(problems, limit=2).splitlines() == [
        "5 problems:",
        "  u.jsonl:1: bad 1",
        "  u.jsonl:2: bad 2",
        "  ... and 3 more",
    ]
    assert len(format_problems(problems, limit=None).splitlines()) == 6
    assert format_problems([]) == "no problems"
