"""Text in every script: the 14 MASSIVE locales, read, tokenised, parsed and scored.

Exact character spans in all 14 locales (test partitions, every slot), slot edges that
are token edges in every script (so a model can predict every gold span), a small
classical model per locale (300 training utterances) whose parses keep exact spans, and
normalisation that gives the same parse for every Unicode spelling of a text.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from voxloop.data import Corpus, load_corpus
from voxloop.nlu.classical import ClassicalParser
from voxloop.nlu.evaluate import evaluate
from voxloop.nlu.paper_metric import paper_slot_f1, paper_words
from voxloop.nlu.tokenize import tokenize
from voxloop.schema import Parse, Span, Utterance

LOCALES = (
    "ar-SA de-DE en-US es-ES fr-FR hi-IN it-IT ja-JP ko-KR pl-PL ru-RU sw-KE tr-TR zh-CN".split()
)


@pytest.fixture(scope="module")
def massive(datasets: Path) -> Corpus:
    return load_corpus(f"massive:{datasets / 'massive'}")


def by_locale(utterances: list[Utterance] | tuple[Utterance, ...]) -> dict[str, list[Utterance]]:
    out: dict[str, list[Utterance]] = {}
    for u in utterances:
        out.setdefault(u.locale, []).append(u)
    return out


def test_every_test_slot_is_an_exact_slice_of_the_text_in_all_14_locales(
    massive: Corpus,
) -> None:
    test = by_locale(massive.split("test"))
    assert sorted(test) == LOCALES
    for locale, utterances in test.items():
        assert len(utterances) == 2974, locale
        slots = [(u.text, s) for u in utterances for s in u.slots]
        assert len(slots) > 2700, locale
        for text, s in slots:
            assert text[s.start : s.end] == s.value, (locale, text, s)
            assert s.value == s.value.strip() and s.value, (locale, text, s)


def test_the_scripts_are_what_the_test_claims(massive: Corpus) -> None:
    test = by_locale(massive.split("test"))
    for locale in ("ja-JP", "zh-CN"):  # written without spaces
        assert sum(" " not in u.text for u in test[locale]) > 0.9 * len(test[locale])
    rtl = [u for u in test["ar-SA"] if any(unicodedata.bidirectional(c) == "AL" for c in u.text)]
    assert len(rtl) > 0.95 * len(test["ar-SA"])
    assert all(any("\u0900" <= c <= "\u097f" for c in u.text) for u in test["hi-IN"][:100])


def test_every_slot_edge_is_a_token_edge_in_every_script(massive: Corpus) -> None:
    misaligned: dict[str, int] = {}
    for u in massive.split("test"):
        tokens = tokenize(u.text)
        starts, ends = {s for _, s, _ in tokens}, {e for _, _, e in tokens}
        for s in u.slots:
            if s.start not in starts or s.end not in ends:
                misaligned[u.locale] = misaligned.get(u.locale, 0) + 1
    assert misaligned == {}


@pytest.fixture(scope="module")
def small_models(massive: Corpus) -> dict[str, tuple[ClassicalParser, list[Utterance]]]:
    """A classical model per locale on 300 training utterances, with its test partition."""
    train, test = by_locale(massive.split("train")), by_locale(massive.split("test"))
    return {
        locale: (
            ClassicalParser(sentence_encoder="none", crf_epochs=10, gazetteer_folds=2).fit(
                train[locale][:300]
            ),
            test[locale],
        )
        for locale in LOCALES
    }


@pytest.mark.parametrize("locale", LOCALES)
def test_a_small_model_learns_every_locale_with_exact_spans(
    small_models: dict[str, tuple[ClassicalParser, list[Utterance]]], locale: str
) -> None:
    parser, test = small_models[locale]
    test = test[:150]
    assert parser.locales_ == [locale] and parser.default_locale_ == locale
    parses = parser.parse([u.text for u in test])
    for p in parses:
        assert p.locale == locale
        for s in p.slots:
            assert p.text[s.start : s.end] == s.value
    result = evaluate(test, parses)
    assert result.intent_accuracy > 0.4, result.intent_accuracy  # 60 intents: chance is 1.7%
    assert result.slot_f1 > 0.2, result.slot_f1


def _respelled(text: str, form: str) -> str:
    return unicodedata.normalize(form, text)


@pytest.mark.parametrize(
    ("locale", "form"), [("hi-IN", "NFD"), ("ko-KR", "NFD"), ("ja-JP", "NFKD")]
)
def test_every_unicode_spelling_of_a_text_gets_the_same_parse(
    small_models: dict[str, tuple[ClassicalParser, list[Utterance]]], locale: str, form: str
) -> None:
    parser, test = small_models[locale]
    texts = [u.text for u in test if _respelled(u.text, form) != u.text][:150]
    assert len(texts) >= 100  # a real change
    respelled = [_respelled(t, form) for t in texts]
    for original, other in zip(parser.parse(texts), parser.parse(respelled), strict=True):
        assert other.intent == original.intent
        assert [s.label for s in other.slots] == [s.label for s in original.slots]
        for a, b in zip(original.slots, other.slots, strict=True):
            assert other.text[b.start : b.end] == b.value  # offsets into the respelled text
            assert unicodedata.normalize("NFC", b.value) == unicodedata.normalize("NFC", a.value)


# --------------------------------------------------------------------------- the paper's F1


def _parse(text: str, spans: tuple[Span, ...]) -> Parse:
    return Parse(text, "x", 1.0, (), spans)


def test_the_paper_splits_japanese_and_chinese_into_characters_and_the_rest_into_words() -> None:
    assert [w for w, _, _ in paper_words("今週 は", "ja-JP")] == ["今", "週", "は"]
    assert [w for w, _, _ in paper_words("wake me up", "en-US")] == ["wake", "me", "up"]


def test_paper_f1_counts_a_span_over_part_of_a_word_as_the_whole_word() -> None:
    text = "play jazz's best"
    gold = Utterance(text, "x", (Span(5, 11, "genre", "jazz's"),), locale="en-US")
    partial = _parse(text, (Span(5, 9, "genre", "jazz"),))
    assert evaluate([gold], [partial]).slot_f1 == 0.0  # characters: a different span
    assert paper_slot_f1([gold], [partial]) == {"all": 1.0, "en-US": 1.0}  # words: the same


def test_paper_f1_equals_character_span_f1_in_japanese(
    small_models: dict[str, tuple[ClassicalParser, list[Utterance]]],
) -> None:
    parser, test = small_models["ja-JP"]
    test = test[:300]
    parses = parser.parse([u.text for u in test])
    assert paper_slot_f1(test, parses)["ja-JP"] == pytest.approx(evaluate(test, parses).slot_f1)


def test_paper_f1_agrees_with_seqeval_on_word_tags(
    small_models: dict[str, tuple[ClassicalParser, list[Utterance]]],
) -> None:
    from seqeval.metrics import f1_score

    from voxloop.nlu.slot_tagger import bio_tags

    gold_tags, predicted_tags, gold, predicted = [], [], [], []
    for locale in ("de-DE", "zh-CN"):
        parser, test = small_models[locale]
        test = test[:300]
        parses = parser.parse([u.text for u in test])
        gold += test
        predicted += parses
        for u, p in zip(test, parses, strict=True):
            words = paper_words(u.text, locale)
            gold_tags.append(bio_tags(words, u.slots))
            predicted_tags.append(bio_tags(words, p.slots))
    assert paper_slot_f1(gold, predicted)["all"] == pytest.approx(
        f1_score(gold_tags, predicted_tags)
    )
