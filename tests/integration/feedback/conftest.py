"""One headless Chromium for every page test of the session."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.utils.browser import chromium


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser
