"""BIO folders (seq.in / seq.out / label): SNIPS, ATIS, MASSIVE pl-PL and users' files."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxloop.data.bio import read_bio
from voxloop.errors import DataError
from voxloop.schema import Span


def write_split(root: Path, split: str, seq_in: str, seq_out: str, label: str) -> Path:
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (("seq.in", seq_in), ("seq.out", seq_out), ("label", label)):
        (folder / name).write_text(content, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("folder", "sizes", "locale"),
    [
        ("snips", {"train": 13_084, "dev": 700, "test": 700}, "en-US"),
        ("atis", {"train": 4_478, "dev": 500, "test": 893}, "en-US"),
        ("massive-pl-PL", {"train": 10_641, "dev": 1_945, "test": 2_916}, "pl-PL"),
    ],
)
def test_bio_reads_the_real_corpora_whole_with_exact_spans(
    datasets: Path, folder: str, sizes: dict[str, int], locale: str
) -> None:
    corpus = read_bio(datasets / folder)  # strict: the real data has no malformed tag
    assert {name: len(rows) for name, rows in corpus.splits.items()} == sizes
    assert corpus.problems == ()
    for rows in corpus.splits.values():
        for u in rows:
            assert u.locale == locale and u.domain is None and u.intent
            assert u.text == u.text.strip() and "  " not in u.text
            for s in u.slots:
                assert u.text[s.start : s.end] == s.value


def test_bio_keeps_atis_multi_intent_labels_whole(datasets: Path) -> None:
    intents = {u.intent for u in read_bio(datasets / "atis").split("train")}
    assert "atis_flight#atis_airfare" in intents


def test_bio_joins_snips_tokens_with_single_spaces(datasets: Path) -> None:
    # snips/train/seq.in line 11 has a double space where a comma was removed.
    u = read_bio(datasets / "snips").split("train")[10]
    assert u.id == "train:11"
    assert u.text == "i need a forecast for jetmore massachusetts in 1 hour and 1 second from now"
    assert Span(22, 29, "city", "jetmore") in u.slots


def test_bio_builds_character_spans_from_tags(tmp_path: Path) -> None:
    write_split(tmp_path, "train", "play the blue album\n", "O B-album I-album O\n", "PlayMusic\n")
    (u,) = read_bio(tmp_path).split("train")
    assert u.text == "play the blue album"
    assert u.slots == (Span(5, 13, "album", "the blue"),)
    assert u.intent == "PlayMusic" and u.id == "train:1"


def test_bio_starts_a_new_span_at_each_b_tag(tmp_path: Path) -> None:
    write_split(tmp_path, "train", "a b c\n", "B-x B-x I-x\n", "i\n")
    (u,) = read_bio(tmp_path).split("train")
    assert u.slots == (Span(0, 1, "x", "a"), Span(2, 5, "x", "b c"))


def test_bio_tolerates_trailing_spaces_and_crlf(tmp_path: Path) -> None:
    write_split(tmp_path, "train", "wake me  up \r\n", "O O B-t  \r\n", "alarm \r\n")
    (u,) = read_bio(tmp_path).split("train")
    assert (u.text, u.intent, u.slots) == ("wake me up", "alarm", (Span(8, 10, "t", "up"),))


def test_bio_reads_only_the_split_folders_present(tmp_path: Path) -> None:
    write_split(tmp_path, "test", "hi\n", "O\n", "greet\n")
    assert list(read_bio(tmp_path).splits) == ["test"]


def test_bio_takes_the_locale_from_the_folder_name_or_the_parameter(tmp_path: Path) -> None:
    root = tmp_path / "massive-de-DE"
    write_split(root, "train", "hallo\n", "O\n", "greet\n")
    assert read_bio(root).split("train")[0].locale == "de-DE"
    assert read_bio(root, locale="de-AT").split("train")[0].locale == "de-AT"
    write_split(tmp_path / "plain", "train", "hi\n", "O\n", "greet\n")
    assert read_bio(tmp_path / "plain").split("train")[0].locale == "en-US"


def test_bio_rejects_a_folder_without_split_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no split folders"):
        read_bio(tmp_path)


def test_bio_rejects_a_missing_file_naming_it(tmp_path: Path) -> None:
    folder = write_split(tmp_path, "train", "hi\n", "O\n", "greet\n")
    (folder / "label").unlink()
    with pytest.raises(DataError, match=r"train/label: missing file"):
        read_bio(tmp_path)


def test_bio_rejects_files_of_different_lengths_naming_the_counts(tmp_path: Path) -> None:
    write_split(tmp_path, "dev", "a\nb\n", "O\nO\n", "x\n")
    with pytest.raises(DataError) as caught:
        read_bio(tmp_path)
    assert "dev: files have different numbers of lines (seq.in 2, seq.out 2, label 1)" in str(
        caught.value
    )


def test_bio_rejects_tag_count_mismatch_naming_the_line(tmp_path: Path) -> None:
    write_split(tmp_path, "train", "hi there\nplay jazz now\n", "O O\nO B-genre\n", "a\nb\n")
    with pytest.raises(DataError) as caught:
        read_bio(tmp_path)
    assert str(caught.value).endswith("train/seq.out:2: 3 tokens in seq.in but 2 tags")


@pytest.mark.parametrize("tag", ["X-genre", "B-", "b-genre", "B_genre", "-genre"])
def test_bio_rejects_a_tag_that_is_not_o_b_or_i(tmp_path: Path, tag: str) -> None:
    write_split(tmp_path, "train", "play jazz\n", f"O {tag}\n", "a\n")
    with pytest.raises(DataError) as caught:
        read_bio(tmp_path)
    assert f"seq.out:1: tag {tag!r} (token 2) is not O, B-type or I-type" in str(caught.value)


@pytest.mark.parametrize(
    ("tags", "after"), [("O I-genre", "'O'"), ("B-artist I-genre", "'B-artist'")]
)
def test_bio_rejects_an_i_tag_that_continues_no_span_of_its_type(
    tmp_path: Path, tags: str, after: str
) -> None:
    write_split(tmp_path, "train", "play jazz\n", tags + "\n", "a\n")
    with pytest.raises(DataError) as caught:
        read_bio(tmp_path)
    assert f"seq.out:1: tag 'I-genre' (token 2) follows {after}, not B-genre or I-genre" in str(
        caught.value
    )


def test_bio_rejects_an_empty_line_as_empty_text(tmp_path: Path) -> None:
    write_split(tmp_path, "train", "hi\n  \n", "O\n\n", "a\nb\n")
    with pytest.raises(DataError, match=r"train/seq.in:2: empty text"):
        read_bio(tmp_path)


def test_bio_lenient_read_lists_every_problem_and_keeps_the_good_lines(tmp_path: Path) -> None:
    write_split(
        tmp_path,
        "train",
        "ok one\nbad\nok two\n\nbad again\n",
        "O O\nZ\nO B-x\n\nO\n",
        "a\nb\nc\nd\ne\n",
    )
    write_split(tmp_path, "test", "a\n", "O\n", "")
    corpus = read_bio(tmp_path, strict=False)
    assert [u.text for u in corpus.split("train")] == ["ok one", "ok two"]
    assert "test" not in corpus.splits
    assert [(p.file and Path(p.file).name, p.line) for p in corpus.problems] == [
        ("seq.out", 2),
        ("seq.in", 4),
        ("seq.out", 5),
        ("test", None),
    ]
