"""A corpus: named splits of utterances, plus the problems found while reading it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from voxloop.errors import DataError
from voxloop.schema import Utterance

__all__ = ["Corpus"]


@dataclass(frozen=True)
class Corpus:
    """Utterances by split name (``train``, ``dev``, ``test``, ...).

    ``problems`` is empty for a corpus read strictly (the first problem raises); a corpus
    read with ``strict=False`` skips bad records and lists every problem here.
    """

    spec: str
    splits: Mapping[str, Sequence[Utterance]]
    problems: tuple[DataError, ...] = field(default=())

    def split(self, name: str) -> Sequence[Utterance]:
        """The utterances of one split; a clear error names the splits there are.

        A corpus whose only split is ``all`` (a plain file without split labels) answers
        every split name with it.
        """
        if name not in self.splits and set(self.splits) == {"all"}:
            return self.splits["all"]
        if name not in self.splits:
            have = ", ".join(sorted(self.splits)) or "none"
            raise DataError(f"no split {name!r} (this corpus has: {have})", file=self.spec)
        return self.splits[name]
