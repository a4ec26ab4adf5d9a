"""SLURP text annotations: JSON lines ``train.jsonl``, ``devel.jsonl``, ``test.jsonl``.

Each row has ``slurp_id``, ``sentence``, ``sentence_annotation`` (``[type : value]``),
``scenario``, ``action``, ``intent``; ``tokens``, ``entities`` and ``recordings`` are
ignored. The domain is the scenario and the id is ``slurp_id``.

Decisions, from the real devel and test files:

- **intent** is ``scenario_action``. The ``intent`` field disagrees with it on 67 rows: 66
  carry the action alone (``music`` for ``play_music``, ``query`` for ``weather_query``)
  and one says ``email_sendemail`` for ``scenario=email, action=query``. MASSIVE en-US,
  built from the same rows, uses ``scenario_action`` for all of them. ``intent`` is used
  only when ``scenario`` or ``action`` is missing.
- **text** is ``sentence`` (lower-cased transcript) when the annotation differs from it
  only in case or spacing (52 rows have capitals in the annotation only); the spans are
  carried over. On the 16 rows where the words differ (``rihana`` / ``rihanna``,
  ``@comcast`` / ``at comcast``) the annotation's own text is used, since the spans are
  defined over it. Without ``sentence`` the annotation's text is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voxloop.data._reading import (
    ProblemLog,
    get_optional_str,
    get_str,
    iter_json_objects,
    require_dir,
)
from voxloop.data.annotation import parse_annotation, reconcile
from voxloop.data.corpus import Corpus
from voxloop.errors import DataError
from voxloop.schema import DEFAULT_LOCALE, Utterance

__all__ = ["SLURP_FILES", "read_slurp"]

SLURP_FILES = {
    "train.jsonl": "train",
    "train_synthetic.jsonl": "train_synthetic",
    "devel.jsonl": "dev",
    "test.jsonl": "test",
}


def read_slurp(path: str | Path, *, strict: bool = True, locale: str = DEFAULT_LOCALE) -> Corpus:
    """Read the SLURP files present in a folder (``devel.jsonl`` -> split ``dev``).

    ``strict=False`` skips bad rows and lists every problem in the corpus.
    """
    root = require_dir(path)
    present = [
        (root / name, split) for name, split in SLURP_FILES.items() if (root / name).is_file()
    ]
    if not present:
        raise DataError(f"no SLURP files ({', '.join(SLURP_FILES)}) in this folder", file=root)
    log = ProblemLog(strict)
    splits: dict[str, list[Utterance]] = {}
    for file, split in present:
        rows: list[Utterance] = []
        for line, obj in iter_json_objects(file, log):
            try:
                rows.append(_utterance(obj, file, line, locale))
            except DataError as e:
                log.add(e)
        splits[split] = rows
    return Corpus(spec=f"slurp:{path}", splits=splits, problems=log.problems)


def _utterance(obj: dict[str, Any], file: Path, line: int, locale: str) -> Utterance:
    slurp_id = obj.get("slurp_id")
    if slurp_id is not None and (isinstance(slurp_id, bool) or not isinstance(slurp_id, int | str)):
        raise DataError(
            f"'slurp_id' must be an integer or string, got {type(slurp_id).__name__}",
            file=file,
            line=line,
            field="slurp_id",
        )
    annotated = get_str(obj, "sentence_annotation", file=file, line=line)
    text, spans = parse_annotation(annotated, file=file, line=line, field="sentence_annotation")
    if not text.strip():
        raise DataError("empty text", file=file, line=line, field="sentence_annotation")
    sentence = get_optional_str(obj, "sentence", file=file, line=line)
    if sentence:
        moved = reconcile(text, spans, sentence)
        if moved is not None:
            text, spans = moved
    scenario = get_optional_str(obj, "scenario", file=file, line=line)
    action = get_optional_str(obj, "action", file=file, line=line)
    if scenario and action:
        intent = f"{scenario}_{action}"
    else:
        intent = get_str(obj, "intent", file=file, line=line)
    return Utterance(
        text=text,
        intent=intent,
        slots=spans,
        domain=scenario or None,
        locale=locale,
        id=None if slurp_id is None else str(slurp_id),
    )
