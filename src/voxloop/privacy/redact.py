"""Redaction at write time: a `Turn` in, a `Turn` fit for the log out.

Personal spans are the NLU's slots of the configured types plus the pattern (and optional
name gazetteer) matches; overlapping spans merge. Each becomes a typed placeholder
(``[person]``) in the text, and every slot of the parse is moved to the new text, so
``text[start:end] == value`` still holds in the log: personal slots keep their label with the
placeholder as value, other slots keep their words (a pattern inside one is redacted too), and
a placeholder is never under two slots (the slots inside one region become one, see
`redact_text`).
User and session ids are kept, dropped, or replaced by an HMAC-SHA256 of the id keyed by a
secret salt, so per-user analyses (rephrases, users per arm) still work while the id itself
never reaches the log.

`Redactor.turns` raises on any failure; the caller must then write nothing (fail closed). It
runs the detector (if any) once per batch: the server calls it on the log writer's thread.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from voxloop.privacy.config import RedactionConfig
from voxloop.privacy.patterns import PATTERN_LABELS, find_names, find_patterns, first_names
from voxloop.schema import Feedback, Parse, Span, Turn

if TYPE_CHECKING:  # imported only when a config names a detector, so that the package does
    # not import the module `python -m voxloop.privacy.detector` runs (runpy's RuntimeWarning)
    from voxloop.privacy.detector import PersonalDetector

__all__ = ["RedactionFailed", "Redactor", "merge_regions", "personal_spans", "redact_text"]

Region = tuple[int, int, str]


class RedactionFailed(Exception):
    """The redactor could not process a turn: it must not be logged."""


# The labels of the patterns that say what they matched (all but the generic "number"): in a
# merged region they win over an NLU slot's label, which can be wrong about such a span.
_TYPED = frozenset(label for name, label in PATTERN_LABELS.items() if name != "digits")


def merge_regions(regions: list[Region]) -> list[Region]:
    """Sorted, non-overlapping regions; overlaps merge. A merged region is labelled by its
    first typed pattern match (e-mail, phone, card, IBAN, secret) if it holds one — a phone
    number the NLU tagged ``place_name`` is still ``[phone_number]`` — else by its earliest
    region (on a tie the longest)."""
    out: list[Region] = []
    for start, end, label in sorted(regions, key=lambda r: (r[0], -r[1])):
        if out and start < out[-1][1]:
            s, e, lab = out[-1]
            if label in _TYPED and lab not in _TYPED:
                lab = label
            out[-1] = (s, max(e, end), lab)
        else:
            out.append((start, end, label))
    return out


def redact_text(
    text: str, regions: Sequence[Region], slots: Sequence[Span] = ()
) -> tuple[str, tuple[Span, ...]]:
    """Replace each region of ``text`` by ``[label]``; move ``slots`` onto the new text.

    A slot partly inside a merged region keeps its place with the region redacted in it.
    The slots wholly inside a region become one slot over its placeholder (none if a slot
    partly inside holds it already): the slot that covers the region exactly keeps its own
    label; otherwise the slot is labelled with the placeholder's type, with the highest
    confidence of the slots it replaces ("jo" tagged ``person`` and "gmail dot com" tagged
    ``email_address`` inside one spoken e-mail address are one ``email`` slot "[email]").
    """
    merged = merge_regions(list(regions))
    if not merged:
        return text, tuple(slots)
    pieces: list[str] = []
    new_bounds: list[tuple[int, int]] = []
    pos = 0
    length = 0
    for start, end, label in merged:
        pieces.append(text[pos:start])
        length += start - pos
        placeholder = f"[{label}]"
        new_bounds.append((length, length + len(placeholder)))
        pieces.append(placeholder)
        length += len(placeholder)
        pos = end
    pieces.append(text[pos:])
    new_text = "".join(pieces)

    def moved(offset: int, side: str) -> int:
        shift = 0
        for (start, end, _), (ns, ne) in zip(merged, new_bounds, strict=True):
            if offset <= start:
                break
            if offset < end:  # inside a region: the slot stretches over its placeholder
                return ns if side == "start" else ne
            shift = ne - end
        return offset + shift

    def region_of(slot: Span) -> int | None:
        """The index of the region ``slot`` lies wholly inside, if any."""
        for i, (start, end, _) in enumerate(merged):
            if start <= slot.start and slot.end <= end:
                return i
        return None

    slots = [slot for slot in slots if slot.end > slot.start]
    inside = [region_of(slot) for slot in slots]
    taken = {  # regions whose placeholder a slot holds: one reaching out of them, or below
        i
        for slot, region in zip(slots, inside, strict=True)
        if region is None
        for i, (start, end, _) in enumerate(merged)
        if slot.start < end and start < slot.end
    }
    new_slots: list[Span] = []
    for slot, region in zip(slots, inside, strict=True):
        if region is None:
            start, end = moved(slot.start, "start"), moved(slot.end, "end")
            if end > start:
                new_slots.append(Span(start, end, slot.label, new_text[start:end],
                                      slot.confidence))  # fmt: skip
        elif region not in taken:
            taken.add(region)  # its first slot stands for all the slots inside it
            ns, ne = new_bounds[region]
            absorbed = [s for s, r in zip(slots, inside, strict=True) if r == region]
            new_slots.append(_region_slot(merged[region], absorbed, ns, new_text[ns:ne]))
    return new_text, tuple(new_slots)


def _region_slot(region: Region, absorbed: Sequence[Span], start: int, placeholder: str) -> Span:
    """The one slot over a region's placeholder (at ``start`` of the new text) for the
    slots ``absorbed`` by the region (see `redact_text`)."""
    for slot in absorbed:
        if (slot.start, slot.end) == region[:2]:
            return Span(start, start + len(placeholder), slot.label, placeholder, slot.confidence)
    scores = [s.confidence for s in absorbed if s.confidence is not None]
    return Span(start, start + len(placeholder), region[2], placeholder, max(scores, default=None))


def personal_spans(
    text: str,
    slots: Sequence[Span],
    config: RedactionConfig,
    detected: Sequence[Region] = (),
) -> list[Region]:
    """The regions of ``text`` to redact: personal slots, pattern and name matches, plus
    ``detected`` (the detector's regions of ``text``, `PersonalDetector.regions_many`)."""
    regions: list[Region] = [
        (s.start, s.end, s.label) for s in slots if s.label in config.slot_types and s.end > s.start
    ]
    if config.patterns:
        regions += find_patterns(text, config.patterns, min_digits=config.min_digits)
    if config.names:
        regions += find_names(text, first_names())
    regions += detected
    return regions


class Redactor:
    """Apply a `RedactionConfig` to turns and feedback before they are logged."""

    def __init__(self, config: RedactionConfig) -> None:
        self.config = config
        if config.names:
            first_names()  # load (and fail) now, not on the first turn
        self.detector: PersonalDetector | None = None
        if config.detector:
            from voxloop.privacy.detector import PersonalDetector

            self.detector = PersonalDetector.load(config.detector)

    def hash_id(self, value: str | None) -> str | None:
        """HMAC-SHA256 of an id under the secret salt (32 hex digits); None stays None."""
        if value is None:
            return None
        if self.config.salt is None:
            raise RedactionFailed("hashing needs a salt")
        return hmac.new(self.config.salt, value.encode(), hashlib.sha256).hexdigest()[:32]

    def _id(self, name: str, value: str | None) -> str | None:
        action = self.config.action(name)
        if action == "keep":
            return value
        if action == "drop":
            return None
        return self.hash_id(value)

    @property
    def _redacts(self) -> bool:
        return "redact" in (self.config.action("text"), self.config.action("slots"))

    def detect(self, texts: Sequence[str]) -> list[list[Region]]:
        """The detector's regions of each text, in one batch (none without a detector or
        when nothing is redacted)."""
        if self.detector is None or not self._redacts:
            return [[] for _ in texts]
        return self.detector.regions_many(texts)

    def parse(self, parse: Parse, detected: Sequence[Region] | None = None) -> Parse:
        """The parse with its text and slots as the config says; ``detected``: the
        detector's regions of its text when already computed (`detect`)."""
        text_action = self.config.action("text")
        slots_action = self.config.action("slots")
        text, slots = parse.text, parse.slots
        if self._redacts:
            if detected is None:
                (detected,) = self.detect([parse.text])
            regions = personal_spans(parse.text, parse.slots, self.config, detected)
            new_text, new_slots = redact_text(parse.text, regions, parse.slots)
            if text_action == "redact":
                text = new_text
            if slots_action == "redact":
                slots = new_slots
        if text_action == "hash":
            text = self.hash_id(parse.text) or ""
        elif text_action == "drop":
            text = ""
        if slots_action == "drop":
            slots = ()
        return replace(parse, text=text, slots=slots)

    def turn(self, turn: Turn, detected: Sequence[Region] | None = None) -> Turn:
        """One turn redacted (``detected``: as for `parse`)."""
        parse = self.parse(turn.parse, detected)
        return replace(
            turn,
            text=parse.text,
            parse=parse,
            user_id=self._id("user_id", turn.user_id),
            session_id=self._id("session_id", turn.session_id),
        )

    def turns(self, turns: Sequence[Turn]) -> list[Turn]:
        """Turns redacted; raises `RedactionFailed` if any cannot be (log none of them)."""
        try:
            detected = self.detect([t.parse.text for t in turns])
            return [self.turn(t, d) for t, d in zip(turns, detected, strict=True)]
        except RedactionFailed:
            raise
        except Exception as e:
            raise RedactionFailed(f"{type(e).__name__}: {e}") from e

    def feedback(self, feedback: Feedback) -> Feedback:
        """Feedback with its user id treated as the turns' user ids are."""
        try:
            return replace(feedback, user_id=self._id("user_id", feedback.user_id))
        except RedactionFailed:
            raise
        except Exception as e:
            raise RedactionFailed(f"{type(e).__name__}: {e}") from e
