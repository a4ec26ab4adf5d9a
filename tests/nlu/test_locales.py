"""Which locale a request is answered in, and what a model says it serves."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from voxloop.data import load_corpus
from voxloop.errors import VoxloopError
from voxloop.nlu.base import load_parser, read_manifest
from voxloop.nlu.classical import ClassicalParser
from voxloop.nlu.evaluate import evaluate
from voxloop.nlu.locales import (
    UnsupportedLocale,
    default_locale,
    majority_locale,
    resolve_locale,
    with_locale,
)

SERVED = ["de-DE", "es-ES", "fr-FR"]


@pytest.mark.parametrize(
    ("asked", "answered"),
    [(None, "es-ES"), ("fr-FR", "fr-FR"), ("fr_fr", "fr-FR"), ("FR", "fr-FR"), ("de", "de-DE")],
)
def test_a_served_locale_is_found_however_it_is_spelled(asked: str | None, answered: str) -> None:
    assert resolve_locale(asked, SERVED, default="es-ES") == answered


@pytest.mark.parametrize("asked", ["it-IT", "de-AT", "en", "", "pt"])
def test_a_locale_not_served_is_refused_naming_those_served(asked: str) -> None:
    with pytest.raises(UnsupportedLocale) as e:
        resolve_locale(asked, SERVED, default="es-ES")
    assert isinstance(e.value, VoxloopError)
    assert repr(asked) in str(e.value) and "de-DE, es-ES, fr-FR" in str(e.value)


def test_a_language_with_two_served_locales_is_refused_not_guessed() -> None:
    with pytest.raises(UnsupportedLocale):
        resolve_locale("pt", ["pt-BR", "pt-PT"], default="pt-BR")


def test_the_default_locale_is_the_most_frequent_and_en_us_breaks_ties() -> None:
    assert majority_locale(["de-DE", "fr-FR", "fr-FR"]) == "fr-FR"
    assert majority_locale(["fr-FR", "en-US", "de-DE"]) == "en-US"
    assert majority_locale(["fr-FR", "de-DE"]) == "de-DE"
    assert default_locale({"locales": ["ja-JP"]}) == "ja-JP"
    assert default_locale({"locales": ["ja-JP", "ko-KR"], "default_locale": "ko-KR"}) == "ko-KR"


@pytest.fixture(scope="module")
def trilingual(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ClassicalParser]:
    """One classical model of German, Spanish and French (Home Assistant sentences; more
    Spanish, so Spanish is its default)."""
    train = []
    for lang, n in (("de", 400), ("es", 450), ("fr", 400)):
        part = list(load_corpus(f"hass:{lang}").split("train"))
        random.Random(0).shuffle(part)
        train += part[:n]
    parser = ClassicalParser(sentence_encoder="none", crf_epochs=10, gazetteer_folds=2).fit(train)
    path = tmp_path_factory.mktemp("models") / "de-es-fr"
    parser.save(path)
    return path, parser


def test_the_manifest_lists_the_locales_a_model_serves_and_its_default(
    trilingual: tuple[Path, ClassicalParser],
) -> None:
    path, _ = trilingual
    manifest = read_manifest(path)
    assert manifest["locales"] == SERVED and manifest["default_locale"] == "es-ES"
    loaded = load_parser(path)
    assert isinstance(loaded, ClassicalParser) and loaded.default_locale_ == "es-ES"
    (parse,) = loaded.parse(["apaga la luz del salón"])
    assert parse.locale == "es-ES" and parse.intent == "HassTurnOff"


@pytest.mark.parametrize("lang", ["de", "es", "fr"])
def test_one_model_understands_german_spanish_and_french(
    trilingual: tuple[Path, ClassicalParser], lang: str
) -> None:
    _, parser = trilingual
    test = list(load_corpus(f"hass:{lang}").split("test"))[:150]
    locale = resolve_locale(lang, SERVED, "es-ES")
    parses = with_locale(parser.parse([u.text for u in test]), locale)
    assert {p.locale for p in parses} == {test[0].locale} == {locale}
    for p in parses:
        assert all(p.text[s.start : s.end] == s.value for s in p.slots)
    result = evaluate(test, parses)
    assert result.intent_accuracy > 0.75 and result.slot_f1 > 0.6, result
