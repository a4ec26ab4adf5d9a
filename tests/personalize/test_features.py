"""Specification of `voxloop.personalize.features`: a turn becomes a fixed-size vector."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any

import numpy as np
import pytest

from voxloop.errors import ConfigError, DataError
from voxloop.personalize.features import DENSE, Context, Featurizer

CONTEXT = Context(
    user_id="alice",
    intent="HassGetWeather",
    domain="weather",
    hour=7,
    device="speaker",
    attributes={"plan": "premium", "affinity": 0.5},
)


def test_context_vector_has_the_configured_size_bias_and_cyclic_hour() -> None:
    x = Featurizer(32).context_vector(CONTEXT)
    assert x.shape == (32,)
    assert x[0] == 1.0
    assert x[1] == pytest.approx(math.sin(2 * math.pi * 7 / 24))
    assert x[2] == pytest.approx(math.cos(2 * math.pi * 7 / 24))
    # hour 23 and hour 0 are neighbours on the circle
    late, early = (Featurizer(32).context_vector(Context(hour=h))[1:3] for h in (23, 0))
    assert np.linalg.norm(late - early) < 0.3


def test_hashing_is_stable_across_processes_and_versions() -> None:
    # Golden values: a saved policy depends on these buckets; changing the hash breaks it.
    for context, token, golden in (
        (Context(user_id="alice"), "u=alice", {17: -1.0}),
        (Context(device="speaker"), "dev=speaker", {26: 1.0}),
    ):
        x = Featurizer(64).context_vector(context)
        nonzero = {int(i): float(x[i]) for i in np.flatnonzero(x[DENSE:]) + DENSE}
        assert nonzero == golden
        # ... which is the documented rule: 64-bit BLAKE2b, bucket from the high bits, sign
        # from the lowest bit
        h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        assert golden == {DENSE + (h >> 1) % (64 - DENSE): 1.0 if h & 1 else -1.0}


def test_every_field_of_the_context_changes_the_vector() -> None:
    f = Featurizer(256)
    base = f.context_vector(CONTEXT)
    changes: tuple[dict[str, Any], ...] = (
        {"user_id": "bob"},
        {"intent": "HassTurnOn"},
        {"domain": "devices"},
        {"hour": 19},
        {"device": "phone"},
        {"attributes": {"plan": "free", "affinity": 0.5}},
        {"attributes": {"plan": "premium", "affinity": 2.0}},
    )
    for change in changes:
        other = dataclasses.replace(CONTEXT, **change)
        assert not np.array_equal(f.context_vector(other), base), change


def test_numeric_attributes_carry_their_value() -> None:
    f = Featurizer(64)
    one = f.context_vector(Context(attributes={"affinity": 1.0}))
    three = f.context_vector(Context(attributes={"affinity": 3.0}))
    np.testing.assert_allclose(three[DENSE:], 3 * one[DENSE:])


def test_without_action_crosses_every_row_is_the_context_vector() -> None:
    f = Featurizer(64)
    X = f.matrix(CONTEXT, ["short", "long", "follow_up"])
    assert X.shape == (3, 64)
    for row in X:
        np.testing.assert_array_equal(row, f.context_vector(CONTEXT))


def test_action_crosses_make_rows_differ_per_action_and_context() -> None:
    f = Featurizer(256, action_crosses=True)
    X = f.matrix(CONTEXT, ["short", "long"])
    assert not np.array_equal(X[0], X[1])
    # the same action in another user's context gets different crossed features
    Y = f.matrix(dataclasses.replace(CONTEXT, user_id="bob"), ["short", "long"])
    assert not np.array_equal(X[0] - X[1], Y[0] - Y[1])


@pytest.mark.parametrize(
    ("context", "field"),
    [
        (Context(hour=24), "hour"),
        (Context(hour=-1), "hour"),
        (Context(attributes={"age": float("nan")}), "attributes.age"),
        (Context(attributes={"tags": ["a"]}), "attributes.tags"),  # type: ignore[dict-item]
    ],
)
def test_bad_context_values_name_the_field(context: Context, field: str) -> None:
    with pytest.raises(DataError) as info:
        Featurizer(32).context_vector(context)
    assert info.value.field == field


@pytest.mark.parametrize("dim", [0, 4, 7, 8.5, True])
def test_too_small_or_non_integer_dim_is_a_config_error(dim: object) -> None:
    with pytest.raises(ConfigError, match="dim"):
        Featurizer(dim)  # type: ignore[arg-type]


def test_round_trips_through_its_dict() -> None:
    f = Featurizer(48, action_crosses=True)
    assert Featurizer.from_dict(f.to_dict()) == f
    with pytest.raises(ConfigError, match="featurizer"):
        Featurizer.from_dict({"dim": 48, "typo": 1})
