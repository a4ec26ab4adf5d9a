"""Redaction at write time: placeholders, consistent offsets, field actions, config errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxloop.errors import ConfigError
from voxloop.privacy import Redactor, load_redaction_config, parse_redaction_config, redact_text
from voxloop.privacy.patterns import find_patterns, luhn_valid
from voxloop.schema import Feedback, IntentScore, Parse, Span, Turn

SALT = {"VOXLOOP_PRIVACY_SALT": "a-secret-salt-of-some-length"}


def _parse(text: str, *slots: tuple[str, str]) -> Parse:
    spans = tuple(Span(text.index(v), text.index(v) + len(v), label, v) for label, v in slots)
    return Parse(text, "call", 0.9, (IntentScore("call", 0.9),), spans, "phone")


def _turn(parse: Parse, user: str = "alice") -> Turn:
    return Turn("t1", datetime(2026, 11, 1, tzinfo=UTC), parse.text, parse, "v1",
                user_id=user, session_id="s1")  # fmt: skip


def test_personal_slots_become_typed_placeholders_with_consistent_offsets() -> None:
    redactor = Redactor(parse_redaction_config({}, environ=SALT))
    parse = _parse("text jane smith that my mom is at the park", ("person", "jane smith"),
                   ("relation", "mom"), ("place_name", "the park"))  # fmt: skip
    out = redactor.parse(parse)
    assert out.text == "text [person] that my [relation] is at [place_name]"
    assert [s.value for s in out.slots] == ["[person]", "[relation]", "[place_name]"]
    for s in out.slots:
        assert out.text[s.start : s.end] == s.value


def test_patterns_redact_email_phone_card_and_long_digits() -> None:
    redactor = Redactor(parse_redaction_config({"slot_types": []}, environ=SALT))
    text = ("mail bob.o-neil@example.co.uk or call +1 (555) 867-5309, pay with "
            "4111 1111 1111 1111, account 123456789012345678901 at seven")  # fmt: skip
    assert redactor.parse(_parse(text)).text == (
        "mail [email] or call [phone_number], pay with [card_number], account [number] at seven"
    )


def test_a_pattern_names_the_placeholder_where_the_nlu_mislabelled_the_span() -> None:
    """The NLU tagged a phone number and an e-mail address as places: the log says what
    they are (a slot keeps the NLU's label, over the right placeholder)."""
    redactor = Redactor(parse_redaction_config({}, environ=SALT))
    parse = _parse("call 555 867 5309 or mail bob@example.com at the park",
                   ("place_name", "555 867 5309"), ("place_name", "mail bob@example.com"),
                   ("place_name", "the park"))  # fmt: skip
    out = redactor.parse(parse)
    assert out.text == "call [phone_number] or [email] at [place_name]"
    assert [s.value for s in out.slots] == ["[phone_number]", "[email]", "[place_name]"]
    assert {s.label for s in out.slots} == {"place_name"}


def test_spoken_numbers_and_emails_are_redacted() -> None:
    redactor = Redactor(parse_redaction_config({"slot_types": []}, environ=SALT))
    out = redactor.parse(_parse("call five five five one two three four and email jo dot "
                                "smith at gmail dot com"))  # fmt: skip
    assert out.text == "call [phone_number] and email [email]"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("call 555 867 five three oh nine please", "call [phone_number] please"),
        ("call five five five eight six seven fifty three oh nine", "call [phone_number]"),
        ("callme5558675309", "callme[phone_number]"),
        ("my iban is GB82WEST12345698765432", "my iban is [bank_account]"),
        ("iban DE89 3704 0044 0532 0130 00 thanks", "iban [bank_account] thanks"),
        ("mail hans dot meier at bluewin dot ch", "mail [email]"),
        ("my password is hunter2", "my password is [secret]"),
        ("the pin is 4821, ok", "the pin is [secret], ok"),
    ],
)
def test_mixed_spoken_numbers_ibans_and_secrets_are_redacted(text: str, redacted: str) -> None:
    """Forms that reached the log whole before: digits half written, half spoken; digits
    glued to a word; IBANs; e-mail domains outside a short list; passwords and PINs."""
    redactor = Redactor(parse_redaction_config({"slot_types": []}, environ=SALT))
    assert redactor.parse(_parse(text)).text == redacted


def test_spoken_times_years_and_counts_are_kept() -> None:
    for text in ("wake me at seven thirty", "play nineteen ninety nine by prince",
                 "set a timer for twenty five minutes", "turn it up to eleven"):  # fmt: skip
        assert find_patterns(text, ["phone", "digits", "iban", "secret"]) == [], text


def test_short_numbers_times_and_dates_are_kept() -> None:
    text = "wake me at 7 30 on 12 25 and set the thermostat to 21"
    assert find_patterns(text, ["email", "phone", "card", "digits"]) == []


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")


def test_a_slot_around_a_pattern_keeps_its_place() -> None:
    text = "add 5558675309 to my playlist please"
    out = redact_text(text, [(4, 14, "phone_number")], [Span(4, 29, "playlist", text[4:29])])
    new_text, slots = out
    assert new_text == "add [phone_number] to my playlist please"
    assert slots[0].value == "[phone_number] to my playlist"


def test_slots_inside_one_redacted_region_become_one_slot_of_its_type() -> None:
    """The NLU tags "jo" a person and "gmail dot com" an email_address inside a spoken
    e-mail address that the pattern redacts whole: one slot over "[email]", not two."""
    redactor = Redactor(parse_redaction_config(
        {"slot_types": ["person", "relation", "personal_info", "email_address", "place_name"]},
        environ=SALT))  # fmt: skip
    text = "email jo dot smith at gmail dot com about the meeting"
    slots = [Span(text.index(v), text.index(v) + len(v), label, v, confidence)
             for label, v, confidence in (("person", "jo", 0.9), ("email_address",
             "gmail dot com", 0.99), ("event_name", "meeting", 0.8))]  # fmt: skip
    out = redactor.parse(replace(_parse(text), slots=tuple(slots)))
    assert out.text == "email [email] about the meeting"
    assert [(s.label, s.value, s.confidence) for s in out.slots] == [
        ("email", "[email]", 0.99), ("event_name", "meeting", 0.8)]  # fmt: skip
    for s in out.slots:
        assert out.text[s.start : s.end] == s.value


def test_a_region_is_under_at_most_one_slot() -> None:
    text = "call 555 867 5309 and add 5558675309 to my list"
    phone, number = (5, 17, "phone_number"), (26, 36, "phone_number")
    exact = Span(5, 17, "place_name", text[5:17])  # the NLU's label of exactly the region
    part = Span(9, 12, "time", text[9:12])
    around = Span(26, 47, "playlist", text[26:47])  # holds the second region
    inner = Span(26, 29, "person", text[26:29])
    new_text, slots = redact_text(text, [phone, number], [exact, part, around, inner])
    assert new_text == "call [phone_number] and add [phone_number] to my list"
    assert [(s.label, s.value) for s in slots] == [
        ("place_name", "[phone_number]"), ("playlist", "[phone_number] to my list")]  # fmt: skip


def test_ids_are_hashed_with_the_salt_so_per_user_analyses_still_work() -> None:
    redactor = Redactor(parse_redaction_config({}, environ=SALT))
    a, b = redactor.turn(_turn(_parse("hi"))), redactor.turn(_turn(_parse("hello")))
    assert a.user_id == b.user_id and a.user_id not in (None, "alice") and len(a.user_id) == 32
    other = Redactor(parse_redaction_config({}, environ={"VOXLOOP_PRIVACY_SALT": "x" * 20}))
    assert other.turn(_turn(_parse("hi"))).user_id != a.user_id
    feedback = redactor.feedback(Feedback("t1", datetime(2026, 11, 1, tzinfo=UTC), "rating",
                                          1.0, user_id="alice"))  # fmt: skip
    assert feedback.user_id == a.user_id


@pytest.mark.parametrize(
    ("fields", "text", "user"),
    [({"text": "drop", "user_id": "drop"}, "", None),
     ({"text": "keep", "slots": "keep", "user_id": "keep"}, "call jane", "alice")],
)  # fmt: skip
def test_field_actions(fields: dict[str, str], text: str, user: str | None) -> None:
    redactor = Redactor(parse_redaction_config({"fields": fields}, environ=SALT))
    out = redactor.turn(_turn(_parse("call jane", ("person", "jane"))))
    assert (out.text, out.user_id) == (text, user)


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 12), st.sampled_from("abc")),
                max_size=6), st.text(alphabet="ab x@1", min_size=40, max_size=60))  # fmt: skip
def test_every_slot_stays_inside_the_redacted_text(regions: list, text: str) -> None:
    spans = [Span(s, min(s + n, len(text)), lab, text[s : min(s + n, len(text))])
             for s, n, lab in regions]  # fmt: skip
    new_text, slots = redact_text(text, [(s.start, s.end, s.label) for s in spans[::2]], spans)
    for s in slots:
        assert 0 <= s.start < s.end <= len(new_text)
        assert new_text[s.start : s.end] == s.value


def test_unknown_slot_type_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "redact.toml"
    config.write_text('slot_types = ["person", "contact_nme"]\n')
    with pytest.raises(ConfigError) as e:
        load_redaction_config(config, slot_labels=["person", "contact_name"], environ=SALT)
    assert e.value.key == "slot_types[1]" and "contact_name" in str(e.value)


def test_a_config_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    config = tmp_path / "redact.toml"
    config.write_bytes(b'# caf\xe9\nslot_types = ["person"]\n')
    with pytest.raises(ConfigError, match=r"redact.toml: not UTF-8 text \(byte 0xe9 at offset 5\)"):
        load_redaction_config(config, environ=SALT)


@pytest.mark.parametrize(
    ("data", "key"),
    [({"fields": {"txt": "keep"}}, "fields.txt"), ({"fields": {"user_id": "redact"}},
     "fields.user_id"), ({"patterns": ["passport"]}, "patterns[0]"), ({"slot_type": []},
     "slot_type")],
)  # fmt: skip
def test_config_errors_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_redaction_config(data, environ=SALT)
    assert e.value.key == key


def test_hashing_without_a_salt_is_refused() -> None:
    with pytest.raises(ConfigError, match="VOXLOOP_PRIVACY_SALT"):
        parse_redaction_config({}, environ={})


def test_a_failing_redactor_raises_so_nothing_is_logged() -> None:
    from voxloop.privacy import RedactionFailed

    redactor = Redactor(parse_redaction_config({}, environ=SALT))
    bad = Turn("t", datetime(2026, 1, 1, tzinfo=UTC), "x", None, "v")  # type: ignore[arg-type]
    with pytest.raises(RedactionFailed):
        redactor.turns([bad])


def test_the_census_name_gazetteer_catches_names_the_nlu_missed() -> None:
    redactor = Redactor(parse_redaction_config({"names": True}, environ=SALT))
    out = redactor.parse(_parse("remind jessica and will to bring the rose wine"))
    assert out.text == "remind [person] and will to bring the rose wine"


@pytest.mark.parametrize(
    "text",
    ["enter atdfd@yahoo dot com into my contacts", "please add johndoe@yahoocom to my list",
     "send new email to jana dot litt at gmail dot com", "mail jj.nzt@yahoo.co.uk now"],
)  # fmt: skip
def test_half_spoken_email_addresses_of_hwu64_are_redacted_whole(text: str) -> None:
    found = find_patterns(text, ["email"])
    assert len(found) == 1
    start, end, _ = found[0]
    assert "@" in text[start:end] or " at " in text[start:end]
    assert text[end:].split(" ")[0] in ("", "into", "to", "now")
