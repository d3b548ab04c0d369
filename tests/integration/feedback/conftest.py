"""One headless Chromium per page-test module. Not per session: Playwright's sync API keeps
an event loop running in the main thread while the browser lives, and later tests that
call asyncio.run() would fail."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.utils.browser import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser
