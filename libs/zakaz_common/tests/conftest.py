"""Fixtures of the zakaz_common tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from zakaz_common.manifest import SourceManifest, register, unregister

# The helper modules beside the tests (factrows, sample_source) import by name.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def sample() -> Iterator[SourceManifest]:
    """The test source of `sample_source.py`, registered for this test."""
    import sample_source

    register(sample_source.MANIFEST)
    yield sample_source.MANIFEST
    unregister(sample_source.MANIFEST.name)
