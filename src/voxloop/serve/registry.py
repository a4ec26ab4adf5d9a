"""Model registry: versioned model directories, loaded side by side, one active.

A version is loaded (and warmed up with a parse) before it can take traffic; `activate`
then swaps one reference, so batches already running finish on the old model and the next
batch runs on the new one: no request fails during a swap.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from voxloop.errors import ConfigError, ModelFormatError, VoxloopError
from voxloop.nlu.base import Parser, load_parser, read_manifest
from voxloop.schema import Parse

__all__ = ["LoadedModel", "ModelRegistry", "RegistryError", "WARMUP_TEXTS"]

WARMUP_TEXTS = ("hello", "turn on the lights in the kitchen", "what is the weather tomorrow")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


class RegistryError(VoxloopError):
    """A registry request cannot be met: ``status`` is the HTTP status that says why."""

    def __init__(self, problem: str, status: int) -> None:
        self.status = status
        super().__init__(problem)


@dataclass(frozen=True)
class LoadedModel:
    """A model in memory, ready to parse."""

    version: str
    path: Path
    parser: Parser = field(repr=False)
    manifest: dict[str, Any] = field(repr=False)
    loaded_at: datetime
    load_seconds: float
    warmup_seconds: float

    @property
    def intents(self) -> list[str]:
        return [str(i) for i in self.manifest.get("intents", [])]

    @property
    def locales(self) -> list[str]:
        return [str(i) for i in self.manifest.get("locales", [])]

    def describe(self, active: bool) -> dict[str, Any]:
        """What ``GET /admin/models`` shows of it."""
        return {
            "version": self.version,
            "path": str(self.path),
            "active": active,
            "model_type": self.manifest.get("model_type"),
            "intents": len(self.intents),
            "locales": self.locales,
            "loaded_at": self.loaded_at.isoformat(timespec="seconds"),
            "load_seconds": round(self.load_seconds, 4),
            "warmup_seconds": round(self.warmup_seconds, 4),
        }


class ModelRegistry:
    """Loaded models by version; `parse` uses the active one.

    ``model_root``: when set, only directories inside it can be loaded.
    """

    def __init__(
        self,
        *,
        loader: Callable[[Path], Parser] = load_parser,
        model_root: str | Path | None = None,
    ) -> None:
        self.loader = loader
        self.model_root = Path(model_root).resolve() if model_root is not None else None
        self._models: dict[str, LoadedModel] = {}
        self._active: LoadedModel | None = None
        self._lock = threading.Lock()
        #: Versions that must stay loaded (experiment arms), with the reason.
        self.pinned: dict[str, str] = {}

    # --- loading --------------------------------------------------------------------
    def check(self, path: str | Path, version: str | None = None) -> tuple[Path, str]:
        """Resolve and validate a model directory and its version name (cheap)."""
        directory = Path(path).expanduser().resolve()
        if self.model_root is not None and not directory.is_relative_to(self.model_root):
            raise RegistryError(f"{directory} is outside the model root {self.model_root}", 403)
        try:
            manifest = read_manifest(directory)
        except ModelFormatError as e:
            raise RegistryError(str(e), 422) from None
        name = version or str(manifest.get("version") or directory.name)
        if not _VERSION.match(name):
            raise RegistryError(
                f"model version {name!r} must be 1-64 letters, digits, '.', '_', '+' or '-'",
                422,
            )
        return directory, name

    def load(self, path: str | Path, version: str | None = None) -> LoadedModel:
        """Load and warm up a model directory (blocking: call it off the event loop).

        Loading the version already loaded from the same directory returns it; the same
        version name for another directory is a conflict (409).
        """
        directory, name = self.check(path, version)
        with self._lock:
            existing = self._models.get(name)
        if existing is not None:
            if existing.path == directory:
                return existing
            raise RegistryError(
                f"version {name!r} is already loaded from {existing.path}; "
                "give the new one another version name",
                409,
            )
        started = time.perf_counter()
        try:
            parser = self.loader(directory)
        except VoxloopError as e:
            raise RegistryError(str(e), 422) from None
        loaded = time.perf_counter()
        parser.parse(list(WARMUP_TEXTS))
        model = LoadedModel(
            version=name,
            path=directory,
            parser=parser,
            manifest=read_manifest(directory),
            loaded_at=datetime.now(UTC),
            load_seconds=loaded - started,
            warmup_seconds=time.perf_counter() - loaded,
        )
        with self._lock:
            if name in self._models:  # loaded concurrently by another request
                return self._models[name]
            self._models[name] = model
        return model

    def activate(self, version: str) -> LoadedModel:
        """Send all new batches to ``version`` (already loaded)."""
        with self._lock:
            model = self._models.get(version)
            if model is None:
                raise RegistryError(f"version {version!r} is not loaded ({self._have()})", 404)
            self._active = model
        return model

    def unload(self, version: str) -> None:
        """Forget a loaded version that is not active."""
        with self._lock:
            if version not in self._models:
                raise RegistryError(f"version {version!r} is not loaded ({self._have()})", 404)
            if self._active is not None and self._active.version == version:
                raise RegistryError(f"version {version!r} is active; activate another first", 409)
            if version in self.pinned:
                raise RegistryError(f"version {version!r} serves {self.pinned[version]}", 409)
            del self._models[version]

    def _have(self) -> str:
        return "loaded: " + (", ".join(sorted(self._models)) or "none")

    # --- reading --------------------------------------------------------------------
    @property
    def active(self) -> LoadedModel | None:
        return self._active

    def models(self) -> list[LoadedModel]:
        with self._lock:
            return sorted(self._models.values(), key=lambda m: m.loaded_at)

    def parse(self, texts: Sequence[str], version: str | None = None) -> tuple[list[Parse], str]:
        """Parse with ``version`` (default: the active model); say which version answered."""
        if version is None:
            model = self._active
            if model is None:
                raise ConfigError("no model is active")
        else:
            found = self._models.get(version)
            if found is None:
                raise RegistryError(f"version {version!r} is not loaded ({self._have()})", 503)
            model = found
        return model.parser.parse(texts), model.version
