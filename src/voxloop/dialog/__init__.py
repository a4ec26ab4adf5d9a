"""Dialog: from a parse and a small session state, the candidate responses of a turn.

- `responses`: per-domain templates, required slots and prompts, loaded from TOML files
  (``dialog/domains/``) and checked at load.
- `state`: the `SessionState` a session keeps between turns.
- `policy`: `candidates` — slot elicitation, confirmation, templated responses, fallback.
"""

from voxloop.dialog.policy import Candidate, action_id, candidates, default_catalog
from voxloop.dialog.responses import (
    Catalog,
    Domain,
    IntentSpec,
    Template,
    load_catalog,
    load_domain,
)
from voxloop.dialog.state import CONFIRMATION, SessionState

__all__ = [
    "CONFIRMATION",
    "Candidate",
    "Catalog",
    "Domain",
    "IntentSpec",
    "SessionState",
    "Template",
    "action_id",
    "candidates",
    "default_catalog",
    "load_catalog",
    "load_domain",
]
