"""Deterministic assignment of users to arms by hashing.

Every decision is a uniform number in ``(0, 1)`` from a 64-bit BLAKE2b hash of a salt and
the user id (`unit_hash`; ``hashlib``, never Python's per-process ``hash()``), so the same
user gets the same arm on every server, process and Python version, with no state stored.
For one experiment and user, in order:

1. **Holdout** — out of every experiment if ``unit_hash(holdout.salt, user) < fraction``.
2. **Layer** — an experiment in a layer takes the users whose
   ``unit_hash(layer.salt, user)`` falls in its ``[start, end)`` range. Ranges of one layer
   are disjoint (checked at load), so its experiments never share a user; experiments in
   different layers, or in none, are assigned independently of each other.
3. **Coverage** — in the experiment if ``unit_hash(salt, "coverage", user) < coverage``.
4. **Arm** — weighted rendezvous hashing: each arm ``i`` draws
   ``u_i = unit_hash(salt, "arm", name_i, user)`` and the user goes to the arm with the
   smallest ``-log(u_i) / weight_i``. That is a race of exponential clocks, so
   ``P(arm i) = weight_i`` exactly.

**What is guaranteed** (salt, arm names and the user id unchanged):

- *Determinism*: the same config and user id give the same `Assignment`, everywhere.
- *Coverage*: the arm never depends on coverage. Raising coverage only adds users (all
  previously covered users stay, in their arm); lowering it only removes users.
- *Weights*: an arm whose weight grows relative to every other arm keeps all its users.
  When one arm's weight is raised and the others shrink in proportion (any change of a
  two-arm split, or ``[0.6, 0.1, 0.3] -> [0.4, 0.4, 0.2]``), users only ever move *into*
  that arm, and the share that moves is exactly the weight added — the fewest moves any
  scheme can make. The order of arms in the file does not matter.
- *Layers*: experiments of one layer never share a user; widening an experiment's range
  into unused space only adds users; its users keep their arm.
- *Holdout*: raising the holdout fraction only removes users from experiments.

**What is not**: changing an experiment's salt or renaming an arm re-randomises it;
changing a layer's salt reshuffles which experiment of the layer a user sees; any weight
change mixes users exposed to two arms, so analyse it as a new phase (and expect SRM to
fire if the old and new phases are pooled).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from voxloop.errors import ConfigError
from voxloop.experiments.config import Arm, ExperimentConfig, ExperimentsConfig, Holdout

__all__ = ["Assigner", "Assignment", "Reason", "assign", "choose_arm", "unit_hash"]

Reason = Literal["assigned", "holdout", "outside_layer_range", "not_covered"]
"""Why a user has (``"assigned"``) or has not got an arm in an experiment."""

_SEPARATOR = b"\x00"
_SCALE = float(2**53)


def unit_hash(*parts: str) -> float:
    """A uniform number in ``(0, 1)`` from the parts (salt, ..., user id).

    The parts are UTF-8 encoded and joined with NUL bytes (salts cannot contain control
    characters, so no two different part lists share an input); the top 53 bits of the
    64-bit BLAKE2b digest, plus one half, over ``2**53``.
    """
    data = _SEPARATOR.join(part.encode("utf-8") for part in parts)
    value = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")
    return ((value >> 11) + 0.5) / _SCALE


def choose_arm(salt: str, user_id: str, weights: Mapping[str, float]) -> str:
    """The arm for ``user_id`` under ``weights`` by weighted rendezvous hashing."""
    best_name = ""
    best_score = math.inf
    for name, weight in weights.items():
        if weight <= 0:
            continue
        score = -math.log(unit_hash(salt, "arm", name, user_id)) / weight
        if score < best_score:
            best_name, best_score = name, score
    if not best_name:
        raise ConfigError("no arm has a positive weight", key="arms")
    return best_name


@dataclass(frozen=True, slots=True)
class Assignment:
    """The arm a user is in for one experiment (``None`` with the reason why not)."""

    experiment: str
    user_id: str
    arm: str | None
    reason: Reason

    @property
    def assigned(self) -> bool:
        """Whether the user is in the experiment."""
        return self.arm is not None


def assign(
    user_id: str, experiment: ExperimentConfig, *, holdout: Holdout | None = None
) -> Assignment:
    """Assign one user to an arm of ``experiment`` (see the module docstring for the rules)."""
    if not isinstance(user_id, str):
        raise ConfigError(f"user ids are strings, got {type(user_id).__name__}", key="user_id")
    name = experiment.name
    if holdout is not None and unit_hash(holdout.salt, user_id) < holdout.fraction:
        return Assignment(name, user_id, None, "holdout")
    slot = experiment.layer
    if slot is not None and not slot.start <= unit_hash(slot.salt, user_id) < slot.end:
        return Assignment(name, user_id, None, "outside_layer_range")
    if unit_hash(experiment.salt, "coverage", user_id) >= experiment.coverage:
        return Assignment(name, user_id, None, "not_covered")
    arm = choose_arm(experiment.salt, user_id, experiment.weights)
    return Assignment(name, user_id, arm, "assigned")


class Assigner:
    """Assigns users to every experiment of an `ExperimentsConfig` (what a server holds)."""

    def __init__(self, config: ExperimentsConfig) -> None:
        self.config = config
        self._experiments = {exp.name: exp for exp in config.experiments}

    def assign(self, user_id: str, experiment: str) -> Assignment:
        """The user's assignment in one experiment (a `ConfigError` if it is unknown)."""
        exp = self._experiments.get(experiment)
        if exp is None:
            exp = self.config[experiment]  # raises a ConfigError listing the experiments
        return assign(user_id, exp, holdout=self.config.holdout)

    def assign_all(self, user_id: str) -> dict[str, Assignment]:
        """The user's assignment in every experiment, by experiment name."""
        holdout = self.config.holdout
        return {
            name: assign(user_id, exp, holdout=holdout) for name, exp in self._experiments.items()
        }

    def arms(self, user_id: str) -> dict[str, Arm]:
        """The arms the user is in, by experiment name (experiments they are not in omitted)."""
        result: dict[str, Arm] = {}
        for name, assignment in self.assign_all(user_id).items():
            if assignment.arm is not None:
                result[name] = self._experiments[name].arm(assignment.arm)
        return result

    def counts(self, user_ids: Iterable[str], experiment: str) -> dict[str, int]:
        """Users per arm of ``experiment`` among ``user_ids`` (those not assigned skipped)."""
        exp = self.config[experiment]
        counts = dict.fromkeys(exp.arm_names, 0)
        for user_id in user_ids:
            arm = self.assign(user_id, experiment).arm
            if arm is not None:
                counts[arm] += 1
        return counts
