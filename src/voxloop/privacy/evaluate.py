"""How well redaction hides personal data: recall of the corpora's own personal slots.

A gold personal span counts as **hidden** when every non-space character of it lies inside
a redacted region — whatever label the region got (a person tagged as a relation is still
hidden). Redaction sees what the server sees: the parser's predicted slots (or, for an upper
bound, the gold ones) plus the patterns and gazetteer, and the detector's regions scored in
one batch, as the server's log writer scores them. Over-redaction is the share of
characters outside every gold personal span that were redacted anyway (lost for analytics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from voxloop.privacy.config import RedactionConfig
from voxloop.privacy.detector import PersonalDetector
from voxloop.privacy.redact import merge_regions, personal_spans
from voxloop.schema import Parse, Utterance

__all__ = ["RecallReport", "redaction_recall"]


@dataclass
class RecallReport:
    """Hidden / total gold personal spans per slot type, and the over-redaction rate."""

    hidden: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    other_chars: int = 0
    other_redacted: int = 0
    missed: list[tuple[str, str, str]] = field(default_factory=list)  # (label, value, text)

    def recall(self, label: str | None = None) -> float:
        """Recall of one slot type, or of all personal spans."""
        if label is None:
            total = sum(self.total.values())
            return sum(self.hidden.values()) / total if total else 1.0
        return self.hidden.get(label, 0) / self.total[label] if self.total.get(label) else 1.0

    @property
    def over_redaction(self) -> float:
        return self.other_redacted / self.other_chars if self.other_chars else 0.0


def redaction_recall(
    utterances: Sequence[Utterance],
    config: RedactionConfig,
    parses: Sequence[Parse] | None = None,
    labels: set[str] | None = None,
    detector: PersonalDetector | None = None,
) -> RecallReport:
    """Recall of the gold spans whose label is in ``labels`` (default: the config's slot
    types) when redacting with ``parses``' slots (None: the gold slots)."""
    labels = set(config.slot_types) if labels is None else labels
    report = RecallReport()
    detected = (
        detector.regions_many([u.text for u in utterances])
        if detector is not None
        else [[] for _ in utterances]
    )
    for i, u in enumerate(utterances):
        slots = u.slots if parses is None else parses[i].slots
        regions = merge_regions(personal_spans(u.text, slots, config, detected[i]))
        covered = bytearray(len(u.text))
        for start, end, _ in regions:
            covered[start:end] = b"\x01" * (end - start)
        personal = bytearray(len(u.text))
        for span in u.slots:
            if span.label not in labels:
                continue
            personal[span.start : span.end] = b"\x01" * (span.end - span.start)
            report.total[span.label] = report.total.get(span.label, 0) + 1
            if all(covered[j] or u.text[j].isspace() for j in range(span.start, span.end)):
                report.hidden[span.label] = report.hidden.get(span.label, 0) + 1
            else:
                report.missed.append((span.label, span.value, u.text))
        for j, ch in enumerate(u.text):
            if not personal[j] and not ch.isspace():
                report.other_chars += 1
                report.other_redacted += covered[j]
    return report
