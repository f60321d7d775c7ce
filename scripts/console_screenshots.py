"""Screenshots of the console for the README: ``python -m scripts.console_screenshots``.

Seeds a demo account in a throwaway PostgreSQL database (created, migrated and
dropped again), starts the web process on it, signs in with Debian's headless
chromium and saves a PNG of every page in the console's menu (the pages of
``web.console.NAV`` this build has, as the menu shows them, so pages added later
are captured once they land) at 1280 px, a sequence's own
page, and the overview and the sequences list at 390 px (a phone), into
``docs/screenshots/``. With ``pngquant`` installed the PNGs are squeezed to a
fraction of their size.

The demo data goes in through the API where the API takes it (the account,
subscribers, sequences, activation, enrollment); what only workers and weeks of
traffic would produce (outcome rollups, the funnel's step transitions) is written
with the functions and tables those workers write, so the pages show what a
month of sending looks like without sending.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import ROOT, environment

OUT = ROOT / "docs" / "screenshots"
PHONE = (390, 844)
WIDE = 1280
MAX_HEIGHT = 2200  # a full page, cut at this height: a screenshot, not a scroll


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(base: str, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
    """One JSON request to the web process, as any API client makes it."""
    request = urllib.request.Request(base + path, method=method, headers={"Content-Type": "application/json",
                                                                        **headers},
                                     data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def _api(base: str, method: str, path: str, key: str, body: Any = None) -> Any:
    return _call(base, method, path, {"X-API-Key": key}, body)


WELCOME = [
    {"type": "email", "subject": "Welcome to Acme, {{ subscriber.first_name | default('there') }}",
     "html": "<p>Thanks for joining. Here is how to get started in five minutes.</p>"},
    {"type": "delay", "days": 2},
    {"type": "condition", "condition": {"type": "opened"}, "else_goto": 5},
    {"type": "email", "subject": "Three tips our best customers use",
     "html": "<p>Tip one: import your list. Tip two: segment. Tip three: measure.</p>"},
    {"type": "action", "action": "exit"},
    {"type": "email", "subject": "Did you miss this?", "html": "<p>A quick reminder of how to get started.</p>"},
]
TRIAL = [
    {"type": "email", "subject": "Your trial ends soon",
     "html": "<p>Your trial ends in three days: keep your data by choosing a plan.</p>",
     "variants": [{"name": "A", "subject": "Your trial ends soon"},
                  {"name": "B", "subject": "3 days left: keep everything you built"}],
     "experiment": {"metric": "opened"}},
    {"type": "delay", "days": 3},
    {"type": "webhook", "url": "https://crm.acme.example/hooks/trial-ended", "payload": {"stage": "trial_end"}},
]
WINBACK = [
    {"type": "email", "subject": "We miss you", "html": "<p>It has been a while. Here is what is new.</p>"},
    {"type": "delay", "days": 7},
    {"type": "email", "subject": "A last note from us", "html": "<p>Should we keep writing to you?</p>"},
]


def seed(base: str, admin_token: str) -> tuple[str, dict[str, str]]:
    """The demo account; returns its API key and, by screenshot name, the pages of
    single things to capture beside the menu's (a sequence with a funnel, one with an
    experiment, the step editor, a segment's builder, a warming plan, a profile)."""
    from core.flow import record
    from models import SequenceRollup, db, utcnow

    rng = random.Random(23)
    account = _call(base, "POST", "/api/v1/accounts", {"Authorization": f"Bearer {admin_token}"}, {
        "name": "Acme Analytics", "from_email": "hello@acme.example", "from_name": "Acme",
        "postal_address": "1 Market St, Springfield"})
    key, account_id = account["api_key"], account["id"]
    _api(base, "PATCH", "/api/v1/account", key, {"timezone": "Europe/Berlin"})
    welcome = _api(base, "POST", "/api/v1/email-sequences", key, {"name": "Welcome series", "steps": WELCOME,
                   "description": "New sign-ups: a welcome, tips for openers, a reminder for the rest."})
    trial = _api(base, "POST", "/api/v1/email-sequences", key, {"name": "Trial ending", "steps": TRIAL})
    winback = _api(base, "POST", "/api/v1/email-sequences", key, {"name": "Win-back", "steps": WINBACK})
    _api(base, "POST", "/api/v1/email-sequences", key, {"name": "Black Friday teaser (draft)", "steps": [
        {"type": "email", "subject": "Something is coming on Friday", "html": "<p>Save the date.</p>"}]})
    for sequence in (welcome, trial, winback):
        _api(base, "POST", f"/api/v1/email-sequences/{sequence['id']}/activate", key, {"override_preflight": True})
    _api(base, "POST", f"/api/v1/email-sequences/{winback['id']}/pause", key)
    names = ["ana", "ben", "chloe", "dev", "emma", "farid", "grace", "hugo", "ines", "jon", "kira", "liam"]
    emails = [f"{rng.choice(names)}.{i}@example.com" for i in range(420)]
    _api(base, "POST", f"/api/v1/email-sequences/{welcome['id']}/subscribers", key, {"emails": emails[:300]})
    _api(base, "POST", f"/api/v1/email-sequences/{trial['id']}/subscribers", key, {"emails": emails[200:]})

    pages = _seed_audience(base, key, welcome["id"])

    now = utcnow()
    with db.session_scope() as s:
        # The funnel: what the engine records as enrollments move (core.flow).
        moves = [(0, "passed", 300), (1, "entered", 300), (1, "passed", 262), (2, "entered", 262),
                 (2, "passed", 262), (3, "entered", 151), (3, "passed", 151), (4, "entered", 151),
                 (4, "exit", 151), (5, "entered", 111), (5, "completed", 104)]
        record(s, [(account_id, welcome["id"], position, kind, n) for position, kind, n in moves], now)
        # A month of outcomes per email step and day, as the analytics pool folds them.
        steps = {(welcome["id"], st["id"]): (st, "") for st in welcome["steps"] if st["type"] == "email"}
        steps.update({(trial["id"], trial["steps"][0]["id"], v): (trial["steps"][0], v) for v in ("A", "B")})
        for key_, (step, variant) in steps.items():
            sequence_id, step_id = key_[0], key_[1]
            open_rate = {"A": 0.31, "B": 0.44}.get(variant, rng.uniform(0.35, 0.55))
            for days_ago in range(30):
                sent = rng.randint(25, 90)
                counts = {"sent": sent, "delivered": int(sent * rng.uniform(0.96, 0.995))}
                counts["opened"] = int(counts["delivered"] * open_rate * rng.uniform(0.85, 1.15))
                counts["clicked"] = int(counts["opened"] * rng.uniform(0.12, 0.3))
                counts["bounced"] = sent - counts["delivered"]
                counts["complained"] = 1 if rng.random() < 0.08 else 0
                counts["unsubscribed"] = rng.randint(0, 2)
                for metric, n in counts.items():
                    s.add(SequenceRollup(account_id=account_id, sequence_id=sequence_id, step_id=step_id,
                                         variant=variant, day=(now - timedelta(days=days_ago)).date(),
                                         metric=metric, uniques=n, total=n + (n // 4 if metric == "opened" else 0)))
    pages.update({"sequence": f"/console/sequences/{welcome['id']}",
                  "sequence-experiment": f"/console/sequences/{trial['id']}",
                  "sequence-editor": f"/console/sequences/{welcome['id']}/edit"})
    return key, pages


def _seed_audience(base: str, key: str, welcome_id: int) -> dict[str, str]:
    """A topic, segments, a broadcast draft, providers and a warming plan, through the
    API; returns the pages of some of them to capture, by screenshot name."""
    _api(base, "POST", "/api/v1/topics", key, {"key": "newsletter", "name": "The monthly newsletter"})
    engaged = _api(base, "POST", "/api/v1/segments", key, {"name": "Opened or clicked in 30 days", "filter": {
        "any": [{"opened_within_days": 30}, {"clicked_within_days": 30}]}})
    welcome = _api(base, "POST", "/api/v1/segments", key, {"name": "In the welcome series, not customers",
                                                           "filter": {"all": [{"sequence": welcome_id, "status": "in"},
                                                                              {"not": {"tag": "customer"}}]}})
    _api(base, "POST", "/api/v1/broadcasts", key, {
        "name": "December product update", "segment_id": welcome["id"], "subject": "What is new in December",
        "html": "<p>Three things we shipped this month.</p>", "local_time": "09:30"})
    main = _api(base, "POST", "/api/v1/providers", key, {"name": "Primary relay", "kind": "smtp", "priority": 1,
                                                         "config": {"host": "93.184.216.34", "port": 587}})
    _api(base, "POST", "/api/v1/providers", key, {"name": "New dedicated IP", "kind": "smtp", "priority": 2,
                                                  "config": {"host": "93.184.216.35", "port": 587}})
    plan = _api(base, "POST", "/api/v1/warming-plans", key, {"provider_id": main["id"]})
    return {"segment": f"/console/segments/{welcome['id']}/edit", "warming-plan": f"/console/warming/{plan['id']}",
            "subscriber": f"/console/subscribers/{_api(base, 'GET', '/api/v1/subscribers', key)[0]['id']}"}


def _wait_up(base: str, web: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise SystemExit("the web process exited: see its output above")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=3):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the web process did not answer /health within 60 s")


def _shoot(driver: Any, url: str, path: Path, width: int, phone: bool = False) -> None:
    from scripts.headless_chromium import set_viewport

    set_viewport(driver, width, PHONE[1] if phone else 900, mobile=phone)
    driver.get(url)
    height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), MAX_HEIGHT)
    set_viewport(driver, width, max(height, 400), mobile=phone)
    driver.save_screenshot(str(path))
    if shutil.which("pngquant"):
        subprocess.run(["pngquant", "--force", "--skip-if-larger", "--quality=60-85", "--ext", ".png", str(path)],
                       check=False)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from scripts.headless_chromium import chromium, missing

    reason = missing()
    if reason:
        raise SystemExit(reason)
    _, db_name, env = environment()
    from tests.support.database import fresh_database

    with fresh_database(db_name) as url:
        from models import db

        os.environ["DATABASE_URL"] = url
        db.configure(url)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                "--threads", "4", "web.wsgi:app"], cwd=ROOT,
                               env={**os.environ, "PUBLIC_BASE_URL": base, "PORT": str(port)})
        try:
            _wait_up(base, web)
            key, pages = seed(base, env["ESEQ_ADMIN_TOKEN"])
            args.out.mkdir(parents=True, exist_ok=True)
            with chromium(WIDE, 900) as driver:
                from selenium.webdriver.common.by import By

                driver.get(f"{base}/console/sign-in")
                driver.find_element(By.ID, "f-api_key").send_keys(key)
                driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
                # The menu lists the pages of web.console.NAV this build has: each is shot.
                menu = [(a.get_attribute("href"), a.text) for a in
                        driver.find_elements(By.CSS_SELECTOR, "header nav a")]
                assert menu, "not signed in: no menu"
                for href, label in menu:
                    _shoot(driver, href, args.out / f"{label.lower().replace(' ', '-')}.png", WIDE)
                for name, path in pages.items():
                    _shoot(driver, base + path, args.out / f"{name}.png", WIDE)
                _shoot(driver, f"{base}/console/", args.out / "overview-phone.png", PHONE[0], phone=True)
                _shoot(driver, f"{base}/console/sequences", args.out / "sequences-phone.png", PHONE[0], phone=True)
        finally:
            web.terminate()
            web.wait(15)
            db.get_engine().dispose()

if __name__ == "__main__":
    main()
