"""The Home Assistant corpus: labelled utterances with exact character spans, in any language."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxloop.data.corpus import Corpus
from voxloop.data.hass import (
    INTENT_DOMAINS,
    SPLIT_PERCENT,
    _assemble,
    _Draw,
    demo_home,
    hass_intents,
    hass_slot_lists,
    read_hass,
)
from voxloop.errors import ConfigError, DataError
from voxloop.schema import Utterance

LOCALES = {"en": "en-US", "de": "de-DE", "fr": "fr-FR", "es": "es-ES"}


@pytest.fixture(scope="module", params=sorted(LOCALES))
def lang_corpus(request: pytest.FixtureRequest) -> tuple[str, Corpus]:
    return request.param, read_hass(request.param)


@pytest.fixture(scope="module")
def english() -> Corpus:
    return read_hass("en")


def everything(corpus: Corpus) -> list[Utterance]:
    return [u for name in SPLIT_PERCENT for u in corpus.split(name)]


def assert_spans_exact(utterance: Utterance) -> None:
    text = utterance.text
    previous_end = 0
    for span in utterance.slots:
        assert 0 <= span.start < span.end <= len(text), (text, span)
        assert text[span.start : span.end] == span.value, (text, span)
        assert span.value == span.value.strip(), (text, span)
        assert span.start >= previous_end, f"overlapping slots in {text!r}"
        previous_end = span.end


# --------------------------------------------------------------------------- every language


def test_corpus_has_utterances_of_at_least_30_intents(lang_corpus: tuple[str, Corpus]) -> None:
    lang, corpus = lang_corpus
    utterances = everything(corpus)
    assert corpus.spec == f"hass:{lang}"
    assert corpus.problems == ()
    assert len(utterances) > 1000
    assert len({u.intent for u in utterances}) >= 30
    assert all(corpus.split(name) for name in SPLIT_PERCENT)


def test_every_span_is_exact_and_trimmed(lang_corpus: tuple[str, Corpus]) -> None:
    _, corpus = lang_corpus
    utterances = everything(corpus)
    for utterance in utterances:
        assert_spans_exact(utterance)
    assert sum(bool(u.slots) for u in utterances) > len(utterances) / 2


def test_text_is_lowercase_with_single_spaces(lang_corpus: tuple[str, Corpus]) -> None:
    _, corpus = lang_corpus
    for utterance in everything(corpus):
        text = utterance.text
        assert text == text.strip() and "  " not in text and "\t" not in text
        assert text == text.lower()


def test_splits_are_disjoint_by_text(lang_corpus: tuple[str, Corpus]) -> None:
    _, corpus = lang_corpus
    texts = {name: {u.text for u in corpus.split(name)} for name in SPLIT_PERCENT}
    assert not texts["train"] & texts["dev"]
    assert not texts["train"] & texts["test"]
    assert not texts["dev"] & texts["test"]
    total = sum(len(t) for t in texts.values())
    assert 0.6 < len(texts["train"]) / total < 0.8


def test_texts_and_ids_are_unique_and_each_intent_is_capped(
    lang_corpus: tuple[str, Corpus],
) -> None:
    lang, corpus = lang_corpus
    utterances = everything(corpus)
    assert len({u.text for u in utterances}) == len(utterances)
    assert len({u.id for u in utterances}) == len(utterances)
    assert all(u.id is not None and u.id.startswith(f"hass-{lang}-") for u in utterances)
    assert max(Counter(u.intent for u in utterances).values()) <= 200


def test_same_seed_gives_the_identical_corpus(lang_corpus: tuple[str, Corpus]) -> None:
    lang, corpus = lang_corpus
    assert read_hass(lang) == corpus


def test_every_utterance_carries_the_locale_and_domain(lang_corpus: tuple[str, Corpus]) -> None:
    lang, corpus = lang_corpus
    for utterance in everything(corpus):
        assert utterance.locale == LOCALES[lang]
        assert utterance.intent is not None
        assert utterance.domain == INTENT_DOMAINS[utterance.intent]


def test_home_slots_hold_demo_home_values(lang_corpus: tuple[str, Corpus]) -> None:
    lang, corpus = lang_corpus
    home = demo_home(lang)
    areas = {a.lower() for a in home.areas}
    floors = {f.lower() for f in home.floors}
    names = {n.lower() for n in home.values("name")}
    queries = {q.lower() for q in home.lists["search_query"]}
    seen: Counter[str] = Counter()
    for utterance in everything(corpus):
        for span in utterance.slots:
            if span.label == "area":
                assert span.value in areas, utterance
            elif span.label == "floor":
                assert span.value in floors, utterance
            elif span.label == "search_query":
                assert span.value in queries, utterance
            elif span.label == "name" and utterance.domain not in ("timers",):
                assert span.value in names, utterance
            seen[span.label] += 1
    assert seen["area"] and seen["name"] and seen["floor"] and seen["search_query"]


# --------------------------------------------------------------------------- English specifics


def test_turn_on_the_name_in_the_area_labels_both(english: Corpus) -> None:
    home = demo_home("en")
    names = {n.lower() for n in home.values("name")}
    areas = {a.lower() for a in home.areas}
    both = [
        u
        for u in everything(english)
        if u.intent == "HassTurnOn" and {s.label for s in u.slots} == {"name", "area"}
    ]
    assert both
    for utterance in both:
        slots = {s.label: s.value for s in utterance.slots}
        assert slots["name"] in names and slots["area"] in areas
        assert slots["name"] in utterance.text and slots["area"] in utterance.text


@pytest.mark.parametrize(
    ("intent", "domains"),
    [
        ("HassLightSet", ["light"]),
        ("HassSetPosition", ["cover", "valve"]),
        ("HassMediaSearchAndPlay", ["media_player"]),
        ("HassListAddItem", ["todo"]),
    ],
)
def test_a_name_is_a_device_of_the_domain_the_template_requires(
    english: Corpus, intent: str, domains: list[str]
) -> None:
    allowed = {n.lower() for n in demo_home("en").names_for(domains)}
    values = [
        s.value
        for u in everything(english)
        if u.intent == intent
        for s in u.slots
        if s.label == "name"
    ]
    assert values
    assert set(values) <= allowed


def test_numbers_are_mostly_digits_some_spelled_out(english: Corpus) -> None:
    values = [s.value for u in everything(english) for s in u.slots if s.label == "position"]
    assert values
    digits = [v for v in values if v.isdigit()]
    assert all(0 <= int(v) <= 100 for v in digits)
    assert len(digits) > len(values) / 2
    words = [v for v in values if not v.isdigit()]
    assert words and all(w.replace("-", "").replace(" ", "").isalpha() for w in words)


def test_hassil_recognizes_the_labelled_intent_and_slots(english: Corpus) -> None:
    from hassil.recognize import recognize_all

    intents = hass_intents("en")
    slot_lists = hass_slot_lists("en")
    # Sentences like "turn on the lights here" need the speaker's area as context.
    here = {"area": {"value": "Kitchen", "text": "Kitchen"}}
    sample = random.Random(0).sample(everything(english), 50)
    for utterance in sample:
        agreeing = []
        for context in (None, here):
            for result in recognize_all(
                utterance.text, intents, slot_lists=slot_lists, intent_context=context
            ):
                if result.intent.name != utterance.intent:
                    continue
                entities = {e.name: e.text.strip() for e in result.entities_list if e.text}
                agreeing.append(all(entities.get(s.label) == s.value for s in utterance.slots))
        assert agreeing, f"hassil does not recognize {utterance.intent} in {utterance.text!r}"
        assert any(agreeing), f"hassil's slots differ for {utterance.text!r}: {utterance.slots}"


def test_a_sentence_keeps_its_split_and_id_across_seeds_and_sizes(english: Corpus) -> None:
    where = {u.text: (name, u.id) for name in SPLIT_PERCENT for u in english.split(name)}
    other = read_hass("en", seed=7, per_intent=40)
    shared = [(name, u) for name in SPLIT_PERCENT for u in other.split(name) if u.text in where]
    assert len(shared) > 100
    for name, utterance in shared:
        assert where[utterance.text] == (name, utterance.id)


def test_a_smaller_corpus_is_part_of_a_larger_one(english: Corpus) -> None:
    smaller = read_hass("en", per_intent=30)
    assert {u.text for u in everything(smaller)} <= {u.text for u in everything(english)}


def test_other_seeds_draw_other_sentences(english: Corpus) -> None:
    other = read_hass("en", seed=1)
    assert {u.text for u in everything(other)} != {u.text for u in everything(english)}


def test_an_intent_with_few_sentences_gives_them_all_once() -> None:
    corpus = read_hass("en", per_intent=500)
    nevermind = [u.text for u in everything(corpus) if u.intent == "HassNevermind"]
    assert 0 < len(nevermind) < 20
    assert len(set(nevermind)) == len(nevermind)


# --------------------------------------------------------------------------- languages and errors


def test_unknown_language_is_a_data_error_naming_it_and_the_known_ones() -> None:
    with pytest.raises(DataError, match="'xx'") as caught:
        read_hass("xx")
    assert "en" in str(caught.value) and "de" in str(caught.value)


def test_a_locale_reads_its_language_and_labels_with_the_locale() -> None:
    corpus = read_hass("en-GB", per_intent=3)
    assert corpus.spec == "hass:en"
    assert {u.locale for u in everything(corpus)} == {"en-GB"}


def test_a_language_without_its_own_home_uses_the_english_one() -> None:
    assert demo_home("it").areas == demo_home("en").areas
    corpus = read_hass("it", per_intent=5)
    utterances = everything(corpus)
    assert utterances and {u.locale for u in utterances} == {"it-IT"}
    for utterance in utterances:
        assert_spans_exact(utterance)


def test_per_intent_below_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="per_intent"):
        read_hass("en", per_intent=0)


CUSTOM = {
    "intents": {
        "Greet": {
            "data": [
                {
                    "sentences": ["(hello|hi) [there] {person}", "good morning {nobody}"],
                    "lists": {"person": {"values": ["Ann", "Bo Li"]}},
                }
            ]
        }
    }
}


def test_a_template_needing_an_undefined_list_raises_when_strict() -> None:
    with pytest.raises(DataError, match=r"Greet.*\{nobody\}"):
        read_hass("en", templates=CUSTOM)


def test_non_strict_skips_the_template_and_lists_the_problem() -> None:
    corpus = read_hass("en", templates=CUSTOM, strict=False)
    assert len(corpus.problems) == 1 and "{nobody}" in str(corpus.problems[0])
    texts = {u.text for u in everything(corpus)}
    assert texts == {
        f"{greeting}{there} {person}"
        for greeting in ("hello", "hi")
        for there in ("", " there")
        for person in ("ann", "bo li")
    }
    assert all(u.domain == "general" for u in everything(corpus))


def test_templates_that_are_not_intents_are_a_data_error() -> None:
    with pytest.raises(DataError, match="templates"):
        read_hass("en", templates={"intents": 3})


# --------------------------------------------------------------------------- properties


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lang=st.sampled_from(sorted(LOCALES)))
def test_spans_lie_inside_the_text_and_match_their_values(seed: int, lang: str) -> None:
    corpus = read_hass(lang, per_intent=4, seed=seed)
    for utterance in everything(corpus):
        assert_spans_exact(utterance)


pieces = st.lists(
    st.text(alphabet=st.sampled_from(list("ab É\tİß\n ,")), max_size=6), min_size=1, max_size=8
)


@given(pieces=pieces, data=st.data())
def test_assembly_keeps_spans_exact_whatever_the_whitespace(
    pieces: list[str], data: st.DataObject
) -> None:
    draw = _Draw(random.Random(0), "en")
    draw.pieces.extend(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(pieces)), min_size=2, max_size=4)))
    for first, end in zip(cuts[::2], cuts[1::2], strict=False):
        draw.marks.append(("slot", first, end))
    result = _assemble(draw)
    if result is None:
        return  # an empty text or slot is never emitted
    text, spans = result
    assert text == text.strip() and "  " not in text
    for span in spans:
        assert text[span.start : span.end] == span.value
        assert span.value and span.value == span.value.strip()
