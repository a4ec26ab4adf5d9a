"""Specification of `voxloop.nlu.evaluate`: the numbers the field reports, computed honestly."""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import precision_recall_fscore_support
from sklearn.metrics import accuracy_score

from voxloop.errors import ConfigError, DataError, VoxloopError
from voxloop.nlu.evaluate import (
    NO_DOMAIN,
    CalibrationBin,
    Confusion,
    Evaluation,
    SlotScore,
    calibration_bins,
    evaluate,
    expected_calibration_error,
    format_report,
)
from voxloop.schema import IntentScore, Parse, Span, Utterance

# --------------------------------------------------------------------------- helpers


def span(text: str, value: str, label: str, occurrence: int = 0) -> Span:
    """The span of the ``occurrence``-th ``value`` in ``text``."""
    starts = [m.start() for m in re.finditer(re.escape(value), text)]
    start = starts[occurrence]
    return Span(start, start + len(value), label, value)


def parse(
    text: str,
    intent: str | None,
    confidence: float,
    slots: tuple[Span, ...] = (),
    ranking: tuple[IntentScore, ...] | None = None,
) -> Parse:
    if ranking is None:
        ranking = (IntentScore(intent, confidence),) if intent is not None else ()
    return Parse(text=text, intent=intent, confidence=confidence, ranking=ranking, slots=slots)


def bio_to_spans(text: str, tags: list[str]) -> tuple[Span, ...]:
    """Whitespace tokens + BIO tags -> character spans, chunked the way conlleval does.

    A chunk ends at ``O``, at ``B-``, or at a change of type; it starts at ``B-`` or at an
    ``I-`` that does not continue a chunk of its own type.
    """
    offsets = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    assert len(offsets) == len(tags), (text, tags)
    spans: list[Span] = []
    label: str | None = None
    start = last_end = 0
    for (s, e), tag in zip(offsets, tags, strict=True):
        prefix, _, kind = tag.partition("-")
        if label is not None and (tag == "O" or prefix == "B" or kind != label):
            spans.append(Span(start, last_end, label, text[start:last_end]))
            label = None
        if prefix in ("B", "I") and label is None:
            label, start = kind, s
        last_end = e
    if label is not None:
        spans.append(Span(start, last_end, label, text[start:last_end]))
    return tuple(spans)


def chunks(tags: list[str]) -> list[tuple[int, int]]:
    """Token ranges ``[first, last]`` of the BIO chunks (well-formed gold tags only)."""
    out: list[tuple[int, int]] = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            out.append((i, i))
        elif tag.startswith("I-") and out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
    return out


def corrupt(tags: list[str], i: int, labels: list[str]) -> list[str]:
    """A deterministic, realistic tagging error chosen by the utterance's index."""
    tags = list(tags)
    found = chunks(tags)
    if not found:
        if i % 3 == 0 and tags:  # a spurious slot where there was none
            tags[0] = "B-" + labels[i % len(labels)]
        return tags
    first, last = found[i % len(found)]
    kind = tags[first][2:]
    rule = i % 7
    if rule == 0:  # drop a span
        tags[first : last + 1] = ["O"] * (last - first + 1)
    elif rule == 1:  # shift the right boundary: shrink, or grow into an O token
        if last > first:
            tags[last] = "O"
        elif last + 1 < len(tags) and tags[last + 1] == "O":
            tags[last + 1] = "I-" + kind
    elif rule == 2:  # relabel
        other = [x for x in labels if x != kind]
        new = other[i % len(other)]
        tags[first : last + 1] = ["B-" + new] + ["I-" + new] * (last - first)
    elif rule == 3:  # shift the left boundary into a preceding O token
        if first > 0 and tags[first - 1] == "O":
            tags[first - 1], tags[first] = "B-" + kind, "I-" + kind
    elif rule == 4:  # ill-formed but equivalent under conlleval: I- opens the chunk
        tags[first] = "I-" + kind
    elif rule == 5:  # split one span in two
        if last > first:
            tags[first + 1] = "B-" + kind
    # rule 6: correct
    return tags


@pytest.fixture(scope="module")
def snips(datasets: Path) -> tuple[list[str], list[list[str]], list[str]]:
    folder = datasets / "snips" / "test"
    texts = (folder / "seq.in").read_text(encoding="utf-8").splitlines()
    tags = [line.split() for line in (folder / "seq.out").read_text(encoding="utf-8").splitlines()]
    intents = (folder / "label").read_text(encoding="utf-8").split()
    assert len(texts) == len(tags) == len(intents) > 500
    return texts, tags, intents


# --------------------------------------------------------------------------- golden example

# Four utterances; every number below is worked out by hand.
#   0 music/en-US   intent right; genre right, room boundary wrong       -> 1 of 2 slots
#   1 iot/en-US     intent right; no slots either side                   -> exact match
#   2 alarm/en-US   intent wrong (SetTimer); time right, spurious person -> 1 of 1, 2 predicted
#   3 weather/en-GB not recognized (top guess Weather 0.35); city relabelled place_name
T0 = "play jazz in the kitchen"
T1 = "turn off the lights"
T2 = "wake me at 7 am"
T3 = "what is the weather in paris"
GOLD = [
    Utterance(T0, "PlayMusic", (span(T0, "jazz", "genre"), span(T0, "kitchen", "room")), "music"),
    Utterance(T1, "LightsOff", (), "iot"),
    Utterance(T2, "SetAlarm", (span(T2, "7 am", "time"),), "alarm"),
    Utterance(T3, "Weather", (span(T3, "paris", "city"),), "weather", locale="en-GB"),
]
PREDICTED = [
    parse(T0, "PlayMusic", 0.85, (span(T0, "jazz", "genre"), span(T0, "the kitchen", "room"))),
    parse(T1, "LightsOff", 0.75),
    parse(T2, "SetTimer", 0.55, (span(T2, "7 am", "time"), span(T2, "me", "person"))),
    parse(
        T3,
        None,
        0.35,
        (span(T3, "paris", "place_name"),),
        ranking=(IntentScore("Weather", 0.35), IntentScore("PlayMusic", 0.2)),
    ),
]


def test_golden_headline_numbers() -> None:
    e = evaluate(GOLD, PREDICTED, n_bins=10)
    assert e.n == 4
    assert e.intent_accuracy == pytest.approx(2 / 4)  # 0 and 1 right
    # gold slots 2+0+1+1 = 4, predicted 2+0+2+1 = 5, correct 1+0+1+0 = 2
    assert (e.gold_slots, e.predicted_slots, e.correct_slots) == (4, 5, 2)
    assert e.slot_precision == pytest.approx(2 / 5)
    assert e.slot_recall == pytest.approx(2 / 4)
    assert e.slot_f1 == pytest.approx(2 * 2 / (4 + 5))  # = 2PR/(P+R) = 0.4444
    assert e.exact_match == pytest.approx(1 / 4)  # only utterance 1
    # the declined T3's best guess (Weather) is right but its slot is mislabelled
    assert (e.top_intent_accuracy, e.top_exact_match) == (3 / 4, 1 / 4)
    assert e.not_recognized == pytest.approx(1 / 4)
    # 10 bins, one prediction per bin (top guess correct?, confidence):
    # (T, .85) (T, .75) (F, .55) (T, .35 from the ranking) -> gaps .15 .25 .55 .65
    assert e.ece == pytest.approx((0.15 + 0.25 + 0.55 + 0.65) / 4)  # 0.4


def test_golden_ece_averages_within_a_bin() -> None:
    # 2 bins: [0, .5) holds (T, .35) -> gap .65, weight 1;
    # [.5, 1] holds (T,.85) (T,.75) (F,.55) -> accuracy 2/3, confidence 2.15/3 -> gap .05, weight 3
    e = evaluate(GOLD, PREDICTED, n_bins=2)
    assert e.ece == pytest.approx((0.65 + 3 * 0.05) / 4)  # 0.2
    assert [b.count for b in e.calibration] == [1, 3]
    assert e.calibration[1].accuracy == pytest.approx(2 / 3)
    assert e.calibration[1].confidence == pytest.approx(2.15 / 3)


def test_golden_per_slot_scores_include_labels_only_predicted() -> None:
    e = evaluate(GOLD, PREDICTED)
    assert e.per_slot == {
        "city": SlotScore(0.0, 0.0, 0.0, 1),  # relabelled away
        "genre": SlotScore(1.0, 1.0, 1.0, 1),
        "person": SlotScore(0.0, 0.0, 0.0, 0),  # spurious
        "place_name": SlotScore(0.0, 0.0, 0.0, 0),
        "room": SlotScore(0.0, 0.0, 0.0, 1),  # boundary off by "the "
        "time": SlotScore(1.0, 1.0, 1.0, 1),
    }


def test_golden_breakdowns_use_the_gold_domain_and_locale() -> None:
    e = evaluate(GOLD, PREDICTED)
    assert list(e.per_domain) == ["alarm", "iot", "music", "weather"]
    music, iot, alarm, weather = (e.per_domain[k] for k in ("music", "iot", "alarm", "weather"))
    assert (music.n, music.intent_accuracy, music.exact_match) == (1, 1.0, 0.0)
    assert music.slot_f1 == pytest.approx(2 * 1 / (2 + 2))
    # no slots on either side: F1 0.0 by seqeval's convention, exact match still 1
    assert (iot.intent_accuracy, iot.slot_f1, iot.exact_match) == (1.0, 0.0, 1.0)
    assert iot.gold_slots == iot.predicted_slots == 0
    assert alarm.slot_f1 == pytest.approx(2 * 1 / (1 + 2))
    assert (alarm.slot_precision, alarm.slot_recall) == (0.5, 1.0)
    assert (weather.intent_accuracy, weather.slot_f1) == (0.0, 0.0)

    assert list(e.per_locale) == ["en-GB", "en-US"]
    us = e.per_locale["en-US"]
    assert us.n == 3
    assert us.intent_accuracy == pytest.approx(2 / 3)
    assert us.slot_f1 == pytest.approx(2 * 2 / (3 + 4))  # gold 3, predicted 4, correct 2
    assert us.exact_match == pytest.approx(1 / 3)
    assert e.per_locale["en-GB"].n == 1


def test_golden_confusions_name_not_recognized_as_none() -> None:
    e = evaluate(GOLD, PREDICTED)
    # both counts are 1: ties broken by gold intent name
    assert e.confusions == (Confusion("SetAlarm", "SetTimer", 1), Confusion("Weather", None, 1))


# ------------------------------------------------------------- agreement with seqeval, sklearn


def test_slot_scores_equal_seqeval_conlleval_on_snips(snips) -> None:
    texts, gold_tags, _ = snips
    labels = sorted({t[2:] for tags in gold_tags for t in tags if t != "O"})
    pred_tags = [corrupt(tags, i, labels) for i, tags in enumerate(gold_tags)]
    assert sum(p != g for p, g in zip(pred_tags, gold_tags, strict=True)) > 300

    gold = [
        Utterance(t, "x", bio_to_spans(t, tags)) for t, tags in zip(texts, gold_tags, strict=True)
    ]
    predicted = [
        parse(t, "x", 1.0, bio_to_spans(t, tags)) for t, tags in zip(texts, pred_tags, strict=True)
    ]
    e = evaluate(gold, predicted)

    assert e.slot_f1 == pytest.approx(f1_score(gold_tags, pred_tags), abs=1e-9)
    assert e.slot_precision == pytest.approx(precision_score(gold_tags, pred_tags), abs=1e-9)
    assert e.slot_recall == pytest.approx(recall_score(gold_tags, pred_tags), abs=1e-9)
    assert 0.5 < e.slot_f1 < 0.95  # the corruptions bite, but not everywhere

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels only predicted have undefined recall
        p, r, f, s = precision_recall_fscore_support(gold_tags, pred_tags, average=None)
    types = sorted({t[2:] for tags in gold_tags + pred_tags for t in tags if t != "O"})
    assert list(e.per_slot) == types
    for k, label in enumerate(types):
        score = e.per_slot[label]
        assert score.precision == pytest.approx(p[k], abs=1e-9)
        assert score.recall == pytest.approx(r[k], abs=1e-9)
        assert score.f1 == pytest.approx(f[k], abs=1e-9)
        assert score.support == s[k]


def test_no_slots_anywhere_scores_zero_like_seqeval() -> None:
    gold = [Utterance("hello there", "greet")]
    e = evaluate(gold, [parse("hello there", "greet", 0.9)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = f1_score([["O", "O"]], [["O", "O"]])
    assert e.slot_f1 == e.slot_precision == e.slot_recall == expected == 0.0
    assert e.exact_match == 1.0


def test_intent_accuracy_equals_sklearn_accuracy_score(snips) -> None:
    texts, _, intents = snips
    names = sorted(set(intents))
    predicted_intents: list[str | None] = [
        None if i % 11 == 0 else names[(names.index(g) + 1) % len(names)] if i % 7 == 0 else g
        for i, g in enumerate(intents)
    ]
    gold = [Utterance(t, g) for t, g in zip(texts, intents, strict=True)]
    predicted = [
        parse(t, p, 0.5, ranking=(IntentScore(g, 0.5),))
        for t, p, g in zip(texts, predicted_intents, intents, strict=True)
    ]
    e = evaluate(gold, predicted)
    sklearn_pred = ["<not recognized>" if p is None else p for p in predicted_intents]
    assert e.intent_accuracy == pytest.approx(accuracy_score(intents, sklearn_pred), abs=1e-12)
    assert e.not_recognized == pytest.approx(sum(p is None for p in predicted_intents) / len(texts))


# --------------------------------------------------------------------------- calibration


def test_ece_of_a_constructed_case() -> None:
    # bin [.1, .2): accuracy 1/2, confidence .1 -> gap .4; bin [.9, 1]: accuracy 1, conf .9 -> .1
    bins = calibration_bins([0.1, 0.1, 0.9, 0.9], [0, 1, 1, 1], n_bins=10)
    assert len(bins) == 10
    assert bins[1] == CalibrationBin(0.1, 0.2, 2, 0.5, 0.1)
    assert sum(b.count for b in bins) == 4
    assert expected_calibration_error(bins) == pytest.approx((2 * 0.4 + 2 * 0.1) / 4)


def test_ece_puts_a_confidence_of_one_in_the_last_bin_and_empty_bins_are_zero() -> None:
    bins = calibration_bins([1.0, 0.0], [True, False], n_bins=4)
    assert [b.count for b in bins] == [1, 0, 0, 1]
    assert bins[1] == CalibrationBin(0.25, 0.5, 0, 0.0, 0.0)
    assert expected_calibration_error(bins) == 0.0
    assert expected_calibration_error(calibration_bins([], [], n_bins=4)) == 0.0


def test_ece_of_perfectly_calibrated_data_is_small_and_of_overconfident_data_large() -> None:
    rng = np.random.default_rng(20240611)
    n = 200_000
    confidence = rng.uniform(0.0, 1.0, n)
    correct = rng.uniform(0.0, 1.0, n) < confidence
    texts = [f"u{i}" for i in range(n)]
    gold = [Utterance(t, "a") for t in texts]

    def parses(conf: np.ndarray) -> list[Parse]:
        return [
            Parse(t, "a" if ok else "b", float(c), (), ())
            for t, ok, c in zip(texts, correct.tolist(), conf.tolist(), strict=True)
        ]

    calibrated = evaluate(gold, parses(confidence))
    assert calibrated.ece < 0.01
    assert calibrated.intent_accuracy == pytest.approx(0.5, abs=0.01)
    # the same hits claimed with confidence pushed halfway to 1: ECE near E[(1-c)/2] = 0.25
    overconfident = evaluate(gold, parses((1 + confidence) / 2))
    assert overconfident.ece == pytest.approx(0.25, abs=0.01)


def test_ece_rejects_a_confidence_that_is_not_a_probability() -> None:
    with pytest.raises(DataError, match=r"prediction 1: confidence nan"):
        evaluate(GOLD[:2], [PREDICTED[0], parse(T1, "LightsOff", math.nan)])
    with pytest.raises(DataError, match=r"prediction 0: confidence 1\.5"):
        evaluate(GOLD[:1], [parse(T0, "PlayMusic", 1.5)])
    # rounding just above 1 is tolerated and clipped
    e = evaluate(GOLD[:1], [parse(T0, "PlayMusic", 1.0 + 1e-9)])
    assert e.calibration[-1].confidence == 1.0


# --------------------------------------------------------------------------- not recognized


def test_not_recognized_is_wrong_unless_the_gold_intent_is_none_too() -> None:
    gold = [Utterance("blah", None), Utterance("lights on", "LightsOn")]
    predicted = [
        parse("blah", None, 0.2, ranking=(IntentScore("LightsOn", 0.2),)),
        parse("lights on", None, 0.4, ranking=(IntentScore("LightsOn", 0.4),)),
    ]
    e = evaluate(gold, predicted, n_bins=10)
    assert e.intent_accuracy == 0.5
    assert e.exact_match == 0.5
    # the best guess: "blah" is wrong (LightsOn), "lights on" right, with its (no) slots
    assert (e.top_intent_accuracy, e.top_exact_match) == (0.5, 0.5)
    assert e.not_recognized == 1.0
    assert e.confusions == (Confusion("LightsOn", None, 1),)
    # calibration judges the ranking's top guess: (F, .2) and (T, .4)
    assert e.ece == pytest.approx((0.2 + 0.6) / 2)


def test_exact_match_of_the_best_guess_counts_a_declined_parse_by_its_top_intent() -> None:
    gold = [Utterance(T2, "SetAlarm", (span(T2, "7 am", "time"),))]
    declined = parse(T2, None, 0.4, (span(T2, "7 am", "time"),),
                     ranking=(IntentScore("SetAlarm", 0.4),))  # fmt: skip
    e = evaluate(gold, [declined])
    assert (e.exact_match, e.top_exact_match) == (0.0, 1.0)
    wrong_slot = replace(declined, slots=(span(T2, "7", "time"),))
    assert evaluate(gold, [wrong_slot]).top_exact_match == 0.0
    assert "exact match of the best guess" in format_report(e)


def test_not_recognized_with_an_empty_ranking_uses_the_parse_confidence() -> None:
    gold = [Utterance("blah", None), Utterance("lights on", "LightsOn")]
    predicted = [parse("blah", None, 0.9, ranking=()), parse("lights on", None, 0.1, ranking=())]
    e = evaluate(gold, predicted, n_bins=10)
    # top guess None: right for "blah" (.9 -> gap .1), wrong for "lights on" (.1 -> gap .1)
    assert e.ece == pytest.approx(0.1)


# --------------------------------------------------------------------------- bad input


def test_mismatched_lengths_raise_a_voxloop_error_naming_both_counts() -> None:
    with pytest.raises(DataError, match=r"4 gold utterances but 3 predictions") as info:
        evaluate(GOLD, PREDICTED[:3])
    assert isinstance(info.value, VoxloopError)


def test_a_parse_of_another_text_raises_naming_the_index() -> None:
    swapped = [PREDICTED[0], PREDICTED[2], PREDICTED[1], PREDICTED[3]]
    with pytest.raises(DataError, match=r"prediction 1 is for text 'wake me at 7 am'.*'turn off"):
        evaluate(GOLD, swapped)


def test_nothing_to_evaluate_and_bad_bins_raise() -> None:
    with pytest.raises(DataError, match="nothing to evaluate"):
        evaluate([], [])
    with pytest.raises(ConfigError, match="n_bins"):
        evaluate(GOLD, PREDICTED, n_bins=0)


# --------------------------------------------------------------------------- breakdowns


def test_per_domain_is_empty_when_no_gold_utterance_has_a_domain() -> None:
    gold = [Utterance(u.text, u.intent, u.slots, None, u.locale) for u in GOLD]
    e = evaluate(gold, PREDICTED)
    assert e.per_domain == {}
    assert "per domain" not in format_report(e)


def test_per_domain_groups_missing_domains_under_no_domain() -> None:
    gold = [GOLD[0], Utterance(T1, "LightsOff")]
    e = evaluate(gold, PREDICTED[:2])
    assert list(e.per_domain) == [NO_DOMAIN, "music"]
    assert e.per_domain[NO_DOMAIN].n == 1


def test_per_domain_follows_the_gold_domain_not_the_predicted_one() -> None:
    gold = [Utterance(T1, "LightsOff", (), "iot")]
    predicted = [Parse(T1, "LightsOff", 0.9, (), (), domain="music")]
    assert list(evaluate(gold, predicted).per_domain) == ["iot"]


def test_confusions_are_most_frequent_first_ties_by_name_and_truncated() -> None:
    pairs = [("C", "D")] * 2 + [("A", "B")] * 3 + [("B", "A")] + [("A", "C")] * 2 + [("A", "A")] * 5
    gold = [Utterance(f"t{i}", g) for i, (g, _) in enumerate(pairs)]
    predicted = [parse(f"t{i}", p, 0.5) for i, (_, p) in enumerate(pairs)]
    e = evaluate(gold, predicted)
    assert [(c.gold, c.predicted, c.count) for c in e.confusions] == [
        ("A", "B", 3),
        ("A", "C", 2),
        ("C", "D", 2),
        ("B", "A", 1),
    ]
    assert len(evaluate(gold, predicted, top_confusions=2).confusions) == 2
    assert evaluate(gold, predicted, top_confusions=0).confusions == ()


def test_duplicate_spans_count_once() -> None:
    s = span(T2, "7 am", "time")
    e = evaluate([GOLD[2]], [parse(T2, "SetAlarm", 0.9, (s, s))])
    assert (e.predicted_slots, e.slot_f1, e.exact_match) == (1, 1.0, 1.0)


def test_span_value_and_confidence_do_not_affect_matching() -> None:
    s = span(T2, "7 am", "time")
    predicted = Span(s.start, s.end, "time", "seven am", confidence=0.3)
    e = evaluate([GOLD[2]], [parse(T2, "SetAlarm", 0.9, (predicted,))])
    assert e.slot_f1 == 1.0


# --------------------------------------------------------------------------- output


def test_to_json_is_plain_json_with_the_documented_keys() -> None:
    e = evaluate(GOLD, PREDICTED)
    data = json.loads(json.dumps(e.to_json(), allow_nan=False))
    for key in (
        "n",
        "intent_accuracy",
        "slot_precision",
        "slot_recall",
        "slot_f1",
        "exact_match",
        "ece",
        "per_domain",
        "per_locale",
        "per_slot",
        "confusions",
    ):
        assert key in data
    for key in ("intent_accuracy", "slot_precision", "slot_recall", "slot_f1", "ece"):
        assert 0.0 <= data[key] <= 1.0
    assert data["per_domain"]["music"]["slot_f1"] == pytest.approx(0.5)
    assert data["per_slot"]["genre"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert data["confusions"][1] == {"gold": "Weather", "predicted": None, "count": 1}


def test_format_report_shows_headline_percentages_and_breakdowns() -> None:
    report = format_report(evaluate(GOLD, PREDICTED), title="snips test")
    lines = report.splitlines()
    assert lines[:2] == ["snips test", "=========="]
    for figure in ("50.00%", "40.00%", "44.44%", "25.00%"):
        assert figure in report
    assert "per domain" in report and "per locale" in report
    assert "(not recognized)" in report
    assert "worst slot labels by F1" in report
    # a domain with nothing to find shows "-" rather than a misleading 0.00%
    iot = next(line for line in lines if line.startswith("iot"))
    assert iot.split()[-2:] == ["-", "100.00%"]
    # the tables are aligned: every row of the per-domain table is as wide as its header
    start = lines.index("per domain") + 1
    table = lines[start : start + 2 + 4]
    assert len({len(line) for line in table}) == 1


def test_format_report_omits_the_locale_table_for_one_locale() -> None:
    e = evaluate(GOLD[:3], PREDICTED[:3])
    report = format_report(e)
    assert "per locale" not in report
    assert report.startswith("metric")


def test_format_report_lists_the_worst_slots_first_with_support() -> None:
    report = format_report(evaluate(GOLD, PREDICTED), worst_slots=2)
    section = report.split("worst slot labels by F1 (2 of 6)\n")[1].splitlines()
    # F1 0 everywhere but genre and time; among those, larger support first, then by name
    assert section[2].split() == ["city", "0.00%", "0.00%", "0.00%", "1"]
    assert section[3].split() == ["room", "0.00%", "0.00%", "0.00%", "1"]


# --------------------------------------------------------------------------- properties and scale

LABELS = ("a", "b", "c")
spans_st = st.lists(
    st.builds(
        lambda start, length, label: Span(start, start + length, label, "x" * length),
        st.integers(0, 20),
        st.integers(1, 5),
        st.sampled_from(LABELS),
    ),
    max_size=4,
).map(tuple)
utterance_st = st.builds(
    Utterance,
    text=st.just("x" * 25),
    intent=st.sampled_from(["i1", "i2", None]),
    slots=spans_st,
    domain=st.sampled_from(["d1", "d2", None]),
    locale=st.sampled_from(["en-US", "de-DE"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(utterance_st, min_size=1, max_size=12).filter(lambda us: any(u.slots for u in us)))
def test_perfect_predictions_score_one_everywhere(gold: list[Utterance]) -> None:
    predicted = [parse(u.text, u.intent, 1.0, u.slots) for u in gold]
    e = evaluate(gold, predicted)
    assert (e.intent_accuracy, e.slot_precision, e.slot_recall, e.slot_f1, e.exact_match) == (
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
    )
    assert e.ece == 0.0 and e.confusions == ()
    for g in [*e.per_domain.values(), *e.per_locale.values()]:
        assert g.intent_accuracy == g.exact_match == 1.0
        assert g.slot_f1 == (1.0 if g.gold_slots else 0.0)
    assert all(s.f1 == 1.0 for s in e.per_slot.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(spans_st, spans_st), min_size=1, max_size=12))
def test_slot_f1_is_symmetric_under_swapping_gold_and_predicted(
    pairs: list[tuple[tuple[Span, ...], tuple[Span, ...]]],
) -> None:
    def run(gold_spans: list[tuple[Span, ...]], pred_spans: list[tuple[Span, ...]]) -> Evaluation:
        text = "x" * 25
        return evaluate(
            [Utterance(text, "i", s) for s in gold_spans],
            [parse(text, "i", 1.0, s) for s in pred_spans],
        )

    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    forward, backward = run(a, b), run(b, a)
    assert forward.slot_f1 == pytest.approx(backward.slot_f1, abs=1e-12)
    assert forward.slot_precision == pytest.approx(backward.slot_recall, abs=1e-12)
    assert forward.slot_recall == pytest.approx(backward.slot_precision, abs=1e-12)
    assert forward.exact_match == backward.exact_match
    for label in forward.per_slot:
        assert forward.per_slot[label].f1 == pytest.approx(backward.per_slot[label].f1)
    assert 0.0 <= forward.slot_f1 <= 1.0


def test_evaluates_100k_utterances_with_20_domains() -> None:
    text = "play jazz in the kitchen"
    genre, room = span(text, "jazz", "genre"), span(text, "kitchen", "room")
    gold = [Utterance(text, "PlayMusic", (genre, room), f"d{i % 20}") for i in range(100_000)]
    predicted = [
        parse(text, "PlayMusic" if i % 10 else "Other", 0.8, (genre,) if i % 3 else (genre, room))
        for i in range(100_000)
    ]
    e = evaluate(gold, predicted)
    assert e.intent_accuracy == pytest.approx(0.9)
    assert len(e.per_domain) == 20
