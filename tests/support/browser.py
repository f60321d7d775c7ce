"""A real browser for the console's end-to-end tests: Debian's chromium, headless,
driven by Selenium (scripts/headless_chromium.py). Optional like spamd and
pgbouncer: without chromium, chromium-driver or selenium the tests skip and say why."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from scripts.headless_chromium import chromium, missing
from tests.support.waiting import wait_for


@pytest.fixture
def browser() -> Iterator[Any]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    with chromium() as driver:
        driver.set_page_load_timeout(30)
        yield driver


def wait_page(driver: Any, check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """``wait_for`` on the browser, with the page's text on timeout. An element of
    the page being replaced (after a click that navigates) is "not yet", not an error:
    chromium says so as a stale element, a missing one, or a node "not in the document"."""
    from selenium.common.exceptions import WebDriverException

    def attempt() -> Any:
        try:
            return check()
        except WebDriverException:
            return None

    return wait_for(attempt, timeout, what, interval=0.2,
                    detail=lambda: f"{driver.current_url}\n{driver.find_element('tag name', 'body').text[:2000]}")
