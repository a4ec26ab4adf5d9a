"""Personalization: contextual bandits that choose a response per user, with propensities,
and off-policy evaluation of a new policy from logged turns.

- `features`: the `Context` of a turn and the `Featurizer` that makes it a vector.
- `bandits`: `EpsilonGreedy`, `LinUCB`, `LinearThompson`; `Decision`; save/load.
- `simulator`: `UserSimulator`, users with latent preferences and exact policy values.
- `ope`: IPS, SNIPS, DM, DR, switch-DR, DR-OS with bootstrap CIs over columnar logs;
  `evaluate_policy` for a saved policy over logged turns.
- `reward`: one reward per turn from its feedback signals.
"""

from voxloop.personalize.bandits import (
    Decision,
    EpsilonGreedy,
    LinearPolicy,
    LinearThompson,
    LinUCB,
    Policy,
    load_policy,
)
from voxloop.personalize.features import Context, Featurizer
from voxloop.personalize.reward import reward_from_feedback

__all__ = [
    "Context",
    "Decision",
    "EpsilonGreedy",
    "Featurizer",
    "LinUCB",
    "LinearPolicy",
    "LinearThompson",
    "Policy",
    "load_policy",
    "reward_from_feedback",
]
