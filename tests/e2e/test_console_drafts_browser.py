"""The AI drafts, warming and providers pages in a real browser (Debian's chromium
through chromedriver): a brief asked for in the console waits queued until an ai
worker starts, drafts.js notices the change and reloads the page by itself (under
the console's script-src 'self'), the drafted email shows inside its sandboxed
iframe as a sample reader gets it, and apply creates the sequence; each page fits
a phone's 390 px without the page itself scrolling sideways. Screenshots go to
$ESEQ_SCREENSHOTS_DIR when it is set (docs/screenshots/ is refreshed that way),
else to the test's temporary directory."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.support import ai_answers
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import Proc, call, platform_env, running, wait_healthy, web_argv, worker_argv
from tests.support.browser import browser  # noqa: F401 - the fixture
from tests.support.smtp import free_port

pytestmark = pytest.mark.e2e


def _wait(driver: Any, condition: Any, timeout: float, message: str) -> Any:
    """Until ``condition`` holds; an element replaced by a navigation meanwhile is "not yet"."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.3, ignored_exceptions=(WebDriverException,)).until(
        condition, message)


def _fits_a_phone(driver: Any, url: str, shots: Path, name: str) -> None:
    driver.set_window_size(390, 844)
    driver.get(url)
    width = driver.execute_script("return document.documentElement.scrollWidth")
    driver.save_screenshot(str(shots / f"{name}-390.png"))
    assert width <= 390, f"{url} is {width} px wide at 390"
    _whole_page(driver, url, shots / f"{name}-1280.png")


def _whole_page(driver: Any, url: str, path: Path) -> None:
    """A screenshot of the whole page at 1280 px: the window as tall as the page."""
    driver.set_window_size(1280, 900)
    driver.get(url)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(900, height + 100), 6000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)


def test_a_brief_becomes_a_draft_the_page_follows_by_itself_and_applies(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    port = free_port()
    shots = Path(os.environ.get("ESEQ_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with FakeOpenAI(answerer=ai_answers.good) as fake:
        env = platform_env(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY=fake.api_key, OPENAI_MODEL="gpt-test")
        with running([Proc("web", web_argv(port), env, tmp_path)]):
            wait_healthy(port)
            status, account = call(port, "POST", "/api/v1/accounts",
                                   {"name": "Alice", "from_email": "alice@example.com", "from_name": "Alice"},
                                   {"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert status == 201
            headers = {"X-API-Key": account["api_key"]}
            base = f"http://127.0.0.1:{port}/console"

            browser.get(f"{base}/sign-in")
            browser.find_element(By.ID, "f-api_key").send_keys(account["api_key"])
            browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
            _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "form.signout"), 30, "the sign-in to land")
            browser.get(f"{base}/drafts/new")
            browser.find_element(By.ID, "f-brief.goal").send_keys("onboard new sign-ups")
            browser.find_element(By.ID, "f-brief.emails").send_keys("3")
            browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
            pending = _wait(browser, lambda d: d.find_element(By.ID, "draft-pending"), 30,
                            "the draft's page")  # queued: no ai worker yet
            assert "waiting for a worker" in pending.text
            draft_url = browser.current_url

            # The worker starts now; the page is not reloaded by the test, only by drafts.js.
            worker = Proc("ai", worker_argv("ai", queues="ai", concurrency=2, loglevel="INFO"), env, tmp_path)
            with running([worker]):
                worker.wait_ready()
                _wait(browser, lambda d: d.find_elements(By.XPATH, "//button[text()='Apply this draft']"), 90,
                      "the page to show the written draft")
            assert browser.current_url == draft_url and not browser.find_elements(By.ID, "draft-pending")

            frames = browser.find_elements(By.CSS_SELECTOR, "iframe.email-preview")
            assert len(frames) == 3 and all(f.get_attribute("sandbox") == "" for f in frames)
            browser.switch_to.frame(frames[0])
            assert "Hi Alex," in browser.find_element(By.TAG_NAME, "body").text
            browser.switch_to.default_content()

            browser.find_element(By.XPATH, "//button[text()='Apply this draft']").click()
            flash = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "p.flash.ok"), 30, "apply's answer")
            assert "is created in status draft" in flash.text
            status, sequences = call(port, "GET", "/api/v1/email-sequences", headers=headers)
            assert [(s["name"], s["status"]) for s in sequences] == [("Welcome to Acme", "draft")]

            status, provider = call(port, "POST", "/api/v1/providers", {
                "name": "new-ip", "kind": "smtp", "priority": 1,
                "config": {"host": "93.184.216.34", "port": 587, "username": "u", "password": "smtp-secret",
                           "use_tls": True}}, headers)
            status, plan = call(port, "POST", "/api/v1/warming-plans", {"provider_id": provider["id"]}, headers)
            assert status == 201
            for name, path in (("drafts", "/drafts"), ("drafts-review", draft_url.split("/console", 1)[1]),
                               ("drafts-new", "/drafts/new"), ("providers", "/providers"),
                               ("provider", f"/providers/{provider['id']}"), ("warming", "/warming"),
                               ("warming-plan", f"/warming/{plan['id']}"), ("warming-new", "/warming/new")):
                _fits_a_phone(browser, base + path, shots, f"console-{name}")
            assert "smtp-secret" not in browser.page_source
