"""Normalisation, WER, slot scores and the domain LM."""

from __future__ import annotations

import pytest

from voxloop.speech.bias import Bias
from voxloop.speech.normalize import normalize_for_wer, number_to_words, spoken_form
from voxloop.speech.wer import edit_distance, slot_scores, word_error_rate


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Set an alarm for 7:30 a.m.!", "set an alarm for seven thirty am"),
        ("Wake me at 10am on the 21st.", "wake me at ten am on the twenty first"),
        ("What's 5% of $20?", "what's five percent of twenty dollars"),
        ("7:05 PM", "seven oh five pm"),
        ("call 1,200 people", "call one thousand two hundred people"),
        ("rock & roll", "rock and roll"),
        ("It's 2.5 degrees", "it's two point five degrees"),
        ('Play "Hello" by Adele.', "play hello by adele"),
    ],
)
def test_spoken_form(written: str, spoken: str) -> None:
    assert spoken_form(written) == spoken


def test_number_words() -> None:
    assert number_to_words(0) == "zero"
    assert number_to_words(115) == "one hundred fifteen"
    assert number_to_words(2_000_019) == "two million nineteen"


def test_wer_normalised_forgives_written_forms_only() -> None:
    refs = ["wake me up at seven thirty am", "what is the weather"]
    hyps = ["Wake me up at 7:30 a.m.", "What's the weather?"]
    assert word_error_rate(refs, hyps) == 0.0
    assert word_error_rate(refs, hyps, normalize=False) > 0.3
    assert word_error_rate(["turn on the light"], ["turn of the light"]) == pytest.approx(0.25)
    assert word_error_rate(["turn on the light"], [""]) == 1.0
    assert normalize_for_wer("I'm OK") == "i am okay"


def test_edit_distance() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a"]) == 1


def test_slot_scores_span_and_distance() -> None:
    gold = [[("date", "tuesday"), ("event_name", "mona")]]
    assert slot_scores(gold, gold).slu_f1 == 1.0
    # one slot right, one slightly misheard: span F1 counts it wrong, SLU-F1 partly right
    heard = [[("date", "tuesday"), ("event_name", "mono")]]
    s = slot_scores(gold, heard)
    assert s.span_f1 == pytest.approx(0.5)
    assert s.span_f1 < s.char_f1 < 1.0
    assert s.word_f1 == pytest.approx(2 / 3)  # tp 2, fp 1, fn 1
    assert slot_scores(gold, [[]]).slu_f1 == 0.0


def test_domain_lm_prefers_in_domain_word_order() -> None:
    texts = ["turn on the kitchen light", "turn off the light", "set an alarm for seven am"] * 5
    bias = Bias.from_texts(texts)
    assert bias.lm.logprob("turn off the kitchen light") > bias.lm.logprob(
        "turn of the kitchen light"
    )
    assert bias.lm.logprob("set an alarm") > bias.lm.logprob("alarm an set")
    assert "light" in bias.hotwords and bias.prompt
