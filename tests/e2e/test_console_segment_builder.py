"""The segment editor in a real browser (Debian's chromium, driven by Selenium):
the builder writes the filter's JSON, the live count comes back through the
page's fetch with its CSRF header under the console's CSP, a bad filter's errors
are listed by path, and saving shows the members. The web process is the real one
(gunicorn); the subscribers are made through the API."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts.headless_chromium import set_viewport
from tests.conftest import ADMIN_TOKEN
from tests.support.processes import Proc, call, platform_env, running, wait_healthy, web_argv
from tests.support.browser import browser, wait_page  # noqa: F401 - the fixture
from tests.support.smtp import free_port

pytestmark = pytest.mark.e2e


def _text_of(driver: Any, element_id: str) -> str:
    return str(driver.find_element("id", element_id).text)


def test_the_builder_counts_as_you_go_and_saves(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.support.ui import Select

    port = free_port()
    env = platform_env(PORT=str(port), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    with running([Proc("web", web_argv(port), env, tmp_path)]):
        assert wait_healthy(port)["status"] == "ok"
        _, account = call(port, "POST", "/api/v1/accounts", {"name": "Acme", "from_email": "news@acme.test"},
                          {"Authorization": f"Bearer {ADMIN_TOKEN}"})
        auth = {"X-API-Key": account["api_key"]}
        for i, tags in enumerate((["vip"], ["vip"], [], ["vip", "new"])):
            assert call(port, "POST", "/api/v1/subscribers", {"email": f"r{i}@example.test", "tags": tags},
                        auth)[0] == 201

        base = f"http://127.0.0.1:{port}/console"
        set_viewport(browser, 390, 900, mobile=True)  # the builder on a phone
        browser.get(f"{base}/sign-in")
        browser.find_element("id", "f-api_key").send_keys(account["api_key"])
        browser.find_element("css selector", "form button[type=submit]").click()
        # The sign-in's redirect must land first, or it would replace the next page.
        wait_page(browser, lambda: browser.find_elements("css selector", "form.signout"), "the sign-in to land")
        browser.get(f"{base}/segments/new")
        wait_page(browser, lambda: "4 subscribers match now." in _text_of(browser, "live-count"),
                 "the live count of the empty filter (everyone)")

        # The builder: one "has tag" condition, typed in; the JSON and the count follow.
        Select(browser.find_element("id", "b-kind")).select_by_value("tag")
        browser.find_element("id", "b-add").click()
        browser.switch_to.active_element.send_keys("vip")
        wait_page(browser, lambda: "3 subscribers match now." in _text_of(browser, "live-count"), "the count of tag vip")
        box = browser.find_element("id", "f-filter")
        assert json.loads(box.get_property("value")) == {"all": [{"tag": "vip"}]}
        Select(browser.find_element("id", "b-kind")).select_by_value("tag")
        browser.find_element("id", "b-add").click()
        browser.switch_to.active_element.send_keys("new")
        Select(browser.find_element("id", "b-combine")).select_by_value("any")
        wait_page(browser, lambda: json.loads(box.get_property("value")) == {"any": [{"tag": "vip"}, {"tag": "new"}]},
                 "the builder to write any of the two tags")
        Select(browser.find_element("id", "b-combine")).select_by_value("all")
        wait_page(browser, lambda: "1 subscribers match now." in _text_of(browser, "live-count"), "the count of both tags")

        # A bad filter typed into the JSON: its error, by path, and no count.
        box.clear()
        box.send_keys('{"all": [{"tag": "vip"}, {"attribute": "plan", "op": "approx", "value": 1}]}')
        wait_page(browser, lambda: "filter.all.1.op" in _text_of(browser, "filter-errors"), "the error by its path")
        assert _text_of(browser, "live-count") == ""

        box.clear()
        box.send_keys('{"tag": "vip"}')
        wait_page(browser, lambda: "3 subscribers match now." in _text_of(browser, "live-count"), "the count again")
        assert _text_of(browser, "filter-errors") == ""
        browser.find_element("id", "f-name").send_keys("VIPs")
        browser.find_element("css selector", "#segment-form button[type=submit]").click()
        wait_page(browser, lambda: "members now" in browser.find_element("tag name", "main").text, "the saved segment")
        page = browser.find_element("tag name", "main").text
        assert "Segment “VIPs” saved." in page and "r3@example.test" in page and "r2@example.test" not in page
        # No script error and nothing the CSP blocked (the 422s of the bad filter are network entries).
        assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
