"""Which model and which response policy answer a user: the server's experiment routing.

With ``voxloop serve --experiments exp.toml`` every request's ``user_id`` is hashed into
the experiments of the file (`voxloop.experiments.assign`); the arm the user lands in says
which model version parses the text and which policy chooses the response, and the turn
is logged with the experiment and arm. Users in no experiment (holdout, outside coverage,
no ``user_id``) get the active model and the default policy.

The turn log keeps one experiment per turn, so the server refuses a file in which one user
could be in two experiments at once: experiments served together share one layer (their
ranges are disjoint by the config's own rules).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from voxloop.errors import ConfigError
from voxloop.experiments.assign import Assigner
from voxloop.experiments.config import ExperimentsConfig, load_config

__all__ = ["Route", "Router"]


@dataclass(frozen=True, slots=True)
class Route:
    """How one user's turn is answered: the experiment arm (if any), the model version
    (None: the active model) and the response policy (None: no response selection)."""

    experiment: str | None = None
    arm: str | None = None
    model_version: str | None = None
    policy: str | None = None


class Router:
    """Routes users to experiment arms; ``default_policy`` serves users in no experiment."""

    def __init__(
        self, config: ExperimentsConfig | None = None, *, default_policy: str | None = None
    ) -> None:
        self.config = config
        self.default_policy = default_policy
        self._assigner = Assigner(config) if config is not None else None
        self._default = Route(policy=default_policy)
        if config is not None:
            _check_exclusive(config)

    @classmethod
    def from_file(cls, path: str | Path | None, *, default_policy: str | None = None) -> Router:
        """A router for an experiments file (None: no experiments)."""
        config = load_config(path) if path is not None else None
        return cls(config, default_policy=default_policy)

    @property
    def experiments(self) -> tuple[str, ...]:
        return () if self.config is None else tuple(e.name for e in self.config.experiments)

    def route(self, user_id: str | None) -> Route:
        """The route of a user's turn (the same user always gets the same route)."""
        if self._assigner is None or user_id is None:
            return self._default
        for name, arm in self._assigner.arms(user_id).items():
            return Route(
                experiment=name,
                arm=arm.name,
                model_version=arm.model_version,
                policy=arm.policy if arm.policy is not None else self.default_policy,
            )
        return self._default

    def model_versions(self) -> dict[str, str]:
        """Every model version an arm names → which experiment arm needs it."""
        found: dict[str, str] = {}
        for exp in self.config.experiments if self.config is not None else ():
            for arm in exp.arms:
                if arm.model_version is not None:
                    found.setdefault(arm.model_version, f"experiment {exp.name!r} arm {arm.name!r}")
        return found

    def policies(self) -> dict[str, str]:
        """Every policy name an arm (or the default) names → who needs it."""
        found: dict[str, str] = {}
        if self.default_policy is not None:
            found[self.default_policy] = "--default-policy"
        for exp in self.config.experiments if self.config is not None else ():
            for arm in exp.arms:
                if arm.policy is not None:
                    found.setdefault(arm.policy, f"experiment {exp.name!r} arm {arm.name!r}")
        return found

    def check(self, versions: Iterable[str], policies: Iterable[str]) -> None:
        """Fail fast when an arm names a model version or policy the server does not have."""
        for needed, have, what, option in (
            (self.model_versions(), set(versions), "model version", "--extra-model"),
            (self.policies(), set(policies), "policy", "--policy"),
        ):
            for name, user in needed.items():
                if name not in have:
                    loaded = ", ".join(sorted(have)) or "none"
                    raise ConfigError(
                        f"{user} needs {what} {name!r}, which is not loaded (loaded: {loaded}); "
                        f"load it with {option} {name}=DIR",
                        key=what.replace(" ", "_"),
                    )


def _check_exclusive(config: ExperimentsConfig) -> None:
    experiments = config.experiments
    if len(experiments) < 2:
        return
    layers = {e.layer.layer if e.layer is not None else None for e in experiments}
    if None in layers or len(layers) > 1:
        names = ", ".join(e.name for e in experiments)
        raise ConfigError(
            f"experiments {names} can assign the same user at once, and the turn log keeps "
            "one experiment per turn: serve them in one layer (disjoint layer_range) or "
            "serve one experiment at a time",
            key="experiments",
        )
