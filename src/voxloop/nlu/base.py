"""The one interface every NLU model implements, and the saved-model manifest.

A saved model is a directory: ``manifest.json`` (format version, model type, labels,
training data, metrics) beside the model's own files. Nothing in it is pickled: loading a
model never executes code from the directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

from voxloop.errors import ConfigError, DataError, ModelFormatError
from voxloop.schema import Parse, Span, Utterance

__all__ = [
    "domains_by_intent",
    "MANIFEST",
    "FORMAT_VERSION",
    "Parser",
    "load_parser",
    "parse_to_dict",
    "read_manifest",
    "span_to_dict",
    "check_replaceable",
    "check_training_set",
    "staged_directory",
    "write_json_atomic",
]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


@runtime_checkable
class Parser(Protocol):
    """Text in, `Parse` out. Hyperparameters in ``__init__``, learned state after ``fit``."""

    def fit(self, train: Sequence[Utterance], dev: Sequence[Utterance] | None = None) -> Self: ...

    def parse(self, texts: Sequence[str]) -> list[Parse]: ...

    def save(self, path: str | Path) -> None: ...

    @classmethod
    def load(cls, path: str | Path) -> Self: ...


def domains_by_intent(utterances: Iterable[Utterance]) -> dict[str, str]:
    """Each intent's most frequent domain in labelled data (what a parse reports)."""
    counts: dict[str, Counter[str]] = {}
    for u in utterances:
        if u.domain is not None:
            counts.setdefault(u.intent or "", Counter())[u.domain] += 1
    return {i: c.most_common(1)[0][0] for i, c in sorted(counts.items())}


def span_to_dict(span: Span) -> dict[str, Any]:
    """A slot as JSON: start, end, label, value, confidence."""
    return {
        "start": span.start,
        "end": span.end,
        "label": span.label,
        "value": span.value,
        "confidence": span.confidence,
    }


def parse_to_dict(parse: Parse) -> dict[str, Any]:
    """A parse as JSON, the one shape the CLI, the server and the log share."""
    return {
        "text": parse.text,
        "intent": parse.intent,
        "confidence": parse.confidence,
        "recognized": parse.intent is not None,
        "ranking": [{"intent": r.intent, "confidence": r.confidence} for r in parse.ranking],
        "slots": [span_to_dict(s) for s in parse.slots],
        "domain": parse.domain,
        "locale": parse.locale,
    }


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader never sees a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_training_set(train: Sequence[Utterance]) -> None:
    """Refuse a training set a parser cannot learn from: empty, an utterance without an
    intent, or a single intent (the model would answer it, sure, to everything)."""
    if not train:
        raise DataError("no training utterances")
    unlabelled = [i for i, u in enumerate(train) if u.intent is None]
    if unlabelled:
        raise DataError(
            f"{len(unlabelled)} training utterance(s) have no intent "
            f"(first: #{unlabelled[0]} {train[unlabelled[0]].text!r})"
        )
    intents = {u.intent for u in train}
    if len(intents) < 2:
        raise DataError(
            f"one intent only ({intents.pop()!r}): a parser needs two or more to tell apart"
        )


def check_replaceable(target: str | Path, marker: str = MANIFEST) -> None:
    """Refuse to let a write replace ``target`` unless it is absent, an empty directory, or
    a directory holding ``marker`` (one this kind of write made): the user's other files
    are never removed by pointing an output option at the wrong folder."""
    target = Path(target)
    if not target.exists():
        parent = next(p for p in target.absolute().parents if p.exists())
        try:  # a real write: permissions alone do not tell (root, read-only mounts, /proc)
            tempfile.TemporaryDirectory(dir=parent).cleanup()
        except OSError as e:
            raise ConfigError(f"cannot write {target}: {parent}: {e.strerror}") from None
        return
    if not target.is_dir():
        raise ModelFormatError(f"{target}: exists and is not a directory; choose another path")
    here = Path.cwd().resolve()
    if target.resolve() in (here, *here.parents):
        raise ModelFormatError(
            f"{target}: is the current directory or contains it; choose another path"
        )
    if any(target.iterdir()) and not (target / marker).is_file():
        raise ModelFormatError(
            f"{target}: exists and is not a voxloop model directory (no {marker}); choose a new "
            "or empty directory (one that holds a model is replaced)"
        )


@contextmanager
def staged_directory(target: str | Path, marker: str = MANIFEST) -> Iterator[Path]:
    """A fresh directory beside ``target`` to write into; when the block succeeds it
    replaces ``target``, when it fails it is deleted, so ``target`` is never half-written.
    A directory already at ``target`` is replaced only if ``check_replaceable`` allows it
    (checked before the block runs, so no work is wasted)."""
    target = Path(target)
    check_replaceable(target, marker)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    except OSError as e:
        raise ConfigError(f"cannot write {target} ({e.strerror})") from None
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a model directory's manifest; say what to do when it is wrong."""
    directory = Path(path)
    file = directory / MANIFEST
    if not directory.is_dir():
        raise ModelFormatError(f"{directory}: no such model directory")
    if not file.is_file():
        raise ModelFormatError(
            f"{directory}: not a voxloop model (no {MANIFEST}); train one with `voxloop train`"
        )
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{file}: damaged manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "voxloop-model":
        raise ModelFormatError(f"{file}: not a voxloop model manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{file}: model format version {version!r}, this voxloop reads version "
            f"{FORMAT_VERSION}; retrain the model with this version"
        )
    for key in ("locales", "intents", "slot_labels"):  # read by every model type
        value = manifest.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(x, str) for x in value)
        ):
            raise ModelFormatError(f"{file}: {key} must be a list of strings")
    return manifest


def load_parser(path: str | Path) -> Parser:
    """Load any saved model, choosing the implementation from its manifest."""
    manifest = read_manifest(path)
    model_type = manifest.get("model_type")
    if model_type == "classical":
        from voxloop.nlu.classical import ClassicalParser

        return ClassicalParser.load(path)
    if model_type == "transformer":
        from voxloop.nlu.runtime import OnnxParser

        return OnnxParser.load(path)
    raise ModelFormatError(f"{path}: unknown model type {model_type!r}")
