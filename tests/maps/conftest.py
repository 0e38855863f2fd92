"""What the browser tests of maps and pages share: one headless Chromium per module and the
app served by uvicorn on the test database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from harness import launch, serve

from geo_comuna.api.app import create_app
from geo_comuna.settings import Settings


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(db_conninfo: str, settings: Settings) -> Iterator[str]:
    with serve(create_app(settings, conninfo=db_conninfo)) as base:
        yield base
