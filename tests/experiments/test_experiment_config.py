"""Specification of `voxloop.experiments.config`: a file is validated once, at load, and
every mistake names its key path."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from voxloop.errors import ConfigError
from voxloop.experiments.config import (
    Arm,
    ExperimentConfig,
    LayerSlot,
    Metric,
    load_config,
    loads_config,
    parse_config,
)

EXAMPLE = Path(__file__).parent / "data" / "experiments.toml"


@pytest.fixture
def document() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_the_example_file_loads_with_every_setting():
    config = load_config(EXAMPLE)
    assert [e.name for e in config] == ["nlu-v2", "bandit", "templates"]
    assert config.holdout is not None and config.holdout.fraction == 0.05
    nlu = config["nlu-v2"]
    assert nlu.control == "classical" and nlu.weights == {"classical": 0.5, "transformer": 0.5}
    assert nlu.arm("transformer").model_version == "transformer-1"
    assert nlu.metric("turns_per_user").cuped
    assert nlu.metric("latency_ms").role == "guardrail"
    assert not nlu.metric("latency_ms").higher_is_better
    bandit = config["bandit"]
    assert bandit.layer == LayerSlot("response", "layer-response", 0.0, 0.5)
    assert bandit.analysis.engine == "sequential" and bandit.analysis.sequential_tuning == 20000
    templates = config["templates"]
    assert templates.salt == "templates"  # defaults to the name
    assert templates.analysis.prior_sd == 0.3


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    if value is _DELETE:
        del doc[last]
    else:
        doc[last] = value


_DELETE = object()

CASES = [
    ("colour", "blue", "colour", "unknown key"),
    ("experiments.nlu-v2.owner", "me", "experiments.nlu-v2.owner", "unknown key"),
    ("experiments.nlu-v2.arms.transformer.wieght", 0.5,
     "experiments.nlu-v2.arms.transformer.wieght", "did you mean 'weight'"),
    ("experiments.nlu-v2.metrics.task_success.kind", "x",
     "experiments.nlu-v2.metrics.task_success.kind", "unknown key"),
    ("experiments.nlu-v2.analysis.alfa", 0.1, "experiments.nlu-v2.analysis.alfa",
     "did you mean 'alpha'"),
    ("experiments.nlu-v2.arms.transformer.weight", 0.6, "experiments.nlu-v2.arms",
     "sum to 1"),
    ("experiments.nlu-v2.arms.transformer.weight", "half",
     "experiments.nlu-v2.arms.transformer.weight", "must be a number"),
    ("experiments.nlu-v2.arms.transformer.weight", _DELETE,
     "experiments.nlu-v2.arms.transformer.weight", "is required"),
    ("experiments.nlu-v2.control", "baseline", "experiments.nlu-v2.control",
     "not one of the arms"),
    ("experiments.templates.salt", "nlu-v2", "experiments.templates.salt", "already used"),
    ("experiments.templates.layer_range", [0.4, 1.0], "experiments.templates.layer_range",
     "overlaps the range of 'bandit'"),
    ("experiments.templates.layer_range", [0.5, 1.5], "experiments.templates.layer_range",
     "0 <= start < end <= 1"),
    ("experiments.templates.layer", "ranking", "experiments.templates.layer", "no layer"),
    ("experiments.nlu-v2.layer_range", [0.0, 0.2], "experiments.nlu-v2.layer_range",
     "needs a layer"),
    ("experiments.nlu-v2.metrics.defects_per_turn.cuped", True,
     "experiments.nlu-v2.metrics.defects_per_turn.cuped", "not ratios"),
    ("experiments.nlu-v2.metrics.task_success.role", "secondary",
     "experiments.nlu-v2.metrics", "no primary metric"),
    ("experiments.nlu-v2.metrics.task_success.type", "count",
     "experiments.nlu-v2.metrics.task_success.type", "must be one of"),
    ("experiments.nlu-v2.analysis.engine", "bootstrap", "experiments.nlu-v2.analysis.engine",
     "must be one of"),
    ("experiments.nlu-v2.analysis.alpha", 0.9, "experiments.nlu-v2.analysis.alpha",
     "(0, 0.5]"),
    ("experiments.nlu-v2.analysis.correction", "bonferroni",
     "experiments.nlu-v2.analysis.correction", "must be one of"),
    ("experiments.nlu-v2.coverage", 1.5, "experiments.nlu-v2.coverage", "[0, 1]"),
    ("experiments.nlu-v2.metrics.task_success.cuped", "yes",
     "experiments.nlu-v2.metrics.task_success.cuped", "true or false"),
    ("experiments.nlu-v2.arms.transformer", _DELETE, "experiments.nlu-v2.arms",
     "at least 2 arms"),
    ("experiments.nlu-v2.arms.bad name", {"weight": 0.0}, "experiments.nlu-v2.arms.bad name",
     "letters, digits"),
    ("holdout.fraction", 1.0, "holdout.fraction", "[0, 1)"),
    ("layers.response.salt", "holdout-2025", "layers.response.salt", "already used"),
    ("version", 2, "version", "version 1"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "value", "key", "message"), CASES)
def test_config_errors_name_the_key(document, path, value, key, message):
    doc = copy.deepcopy(document)
    _set(doc, path, value)
    with pytest.raises(ConfigError) as error:
        parse_config(doc)
    assert error.value.key == key
    assert message in error.value.problem
    assert str(error.value).startswith(f"{key}: ")


def test_invalid_toml_and_a_missing_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        loads_config("[experiments.x\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="defines no experiment"):
        loads_config("version = 1\n")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b"# caf\xe9\nversion = 1\n")
    with pytest.raises(ConfigError, match=r"latin1.toml: not UTF-8 text \(byte 0xe9 at offset 5\)"):
        load_config(latin1)


def test_a_file_error_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(EXAMPLE.read_text().replace("weight = 0.34", "weight = 0.4"))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == "experiments.bandit.arms"
    assert str(path) in str(error.value)


def test_unknown_experiment_lookup_lists_the_defined_ones():
    with pytest.raises(ConfigError, match="defined: nlu-v2, bandit, templates"):
        load_config(EXAMPLE)["nlu-v3"]


def test_experiments_built_in_python_are_validated_the_same_way():
    metric = Metric("success", "proportion", role="primary")
    ExperimentConfig("ok", (Arm("a", 0.5), Arm("b", 0.5)), "a", (metric,))
    with pytest.raises(ConfigError) as error:
        ExperimentConfig("bad", (Arm("a", 0.5), Arm("a", 0.5)), "a", (metric,))
    assert error.value.key == "experiments.bad.arms.a"
