"""HWU64 (NLU-Evaluation-Data) cross-validation folds: ``;``-separated CSV.

Header ``answerid;scenario;intent;answer_annotation;answer_from_anno;answer_from_user``.
The intent label is ``scenario_intent`` (``alarm_query``), the domain is the scenario, the
text and slots come from ``answer_annotation`` (``[type : value]``, see
:mod:`voxloop.data.annotation`). ``answer_from_anno`` is the annotation with its brackets
removed; it must agree with the annotation up to spacing and case, else the row is an
error. ``answer_from_user`` (the raw answer, often capitalised and punctuated, sometimes
``null`` or ``xxx``) is ignored.

Quirks of the real fold 1: ``answerid`` is not an id: 453 values are shared by 1,293 train
rows (9 by 18 test rows), so ids repeat; and 38 train and 3 test rows have ``null``, which
becomes ``id=None``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from voxloop.data._reading import ProblemLog, read_lines, require_dir
from voxloop.data.annotation import parse_annotation, reconcile
from voxloop.data.corpus import Corpus
from voxloop.errors import DataError
from voxloop.schema import DEFAULT_LOCALE, Utterance

__all__ = ["HWU64_COLUMNS", "read_hwu64"]

HWU64_COLUMNS = (
    "answerid",
    "scenario",
    "intent",
    "answer_annotation",
    "answer_from_anno",
    "answer_from_user",
)
_NEEDED = ("answerid", "scenario", "intent", "answer_annotation")


def read_hwu64(
    path: str | Path,
    *,
    strict: bool = True,
    fold: int = 1,
    locale: str = DEFAULT_LOCALE,
) -> Corpus:
    """Read one fold of HWU64: ``kfold{fold}_train.csv`` -> train, ``kfold{fold}_test.csv`` -> test.

    ``strict=False`` skips bad rows and lists every problem in the corpus.
    """
    root = require_dir(path)
    log = ProblemLog(strict)
    splits: dict[str, list[Utterance]] = {}
    for split in ("train", "test"):
        file = root / f"kfold{fold}_{split}.csv"
        try:
            lines = read_lines(file)
        except DataError as e:
            log.add(e)
            continue
        splits[split] = _read_rows(file, lines, locale, log)
    return Corpus(spec=f"hwu64:{path}", splits=splits, problems=log.problems)


def _read_rows(file: Path, lines: list[str], locale: str, log: ProblemLog) -> list[Utterance]:
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=";", quotechar='"')
    header = next(reader, None)
    if header is None:
        log.add(DataError("empty file: no header", file=file, line=1))
        return []
    header = [h.strip() for h in header]
    missing = [c for c in _NEEDED if c not in header]
    if missing:
        log.add(
            DataError(
                f"header lacks column(s) {', '.join(missing)} (expected {';'.join(HWU64_COLUMNS)})",
                file=file,
                line=1,
            )
        )
        return []
    col = {name: header.index(name) for name in HWU64_COLUMNS if name in header}
    utterances: list[Utterance] = []
    end_line = reader.line_num
    for row in reader:
        line, end_line = end_line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        try:
            utterances.append(_utterance(row, col, len(header), file, line, locale))
        except DataError as e:
            log.add(e)
    return utterances


def _utterance(
    row: list[str], col: dict[str, int], width: int, file: Path, line: int, locale: str
) -> Utterance:
    if len(row) != width:
        raise DataError(f"{len(row)} fields, expected {width}", file=file, line=line)
    scenario = row[col["scenario"]].strip()
    intent = row[col["intent"]].strip()
    for name, value in (("scenario", scenario), ("intent", intent)):
        if not value:
            raise DataError(f"empty {name}", file=file, line=line, field=name)
    text, spans = parse_annotation(
        row[col["answer_annotation"]], file=file, line=line, field="answer_annotation"
    )
    if not text.strip():
        raise DataError("empty text", file=file, line=line, field="answer_annotation")
    if "answer_from_anno" in col:
        plain = row[col["answer_from_anno"]]
        if plain.strip() and reconcile(text, spans, plain) is None:
            raise DataError(
                f"answer_from_anno {plain!r} does not match the annotation's text {text!r}",
                file=file,
                line=line,
                field="answer_from_anno",
            )
    answer_id = row[col["answerid"]].strip()
    return Utterance(
        text=text,
        intent=f"{scenario}_{intent}",
        slots=spans,
        domain=scenario,
        locale=locale,
        id=None if answer_id in ("", "null") else answer_id,
    )
