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
    with serve(create_app(settings, conninfo=db_conninfo)) as base:
        yield base
