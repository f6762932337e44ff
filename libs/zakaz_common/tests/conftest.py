"""Fixtures of the zakaz_common tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from zakaz_common.manifest import SourceManifest, register, unregister


@pytest.fixture
def sample(monkeypatch: pytest.MonkeyPatch) -> Iterator[SourceManifest]:
    """The test source of `sample_source.py`, registered for this test."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import sample_source

    register(sample_source.MANIFEST)
    yield sample_source.MANIFEST
    unregister(sample_source.MANIFEST.name)
