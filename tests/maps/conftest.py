"""What the browser tests of maps and pages share: the app served by uvicorn on the test
database (their headless Chromium, one per module, is tests/conftest.py's ``browser``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import serve

from geo_comuna.api.app import create_app
from geo_comuna.settings import Settings


@pytest.fixture(scope="module")
def server(db_conninfo: str, settings: Settings) -> Iterator[str]:
    """One client opens a module's maps and pages, two heavy requests each (a commune's map
    and its hillshade), quicker on a quicker machine: under the anonymous limit of 30 a
    minute, whether one was refused was a matter of timing (a CI run's map never got ready).
    The limits are tests/test_fairness.py's."""
    unlimited = settings.model_copy(update={"heavy_rate_per_minute": 0})
    with serve(create_app(unlimited, conninfo=db_conninfo)) as base:
        yield base
