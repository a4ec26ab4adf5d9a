"""Specification of `voxloop.dialog.responses`: what to say is data, refused at load when wrong."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from voxloop.data.hass import read_hass
from voxloop.dialog.responses import Catalog, load_catalog, load_domain
from voxloop.errors import ConfigError

GOOD = """
domain = "weather"
confirm_below = 0.4

[[confirm]]
id = "plain"
text = "Did you want the weather?"

[[fallback]]
id = "sorry"
text = "Sorry?"

[intents.HassGetWeather]
slots = ["name"]
results = ["temperature"]

[[intents.HassGetWeather.responses]]
id = "plain"
text = "Here's the weather."

[[intents.HassGetWeather.responses]]
id = "named"
text = "It's {temperature} in {name}."

[intents.HassLightSet]
slots = ["name", "brightness", "color"]
required = ["name", ["brightness", "color"]]

[[intents.HassLightSet.responses]]
id = "named"
text = "Set {name}."

[[intents.HassLightSet.elicit.name]]
id = "which"
text = "Which light?"

[[intents.HassLightSet.elicit.color]]
id = "how"
text = "How bright, or which colour?"
"""


def write(tmp_path: Path, text: str, name: str = "weather.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_domain_file_loads_into_typed_specs(tmp_path: Path) -> None:
    domain = load_domain(write(tmp_path, GOOD))
    weather = domain.intents["HassGetWeather"]
    assert domain.name == "weather" and weather.domain == "weather"
    assert weather.slots == ("name",) and weather.results == ("temperature",)
    assert weather.confirm_below == 0.4
    assert [t.id for t in weather.confirm] == ["plain"]  # inherited from the domain
    assert weather.responses[1].fields == {"name", "temperature"}
    light = domain.intents["HassLightSet"]
    assert light.required == (("name",), ("brightness", "color"))
    assert light.group_key(("brightness", "color")) == "color"
    assert light.group_of("color") == ("brightness", "color")


def test_templates_render_only_when_every_field_has_a_value(tmp_path: Path) -> None:
    named = load_domain(write(tmp_path, GOOD)).intents["HassGetWeather"].responses[1]
    assert named.render({"name": "Paris", "temperature": "21 °C"}) == "It's 21 °C in Paris."
    assert named.render({"name": "Paris"}) is None


# (text to replace, replacement, key path in the error, words of the problem)
BROKEN = [
    ("confirm_below = 0.4", 'confirm_below = 0.4\ncolour = "red"', "colour", "unknown key"),
    (
        'slots = ["name"]\n',
        'slots = ["name"]\nslot = ["x"]\n',
        "intents.HassGetWeather.slot",
        "unknown key",
    ),
    (
        'id = "named"\ntext = "It',
        'id = "named"\ntxt = "x"\ntext = "It',
        "intents.HassGetWeather.responses[1].txt",
        "unknown key",
    ),
    (
        "It's {temperature} in {name}.",
        "It's {temp} in {name}.",
        "intents.HassGetWeather.responses[1].text",
        "{temp}",
    ),
    ("Which light?", "Which {lamp}?", "intents.HassLightSet.elicit.name[0].text", "{lamp}"),
    (
        "How bright, or which colour?",
        "How {color}?",
        "intents.HassLightSet.elicit.color[0].text",
        "{color}",
    ),
    ("Did you want the weather?", "Weather in {name}?", "confirm[0].text", "{name}"),
    (
        "It's {temperature} in {name}.",
        "It's {temperature!r}.",
        "intents.HassGetWeather.responses[1].text",
        "plain names",
    ),
    (
        "It's {temperature} in {name}.",
        "It's {temperature",
        "intents.HassGetWeather.responses[1].text",
        "bad template",
    ),
    (
        'required = ["name", ["brightness", "color"]]',
        'required = ["name", ["brightness", "hue"]]',
        "intents.HassLightSet.required[1]",
        "'hue'",
    ),
    (
        '[[intents.HassLightSet.elicit.name]]\nid = "which"\ntext = "Which light?"\n',
        "",
        "intents.HassLightSet.elicit.name",
        "need prompts",
    ),
    (
        'id = "named"\ntext = "It',
        'id = "plain"\ntext = "It',
        "intents.HassGetWeather.responses[1].id",
        "duplicate id",
    ),
    (
        'id = "named"\ntext = "It',
        'id = "no spaces"\ntext = "It',
        "intents.HassGetWeather.responses[1].id",
        "letters",
    ),
    ("confirm_below = 0.4", "confirm_below = 4", "confirm_below", "[0, 1]"),
    ('slots = ["name"]\n', 'slots = "name"\n', "intents.HassGetWeather.slots", "list of names"),
    (
        "Here's the weather.",
        "Here's the weather in {name}.",
        "intents.HassGetWeather.responses",
        "always be said",
    ),
    ('domain = "weather"', "", "domain", "missing"),
    (
        'results = ["temperature"]',
        'results = ["name"]',
        "intents.HassGetWeather.results",
        "both as slot and as result",
    ),
    (
        "[[intents.HassLightSet.elicit.color]]",
        '[[intents.HassLightSet.elicit.brightness]]\nid = "x"\ntext = "x"\n'
        "[[intents.HassLightSet.elicit.color]]",
        "intents.HassLightSet.elicit.color",
        "same required group",
    ),
    ('domain = "weather"', 'domain = "weather"\n[[', "", "not valid TOML"),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"), BROKEN, ids=[b[2] or "toml" for b in BROKEN]
)
def test_a_broken_domain_file_names_the_file_and_key_path(
    tmp_path: Path, old: str, new: str, key: str, problem: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_domain(path)
    assert info.value.key == (f"{path}:{key}" if key else str(path))
    assert problem in str(info.value)
    assert str(info.value).startswith(f"{path}:")


def test_every_intent_needs_confirmation_prompts_from_somewhere(tmp_path: Path) -> None:
    text = GOOD.replace('[[confirm]]\nid = "plain"\ntext = "Did you want the weather?"\n', "")
    with pytest.raises(ConfigError, match="no confirmation prompts") as info:
        load_domain(write(tmp_path, text))
    assert info.value.key is not None and info.value.key.endswith(":intents.HassGetWeather.confirm")


def test_an_intent_defined_in_two_files_names_both(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.toml")
    write(
        tmp_path,
        GOOD.replace('"weather"', '"other"', 1).replace(
            '[[fallback]]\nid = "sorry"\ntext = "Sorry?"\n', ""
        ),
        "b.toml",
    )
    with pytest.raises(ConfigError, match=r"intent 'HassGetWeather' is also defined in .*a\.toml"):
        load_catalog(tmp_path)


def test_a_catalog_needs_fallback_prompts_exactly_once(tmp_path: Path) -> None:
    without = GOOD.replace('[[fallback]]\nid = "sorry"\ntext = "Sorry?"\n', "")
    with pytest.raises(ConfigError, match="no domain file defines"):
        load_catalog(write(tmp_path, without))
    write(tmp_path, GOOD, "a.toml")
    other = (
        GOOD.replace('"weather"', '"other"', 1)
        .replace("HassGetWeather", "Other")
        .replace("HassLightSet", "Other2")
    )
    write(tmp_path, other, "b.toml")
    with pytest.raises(ConfigError, match="fallback prompts are also defined"):
        load_catalog([tmp_path / "a.toml", tmp_path / "b.toml"])


# ----------------------------------------------------------------------- the packaged files


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_the_packaged_catalog_loads_and_covers_the_named_domains(catalog: Catalog) -> None:
    assert {"general", "devices", "lights", "weather", "media", "music", "timers"} <= set(
        catalog.domains
    )
    for intent in (
        "HassTurnOn",
        "HassLightSet",
        "HassGetWeather",
        "HassMediaSearchAndPlay",
        "HassStartTimer",
        "HassCancelTimer",
        "weather_query",
        "play_music",
    ):
        assert intent in catalog.intents, intent
    assert catalog.fallback


def test_every_packaged_intent_has_several_response_variants_or_is_a_plain_command(
    catalog: Catalog,
) -> None:
    several = [name for name, spec in catalog.intents.items() if len(spec.responses) >= 2]
    assert len(several) >= 0.8 * len(catalog.intents)


def test_action_ids_are_unique(catalog: Catalog) -> None:
    ids = catalog.action_ids()
    assert len(ids) == len(set(ids))
    assert all(
        re.fullmatch(r"[A-Za-z_]+/[a-z_.]+/[A-Za-z0-9_\-]+|fallback/[A-Za-z0-9_\-]+", i)
        for i in ids
    )


def test_packaged_hass_intents_declare_every_slot_the_hass_corpus_fills(catalog: Catalog) -> None:
    corpus = read_hass("en", per_intent=40)
    labels: dict[str, set[str]] = defaultdict(set)
    for split in corpus.splits:
        for utterance in corpus.split(split):
            labels[str(utterance.intent)].update(s.label for s in utterance.slots)
    checked = 0
    for name, spec in catalog.intents.items():
        if name in labels:
            assert labels[name] <= set(spec.slots), (name, labels[name] - set(spec.slots))
            checked += 1
    assert checked >= 20


def test_packaged_massive_intents_declare_every_slot_massive_fills(
    catalog: Catalog, datasets: Path
) -> None:
    labels: dict[str, set[str]] = defaultdict(set)
    with open(datasets / "massive" / "en-US.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            labels[row["intent"]].update(re.findall(r"\[(\w+) :", row["annot_utt"]))
    massive = [name for name in catalog.intents if name in labels]
    assert {"weather_query", "play_music", "music_likeness"} <= set(massive)
    for name in massive:
        assert labels[name] <= set(catalog.intents[name].slots), (
            name,
            labels[name] - set(catalog.intents[name].slots),
        )
