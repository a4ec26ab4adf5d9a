"""Experiments defined in a TOML file, validated once at load.

A bad file fails at load with a `ConfigError` naming the key path
(``experiments.nlu-v2.arms.treatment.weight: ...``), never later inside the server or an
analysis. Unknown keys are rejected (with the closest allowed key as a hint)::

    version = 1                       # optional; the format version this file is written in

    [holdout]                         # optional: users kept out of every experiment
    fraction = 0.05
    salt = "holdout-2025"             # default "holdout"

    [layers.response]                 # optional: experiments in a layer never share users
    salt = "layer-response"           # default "layer:<name>"

    [experiments.nlu-v2]
    description = "transformer parser vs the classical one"
    salt = "nlu-v2"                   # default: the experiment's name
    control = "classical"
    coverage = 1.0                    # share of eligible users in the experiment
    layer = "response"                # optional, with a [start, end) range of the layer
    layer_range = [0.0, 0.5]

    [experiments.nlu-v2.arms.classical]
    weight = 0.5
    model_version = "classical-3"     # optional: what the server applies to this arm
    [experiments.nlu-v2.arms.transformer]
    weight = 0.5
    model_version = "transformer-1"
    policy = "linucb"                 # optional

    [experiments.nlu-v2.metrics.task_success]
    type = "proportion"               # proportion | mean | ratio
    role = "primary"                  # primary | secondary | guardrail (default secondary)
    direction = "increase"            # which way is good: increase | decrease
    cuped = false                     # regression-adjust with a pre-period covariate

    [experiments.nlu-v2.analysis]     # every key optional; defaults shown
    engine = "frequentist"            # frequentist | sequential | bayesian
    alpha = 0.05
    correction = "holm"               # holm | bh | none (over arms x primary/secondary)
    difference = "relative"           # relative | absolute
    srm_threshold = 0.001
    sequential_tuning = 5000          # users at which the confidence sequence is tightest
    prior_mean = 0.0                  # Bayesian normal prior on the lift ...
    # prior_sd = 0.3                  # ... flat (improper) when absent
    win_probability = 0.95            # Bayesian: chance to win needed to call a winner

Rules beyond types: at least 2 arms; weights positive and summing to 1; the control is
an arm; at least one primary metric; CUPED only for mean and proportion metrics; salts
unique across experiments, layers and the holdout; ranges of one layer do not overlap.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from voxloop.errors import ConfigError

__all__ = [
    "CONFIG_VERSION",
    "AnalysisSettings",
    "Arm",
    "Correction",
    "DifferenceType",
    "Direction",
    "Engine",
    "ExperimentConfig",
    "ExperimentsConfig",
    "Holdout",
    "Layer",
    "LayerSlot",
    "Metric",
    "MetricRole",
    "MetricType",
    "load_config",
    "loads_config",
    "parse_config",
]

CONFIG_VERSION = 1
"""The experiments file format this version reads."""

Engine = Literal["frequentist", "sequential", "bayesian"]
Correction = Literal["holm", "bh", "none"]
DifferenceType = Literal["relative", "absolute"]
MetricType = Literal["proportion", "mean", "ratio"]
MetricRole = Literal["primary", "secondary", "guardrail"]
Direction = Literal["increase", "decrease"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_SALT = re.compile(r"^[^\x00-\x1f\x7f]+$")
_SUM_TOLERANCE = 1e-9


def _check_name(name: str, key: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"name {name!r} must be letters, digits, '_' or '-' (starting with a letter or digit)",
            key=key,
        )


def _check_salt(salt: str, key: str) -> None:
    if not isinstance(salt, str) or not _SALT.match(salt):
        raise ConfigError("salt must be a non-empty string without control characters", key=key)


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm: its traffic weight and what the server applies to its users."""

    name: str
    weight: float
    model_version: str | None = None
    policy: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric to analyse: its statistic type, its role and which way is good."""

    name: str
    type: MetricType
    role: MetricRole = "secondary"
    direction: Direction = "increase"
    cuped: bool = False
    description: str = ""

    @property
    def higher_is_better(self) -> bool:
        """Whether an increase is good news."""
        return self.direction == "increase"


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    """How an experiment is analysed (see the module docstring for each key)."""

    engine: Engine = "frequentist"
    alpha: float = 0.05
    correction: Correction = "holm"
    difference: DifferenceType = "relative"
    srm_threshold: float = 0.001
    sequential_tuning: float = 5000.0
    prior_mean: float = 0.0
    prior_sd: float | None = None
    win_probability: float = 0.95

    def validate(self, prefix: str = "analysis") -> None:
        """Raise a `ConfigError` naming the first bad setting."""
        _choice(self.engine, Engine, f"{prefix}.engine")
        _choice(self.correction, Correction, f"{prefix}.correction")
        _choice(self.difference, DifferenceType, f"{prefix}.difference")
        if not 0 < self.alpha <= 0.5:
            raise ConfigError(f"must be in (0, 0.5], got {self.alpha!r}", key=f"{prefix}.alpha")
        if not 0 < self.srm_threshold < 1:
            raise ConfigError(
                f"must be in (0, 1), got {self.srm_threshold!r}", key=f"{prefix}.srm_threshold"
            )
        if not (self.sequential_tuning > 0 and math.isfinite(self.sequential_tuning)):
            raise ConfigError(
                f"must be a positive number of users, got {self.sequential_tuning!r}",
                key=f"{prefix}.sequential_tuning",
            )
        if not math.isfinite(self.prior_mean):
            raise ConfigError("must be finite", key=f"{prefix}.prior_mean")
        if self.prior_sd is not None and not (self.prior_sd > 0 and math.isfinite(self.prior_sd)):
            raise ConfigError(f"must be positive, got {self.prior_sd!r}", key=f"{prefix}.prior_sd")
        if not 0.5 < self.win_probability < 1:
            raise ConfigError(
                f"must be in (0.5, 1), got {self.win_probability!r}",
                key=f"{prefix}.win_probability",
            )


@dataclass(frozen=True, slots=True)
class LayerSlot:
    """An experiment's place in a layer: the ``[start, end)`` range of the layer's hash."""

    layer: str
    salt: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    """One experiment: how users are assigned and how the result is analysed.

    Construction validates the experiment on its own (arms, weights, control, metrics,
    settings); `ExperimentsConfig` validates what spans experiments.
    """

    name: str
    arms: tuple[Arm, ...]
    control: str
    metrics: tuple[Metric, ...]
    salt: str = ""
    coverage: float = 1.0
    layer: LayerSlot | None = None
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    description: str = ""

    def __post_init__(self) -> None:
        prefix = f"experiments.{self.name}"
        _check_name(self.name, prefix)
        object.__setattr__(self, "arms", tuple(self.arms))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        if not self.salt:
            object.__setattr__(self, "salt", self.name)
        _check_salt(self.salt, f"{prefix}.salt")
        if len(self.arms) < 2:
            raise ConfigError("an experiment needs at least 2 arms", key=f"{prefix}.arms")
        seen: set[str] = set()
        for arm in self.arms:
            key = f"{prefix}.arms.{arm.name}"
            _check_name(arm.name, key)
            if arm.name in seen:
                raise ConfigError("arm names must be unique", key=key)
            seen.add(arm.name)
            if not (arm.weight > 0 and math.isfinite(arm.weight)):
                raise ConfigError(f"must be positive, got {arm.weight!r}", key=f"{key}.weight")
        total = sum(arm.weight for arm in self.arms)
        if abs(total - 1.0) > _SUM_TOLERANCE:
            raise ConfigError(
                f"arm weights must sum to 1, they sum to {total:g}", key=f"{prefix}.arms"
            )
        if self.control not in seen:
            raise ConfigError(
                f"{self.control!r} is not one of the arms ({', '.join(sorted(seen))})",
                key=f"{prefix}.control",
            )
        if not 0 <= self.coverage <= 1:
            raise ConfigError(f"must be in [0, 1], got {self.coverage!r}", key=f"{prefix}.coverage")
        if self.layer is not None:
            slot = self.layer
            if not 0 <= slot.start < slot.end <= 1:
                raise ConfigError(
                    "must be [start, end) with 0 <= start < end <= 1, "
                    f"got [{slot.start}, {slot.end}]",
                    key=f"{prefix}.layer_range",
                )
        names: set[str] = set()
        for metric in self.metrics:
            key = f"{prefix}.metrics.{metric.name}"
            _check_name(metric.name, key)
            if metric.name in names:
                raise ConfigError("metric names must be unique", key=key)
            names.add(metric.name)
            _choice(metric.type, MetricType, f"{key}.type")
            _choice(metric.role, MetricRole, f"{key}.role")
            _choice(metric.direction, Direction, f"{key}.direction")
            if metric.cuped and metric.type == "ratio":
                raise ConfigError(
                    "CUPED applies to mean and proportion metrics, not ratios", key=f"{key}.cuped"
                )
        if not any(m.role == "primary" for m in self.metrics):
            raise ConfigError(
                'no primary metric: mark the metric that decides the experiment role = "primary"',
                key=f"{prefix}.metrics",
            )
        self.analysis.validate(f"{prefix}.analysis")

    @property
    def arm_names(self) -> tuple[str, ...]:
        """The arms' names, in the file's order."""
        return tuple(arm.name for arm in self.arms)

    @property
    def weights(self) -> dict[str, float]:
        """Each arm's traffic weight."""
        return {arm.name: arm.weight for arm in self.arms}

    def arm(self, name: str) -> Arm:
        """The arm called ``name`` (a `ConfigError` if there is none)."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise ConfigError(f"no arm {name!r}", key=f"experiments.{self.name}.arms")

    def metric(self, name: str) -> Metric:
        """The metric called ``name`` (a `ConfigError` if there is none)."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise ConfigError(f"no metric {name!r}", key=f"experiments.{self.name}.metrics")


@dataclass(frozen=True, slots=True)
class Holdout:
    """Users held out of every experiment: those whose holdout hash is below ``fraction``."""

    fraction: float
    salt: str = "holdout"

    def __post_init__(self) -> None:
        if not 0 <= self.fraction < 1:
            raise ConfigError(f"must be in [0, 1), got {self.fraction!r}", key="holdout.fraction")
        _check_salt(self.salt, "holdout.salt")


@dataclass(frozen=True, slots=True)
class Layer:
    """A set of mutually exclusive experiments, sharing one hash of the user."""

    name: str
    salt: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name, f"layers.{self.name}")
        if not self.salt:
            object.__setattr__(self, "salt", f"layer:{self.name}")
        _check_salt(self.salt, f"layers.{self.name}.salt")


@dataclass(frozen=True, slots=True)
class ExperimentsConfig:
    """Every experiment of a deployment, with its layers and holdout."""

    experiments: tuple[ExperimentConfig, ...]
    layers: tuple[Layer, ...] = ()
    holdout: Holdout | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "experiments", tuple(self.experiments))
        object.__setattr__(self, "layers", tuple(self.layers))
        layers = {layer.name: layer for layer in self.layers}
        if len(layers) != len(self.layers):
            raise ConfigError("layer names must be unique", key="layers")
        salts: dict[str, str] = {}
        if self.holdout is not None:
            salts[self.holdout.salt] = "holdout.salt"
        for layer in self.layers:
            _claim_salt(salts, layer.salt, f"layers.{layer.name}.salt")
        names: set[str] = set()
        slots: dict[str, list[tuple[float, float, str]]] = {}
        for exp in self.experiments:
            prefix = f"experiments.{exp.name}"
            if exp.name in names:
                raise ConfigError("experiment names must be unique", key=prefix)
            names.add(exp.name)
            _claim_salt(salts, exp.salt, f"{prefix}.salt")
            if exp.layer is not None:
                found = layers.get(exp.layer.layer)
                if found is None:
                    raise ConfigError(
                        f"no layer {exp.layer.layer!r} is defined under [layers]",
                        key=f"{prefix}.layer",
                    )
                if found.salt != exp.layer.salt:
                    raise ConfigError(
                        "the slot's salt differs from its layer's", key=f"{prefix}.layer"
                    )
                slots.setdefault(found.name, []).append((exp.layer.start, exp.layer.end, exp.name))
        for layer_name, ranges in slots.items():
            ranges.sort()
            for (_, end, first), (start, _, second) in zip(ranges, ranges[1:], strict=False):
                if start < end:
                    raise ConfigError(
                        f"overlaps the range of {first!r} in layer {layer_name!r}: "
                        "experiments of one layer must take disjoint ranges",
                        key=f"experiments.{second}.layer_range",
                    )

    def __getitem__(self, name: str) -> ExperimentConfig:
        for exp in self.experiments:
            if exp.name == name:
                return exp
        known = ", ".join(exp.name for exp in self.experiments) or "none"
        raise ConfigError(f"no experiment {name!r} (defined: {known})", key=f"experiments.{name}")

    def __iter__(self) -> Iterator[ExperimentConfig]:
        return iter(self.experiments)

    def __len__(self) -> int:
        return len(self.experiments)


def _claim_salt(salts: dict[str, str], salt: str, key: str) -> None:
    if salt in salts:
        raise ConfigError(
            f"salt {salt!r} is already used by {salts[salt]}: two hashes with one salt are "
            "the same hash, so their assignments would be correlated",
            key=key,
        )
    salts[salt] = key


def _choice(value: object, options: Any, key: str) -> None:
    allowed = get_args(options)
    if value not in allowed:
        raise ConfigError(f"must be one of {', '.join(allowed)}, got {value!r}", key=key)


# --------------------------------------------------------------------------- TOML loading


class _Table:
    """A TOML table being read: typed getters that name the key path, unknown keys refused."""

    def __init__(self, data: object, path: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"must be a table, got {type(data).__name__}", key=path or None)
        self.data = data
        self.path = path
        for key in data:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                choices = ", ".join(allowed)
                raise ConfigError(f"unknown key (allowed: {choices}){extra}", key=self.key(key))

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> object:
        if name not in self.data:
            raise ConfigError("is required", key=self.key(name))
        return self.data[name]

    def string(self, name: str, default: str | None = None) -> str:
        if name not in self.data and default is not None:
            return default
        value = self.raw(name)
        if not isinstance(value, str):
            raise ConfigError(f"must be a string, got {value!r}", key=self.key(name))
        return value

    def optional_string(self, name: str) -> str | None:
        return self.string(name) if name in self.data else None

    def number(self, name: str, default: float | None = None) -> float:
        if name not in self.data and default is not None:
            return default
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"must be a number, got {value!r}", key=self.key(name))
        if not math.isfinite(value):
            raise ConfigError(f"must be finite, got {value!r}", key=self.key(name))
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        if name not in self.data:
            return default
        value = self.data[name]
        if not isinstance(value, bool):
            raise ConfigError(f"must be true or false, got {value!r}", key=self.key(name))
        return value

    def tables(self, name: str) -> Iterator[tuple[str, object]]:
        value = self.data.get(name, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"must be a table, got {type(value).__name__}", key=self.key(name))
        for sub, content in value.items():
            _check_name(sub, f"{self.key(name)}.{sub}")
            yield sub, content


def _arm(name: str, data: object, path: str) -> Arm:
    table = _Table(data, path, ("weight", "model_version", "policy", "description"))
    return Arm(
        name,
        table.number("weight"),
        model_version=table.optional_string("model_version"),
        policy=table.optional_string("policy"),
        description=table.string("description", ""),
    )


def _metric(name: str, data: object, path: str) -> Metric:
    table = _Table(data, path, ("type", "role", "direction", "cuped", "description"))
    metric = Metric(
        name,
        table.string("type"),  # type: ignore[arg-type]  # checked below
        role=table.string("role", "secondary"),  # type: ignore[arg-type]
        direction=table.string("direction", "increase"),  # type: ignore[arg-type]
        cuped=table.boolean("cuped", False),
        description=table.string("description", ""),
    )
    _choice(metric.type, MetricType, f"{path}.type")
    _choice(metric.role, MetricRole, f"{path}.role")
    _choice(metric.direction, Direction, f"{path}.direction")
    return metric


def _analysis(data: object, path: str) -> AnalysisSettings:
    defaults = AnalysisSettings()
    table = _Table(
        data,
        path,
        (
            "engine",
            "alpha",
            "correction",
            "difference",
            "srm_threshold",
            "sequential_tuning",
            "prior_mean",
            "prior_sd",
            "win_probability",
        ),
    )
    settings = AnalysisSettings(
        engine=table.string("engine", defaults.engine),  # type: ignore[arg-type]
        alpha=table.number("alpha", defaults.alpha),
        correction=table.string("correction", defaults.correction),  # type: ignore[arg-type]
        difference=table.string("difference", defaults.difference),  # type: ignore[arg-type]
        srm_threshold=table.number("srm_threshold", defaults.srm_threshold),
        sequential_tuning=table.number("sequential_tuning", defaults.sequential_tuning),
        prior_mean=table.number("prior_mean", defaults.prior_mean),
        prior_sd=table.number("prior_sd") if table.has("prior_sd") else None,
        win_probability=table.number("win_probability", defaults.win_probability),
    )
    settings.validate(path)
    return settings


def _experiment(name: str, data: object, layers: Mapping[str, Layer]) -> ExperimentConfig:
    path = f"experiments.{name}"
    table = _Table(
        data,
        path,
        (
            "description",
            "salt",
            "control",
            "coverage",
            "layer",
            "layer_range",
            "arms",
            "metrics",
            "analysis",
        ),
    )
    slot = None
    if table.has("layer"):
        layer_name = table.string("layer")
        if layer_name not in layers:
            defined = ", ".join(layers) or "none"
            raise ConfigError(
                f"no layer {layer_name!r} is defined under [layers] (defined: {defined})",
                key=table.key("layer"),
            )
        bounds = table.raw("layer_range")
        if (
            not isinstance(bounds, list)
            or len(bounds) != 2
            or any(isinstance(b, bool) or not isinstance(b, int | float) for b in bounds)
        ):
            raise ConfigError(
                f"must be [start, end], two numbers in [0, 1], got {bounds!r}",
                key=table.key("layer_range"),
            )
        slot = LayerSlot(layer_name, layers[layer_name].salt, float(bounds[0]), float(bounds[1]))
    elif table.has("layer_range"):
        raise ConfigError("a layer_range needs a layer", key=table.key("layer_range"))
    arms = tuple(_arm(arm, content, f"{path}.arms.{arm}") for arm, content in table.tables("arms"))
    metrics = tuple(
        _metric(metric, content, f"{path}.metrics.{metric}")
        for metric, content in table.tables("metrics")
    )
    analysis = _analysis(table.data.get("analysis", {}), f"{path}.analysis")
    return ExperimentConfig(
        name,
        arms,
        table.string("control"),
        metrics,
        salt=table.string("salt", name),
        coverage=table.number("coverage", 1.0),
        layer=slot,
        analysis=analysis,
        description=table.string("description", ""),
    )


def parse_config(data: Mapping[str, Any]) -> ExperimentsConfig:
    """Validate an already-decoded TOML document (a dict) into an `ExperimentsConfig`."""
    top = _Table(data, "", ("version", "holdout", "layers", "experiments"))
    if top.has("version"):
        version = top.raw("version")
        if isinstance(version, bool) or version != CONFIG_VERSION:
            raise ConfigError(
                f"this voxloop reads experiments files of version {CONFIG_VERSION}, not "
                f"{version!r}: upgrade voxloop or rewrite the file",
                key="version",
            )
    holdout = None
    if top.has("holdout"):
        table = _Table(top.raw("holdout"), "holdout", ("fraction", "salt"))
        holdout = Holdout(table.number("fraction"), table.string("salt", "holdout"))
    layers: dict[str, Layer] = {}
    for name, content in top.tables("layers"):
        table = _Table(content, f"layers.{name}", ("salt", "description"))
        layers[name] = Layer(name, table.string("salt", ""), table.string("description", ""))
    experiments = tuple(
        _experiment(name, content, layers) for name, content in top.tables("experiments")
    )
    if not experiments:
        raise ConfigError("defines no experiment", key="experiments")
    return ExperimentsConfig(experiments, tuple(layers.values()), holdout)


def loads_config(text: str) -> ExperimentsConfig:
    """Parse and validate the text of an experiments TOML file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}") from None
    return parse_config(data)


def load_config(path: str | Path) -> ExperimentsConfig:
    """Read and validate an experiments TOML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read experiments file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
            f"{error.start})"
        ) from None
    try:
        return loads_config(text)
    except ConfigError as error:
        raise ConfigError(f"{error.problem} (in {path})", key=error.key) from None
