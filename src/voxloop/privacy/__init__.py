"""Privacy by design: redaction at write time, retention and deletion, differentially
private KPIs, and federated training of the NLU."""

from voxloop.privacy.config import (
    DEFAULT_SLOT_TYPES,
    RedactionConfig,
    load_redaction_config,
    parse_redaction_config,
)
from voxloop.privacy.redact import RedactionFailed, Redactor, redact_text

__all__ = [
    "DEFAULT_SLOT_TYPES",
    "RedactionConfig",
    "RedactionFailed",
    "Redactor",
    "load_redaction_config",
    "parse_redaction_config",
    "redact_text",
]
