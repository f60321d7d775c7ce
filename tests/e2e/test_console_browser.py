"""The console in a real browser (headless chromium through Selenium) against the
real processes: an operator signs in with the keyboard, builds a sequence in the
editor (meeting its validation on the way), activates it, enrolls a subscriber
through the API, and sees the email arrive and the funnel move. A wrong key, a
forged CSRF token and another account's id are refused; the pages fit a phone."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (pip install -r requirements.txt)")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

from scripts.headless_chromium import set_viewport  # noqa: E402
from tests.conftest import ADMIN_TOKEN
from tests.support.browser import browser, wait_page  # noqa: F401 - the fixture
from tests.support.processes import Proc, beat_argv, call, platform_env, running, wait_healthy, web_argv, worker_argv
from tests.support.smtp import SmtpServer, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def new_account(port: int, name: str) -> str:
    _, account = call(port, "POST", "/api/v1/accounts", {"name": name, "from_email": f"news@{name.lower()}.test"},
                      {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    return str(account["api_key"])


def body_text(driver: Any) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def sign_in_by_keyboard(driver: Any, base: str, api_key: str) -> None:
    """Tab from the top of the page to the key field, type, Tab to the button, Enter."""
    driver.get(f"{base}/console/sign-in")
    driver.execute_script("document.activeElement.blur()")
    for _ in range(6):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        if driver.switch_to.active_element.get_attribute("id") == "f-api_key":
            break
    field = driver.switch_to.active_element
    assert field.get_attribute("id") == "f-api_key", "Tab never reached the API key field"
    field.send_keys(api_key)
    field.send_keys(Keys.TAB)
    button = driver.switch_to.active_element
    assert button.tag_name == "button" and button.text == "Sign in"
    button.send_keys(Keys.ENTER)


def fill(driver: Any, field_id: str, value: str) -> None:
    element = driver.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(value)


def funnel_entered(driver: Any, step: int) -> int:
    cell = driver.find_element(By.CSS_SELECTOR, f'table.funnel tr[data-step="{step}"] td.entered')
    return int(cell.text.replace(",", ""))


def test_an_operator_builds_activates_and_watches_a_sequence(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with SmtpServer() as smtp:
        env = platform_env(PORT=str(port), PUBLIC_BASE_URL=base, ESEQ_TICK_SECONDS="0.5",
                           SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port))
        procs = [Proc("web", web_argv(port), env, tmp_path), Proc("worker", worker_argv("all"), env, tmp_path),
                 Proc("beat", beat_argv(tmp_path / "beat-schedule"), env, tmp_path)]
        with running(procs):
            wait_healthy(port)
            api_key = new_account(port, "Acme")
            sign_in_by_keyboard(browser, base, api_key)
            wait_page(browser, lambda: "Last 30 days" in body_text(browser), "the overview after signing in")

            browser.find_element(By.LINK_TEXT, "Sequences").click()
            wait_page(browser, lambda: browser.find_element(By.LINK_TEXT, "Build your first sequence"),
                      "the empty list's next step").click()
            wait_page(browser, lambda: browser.find_element(By.ID, "f-name"), "the editor")
            fill(browser, "f-name", "Browser onboarding")
            fill(browser, "f-steps-0-subject", "Hello from the console")
            fill(browser, "f-steps-0-html", "<p>Welcome aboard. Here is how to start.</p>")
            fill(browser, "f-steps-1-extra", '{"seconds": 1}')
            fill(browser, "f-steps-2-subject", "")  # a mistake first: the API's message shows beside step 2
            fill(browser, "f-steps-2-html", "<p>And here is the second part.</p>")
            browser.find_element(By.ID, "save").click()
            error = wait_page(browser, lambda: browser.find_elements(By.ID, "e-steps-2-subject"), "the step's error")
            assert "Missing data for required field." in error[0].text
            assert not browser.find_elements(By.ID, "e-steps-0-subject")
            fill(browser, "f-steps-2-subject", "Part two")
            browser.find_element(By.ID, "save").click()
            wait_page(browser, lambda: "Created as a draft" in body_text(browser), "the new sequence's page")
            sequence_id = int(re.search(r"/console/sequences/(\d+)$", browser.current_url).group(1))
            assert funnel_entered(browser, 0) == 0
            browser.find_element(By.XPATH, "//button[normalize-space()='Activate']").click()
            wait_page(browser, lambda: "Activated." in body_text(browser), "activation")
            status, enrolled = call(port, "POST", f"/api/v1/email-sequences/{sequence_id}/subscribers",
                                    {"emails": ["reader@example.test"]}, {"X-API-Key": api_key})
            assert (status, enrolled["enrolled"]) == (202, 1)

            wait_for(lambda: len(smtp.handler.to("reader@example.test")) >= 2, 90, "both emails to arrive")
            subjects = [m["Subject"] for m in smtp.handler.to("reader@example.test")]
            assert subjects == ["Hello from the console", "Part two"]

            def funnel_moved() -> bool:
                browser.refresh()
                return funnel_entered(browser, 0) == 1 and funnel_entered(browser, 2) == 1

            wait_page(browser, funnel_moved, "the funnel to show the subscriber at every step")
            assert browser.find_element(By.CSS_SELECTOR, "#funnel-chart svg").is_displayed()


def test_wrong_key_forged_token_and_other_accounts_are_refused(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = platform_env(PORT=str(port), PUBLIC_BASE_URL=base)
    with running([Proc("web", web_argv(port), env, tmp_path)]):
        wait_healthy(port)
        mine, theirs = new_account(port, "Acme"), new_account(port, "Other")
        _, their_sequence = call(port, "POST", "/api/v1/email-sequences", {"name": "Their secret", "steps": [
            {"type": "email", "subject": "Private", "html": "<p>x</p>"}]}, {"X-API-Key": theirs})
        _, my_sequence = call(port, "POST", "/api/v1/email-sequences", {"name": "Mine", "steps": [
            {"type": "email", "subject": "Hi", "html": "<p>Hello, welcome.</p>"}]}, {"X-API-Key": mine})

        sign_in_by_keyboard(browser, base, mine + "x")
        wait_page(browser, lambda: "opens no account" in body_text(browser), "the wrong key's refusal")
        browser.get(f"{base}/console/sequences")
        assert "/console/sign-in" in browser.current_url

        sign_in_by_keyboard(browser, base, mine)
        wait_page(browser, lambda: "Last 30 days" in body_text(browser), "the overview")
        browser.get(f"{base}/console/sequences/{their_sequence['id']}")
        assert "Not found" in body_text(browser) and "Their secret" not in browser.page_source

        browser.get(f"{base}/console/sequences/{my_sequence['id']}")
        browser.execute_script(
            "const form = document.querySelector(\"form[action$='/activate']\");"
            "form.querySelector('input[name=csrf_token]').value = 'forged';"
            "form.submit();")
        wait_page(browser, lambda: "Bad request" in body_text(browser), "the forged token's refusal")
        assert "security token" in body_text(browser)
        _, still = call(port, "GET", f"/api/v1/email-sequences/{my_sequence['id']}", None, {"X-API-Key": mine})
        assert still["status"] == "draft"

        # A phone's width: no page scrolls sideways (wide tables scroll in their own box).
        set_viewport(browser, 390, 844, mobile=True)
        for path in ("/console/", "/console/sequences", f"/console/sequences/{my_sequence['id']}",
                     f"/console/sequences/{my_sequence['id']}/edit", "/console/sequences/new", "/console/settings"):
            browser.get(base + path)
            widths = browser.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[1] == 390 and widths[0] <= widths[1], (path, widths)
