"""Fixtures of the cross-source fault suite: every sandbox upstream on loopback, the sources'
settings pointing at it, the CLI on the test's warehouse, real Redis, and the fault matrix.

The shared fixtures (`wh`, `redis_url`) come from the `zakaz_common.testing` plugin, which the
repository's root conftest.py loads for every test folder (pytest takes `pytest_plugins` only
there).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from zakaz_common.clickhouse import Warehouse
from zakaz_common.demo import sandbox

# The helper modules beside the tests (fault_support, drivers) import by name.
sys.path.insert(0, str(Path(__file__).parent))

from drivers import NOT_PRODUCED
from fault_support import FAST_RETRIES, Matrix, Stand

#: Where to write the fault matrix as Markdown; unset (the default), nothing is written.
MATRIX_ENV = "ZAKAZ_FAULT_MATRIX"

# Read at import: the plugin's session fixture clears every ZAKAZ_* variable before tests run.
_MATRIX_PATH = os.environ.get(MATRIX_ENV)


@pytest.fixture(scope="session")
def matrix() -> Iterator[Matrix]:
    """Every case's outcome; written as a Markdown table at session end when asked to."""
    found = Matrix()
    yield found
    if _MATRIX_PATH:
        found.write(Path(_MATRIX_PATH), NOT_PRODUCED)


@pytest.fixture
def stand(
    wh: Warehouse, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stand]:
    """The whole sandbox on loopback; every source's settings set; `zakaz` on `wh`."""
    monkeypatch.setenv("CH_DATABASE", wh.database)
    with sandbox(tmp_path / "secrets") as settings:
        for values in settings.values():
            for name, value in values.items():
                monkeypatch.setenv(name, value)
        for name, value in FAST_RETRIES.items():
            monkeypatch.setenv(name, value)
        found = Stand(settings["vk_ads"]["VK_API_URL"], wh, settings)
        yield found
        found.http.close()
