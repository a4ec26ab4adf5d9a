"""MASSIVE 1.x in its official JSON-lines format, one or many locales.

Each row has ``id``, ``locale``, ``partition`` (the split: train, dev, test), ``scenario``
(the domain), ``intent`` (already ``scenario_intent``), ``utt`` (the text) and
``annot_utt`` (the same with ``[type : value]`` slots). Other fields (``worker_id``,
``slot_method``, ``judgments``) are accepted and ignored.

The text is ``utt`` and spans are character offsets into it. ``annot_utt`` must agree with
``utt`` up to spacing and case: ja-JP and zh-CN annotations put spaces around the brackets
that the unspaced ``utt`` does not have, and the spans are carried over to ``utt``'s exact
characters; any other disagreement is an error, since it leaves no place for the spans.
Ids are MASSIVE's, shared by the parallel rows of all locales.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voxloop.data._reading import (
    ProblemLog,
    get_str,
    iter_json_objects,
    locale_in_name,
    require_path,
)
from voxloop.data.annotation import parse_annotation, reconcile
from voxloop.data.corpus import Corpus
from voxloop.errors import DataError
from voxloop.schema import Utterance

__all__ = ["read_massive"]

_FIELDS = ("id", "locale", "partition", "scenario", "intent", "utt", "annot_utt")
_PARTITIONS = ("train", "dev", "test")  # the official splits; another name is a typo


def read_massive(
    path: str | Path,
    *,
    strict: bool = True,
    locales: Sequence[str] | None = None,
) -> Corpus:
    """Read one MASSIVE ``.jsonl`` file, or every ``*.jsonl`` file of a folder.

    ``locales`` keeps only those locales; a locale the data does not have is a
    ``DataError`` that lists the ones it has. When every file of the folder is named after
    its locale (``de-DE.jsonl``), only the files of the wanted locales are read.
    ``strict=False`` skips bad rows and lists every problem in the corpus.
    """
    root = require_path(path)
    if root.is_dir():
        files = sorted(p for p in root.glob("*.jsonl") if p.is_file())
        if not files:
            raise DataError("no *.jsonl files in this MASSIVE folder", file=root)
    else:
        files = [root]
    wanted = None if locales is None else list(dict.fromkeys(locales))
    by_name = all(locale_in_name(f.stem) == f.stem for f in files)
    if wanted is not None and len(files) > 1 and by_name:
        _check_locales(wanted, {f.stem for f in files}, root)
        files = [f for f in files if f.stem in wanted]

    log = ProblemLog(strict)
    splits: dict[str, list[Utterance]] = {}
    seen: set[str] = set()
    for file in files:
        for line, obj in iter_json_objects(file, log):
            try:
                utterance, split = _utterance(obj, file, line)
            except DataError as e:
                log.add(e)
                continue
            seen.add(utterance.locale)
            if wanted is None or utterance.locale in wanted:
                splits.setdefault(split, []).append(utterance)
    if wanted is not None:
        _check_locales(wanted, seen, root)
    order = {"train": 0, "dev": 1, "test": 2}
    ordered = dict(sorted(splits.items(), key=lambda kv: (order.get(kv[0], 3), kv[0])))
    return Corpus(spec=f"massive:{path}", splits=ordered, problems=log.problems)


def _check_locales(wanted: Sequence[str], available: set[str], where: Path) -> None:
    unknown = [code for code in wanted if code not in available]
    if unknown:
        have = ", ".join(sorted(available)) or "none"
        raise DataError(f"unknown locale(s) {', '.join(unknown)} (available: {have})", file=where)


def _utterance(obj: dict[str, Any], file: Path, line: int) -> tuple[Utterance, str]:
    values = {key: get_str(obj, key, file=file, line=line) for key in _FIELDS}
    if values["partition"] not in _PARTITIONS:
        raise DataError(
            f"'partition' must be train, dev or test, got {values['partition'][:40]!r}",
            file=file,
            line=line,
            field="partition",
        )
    annotated_text, spans = parse_annotation(
        values["annot_utt"], file=file, line=line, field="annot_utt"
    )
    utt = values["utt"]
    moved = reconcile(annotated_text, spans, utt)
    if moved is None:
        raise DataError(
            f"annot_utt's text {annotated_text!r} does not match utt {utt!r}",
            file=file,
            line=line,
            field="annot_utt",
        )
    utterance = Utterance(
        text=utt,
        intent=values["intent"],
        slots=moved[1],
        domain=values["scenario"],
        locale=values["locale"],
        id=values["id"],
    )
    return utterance, values["partition"]
