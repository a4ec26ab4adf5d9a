"""Shared fixtures: where the real corpora are, and small slices of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def datasets_dir() -> Path:
    """The shared corpora: $VOXLOOP_DATASETS, else ../shared/datasets beside the repo."""
    return Path(os.environ.get("VOXLOOP_DATASETS", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def datasets() -> Path:
    path = datasets_dir()
    if not (path / "snips").is_dir():
        pytest.fail(
            f"the shared corpora are not at {path}; set VOXLOOP_DATASETS to their folder",
            pytrace=False,
        )
    return path
