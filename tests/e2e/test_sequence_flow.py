"""Issue-level proof: the real web, worker and beat processes walk 100 subscribers
through email -> delay 2 s -> condition "opened" -> branch, and each subscriber gets
exactly the emails their branch calls for, none before its delay allows.

The condition is "opened within 3 s" (wait_seconds) rather than judged the instant
the delay ends: with no wait, the test's own opens race a 2 s timer on a loaded
2-core machine, which tests the test client's speed, not the platform."""
from __future__ import annotations

import json
import re
import time
import urllib.request
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from models import Message, db
from tests.conftest import ADMIN_TOKEN
from tests.support.processes import Proc, beat_argv, platform_env, running, wait_healthy, web_argv, worker_argv
from tests.support.waiting import wait_for
from tests.support.smtp import SmtpServer, free_port

pytestmark = pytest.mark.e2e


def call(port: int, method: str, path: str, body: object = None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
        return response.status, (json.loads(raw) if raw and response.headers.get_content_type() == "application/json" else raw)


def test_a_hundred_subscribers_each_get_exactly_their_branchs_emails(tmp_path: Path):
    port = free_port()
    with SmtpServer() as smtp:
        env = platform_env(PORT=str(port), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", ESEQ_TICK_SECONDS="0.5",
                           SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port))
        procs = [Proc("web", web_argv(port), env, tmp_path), Proc("worker", worker_argv("all"), env, tmp_path),
                 Proc("beat", beat_argv(tmp_path / "beat-schedule"), env, tmp_path)]
        with running(procs):
            assert wait_healthy(port)["status"] == "ok"
            _, account = call(port, "POST", "/api/v1/accounts", {"name": "Acme", "from_email": "news@acme.test"},
                              {"Authorization": f"Bearer {ADMIN_TOKEN}"})
            auth = {"X-API-Key": account["api_key"]}
            status, sequence = call(port, "POST", "/api/v1/email-sequences", {"name": "Onboarding", "steps": [
                {"type": "email", "subject": "Welcome", "html": '<p>Hi <a href="https://acme.test/start">start</a></p>'},
                {"type": "delay", "seconds": 2},
                {"type": "condition", "condition": {"type": "opened"}, "else_goto": 5, "wait_seconds": 3},
                {"type": "email", "subject": "Glad you read it", "text": "more"},
                {"type": "action", "action": "exit"},
                {"type": "email", "subject": "Did you miss this?", "text": "again"},
            ]}, auth)
            assert status == 201, sequence
            assert call(port, "POST", f"/api/v1/email-sequences/{sequence['id']}/activate", {}, auth)[0] == 200
            emails = [f"reader{i}@example.test" for i in range(100)]
            status, enrolled = call(port, "POST", f"/api/v1/email-sequences/{sequence['id']}/subscribers",
                                    {"emails": emails}, auth)
            assert (status, enrolled["enrolled"]) == (202, 100)

            openers = set(emails[::3])
            opened: set[str] = set()

            def open_new_welcomes() -> bool:
                for address in openers - opened:
                    welcome = [m for m in smtp.handler.to(address) if m["Subject"] == "Welcome"]
                    if welcome:
                        html = next(p.get_payload(decode=True).decode() for p in welcome[0].walk()
                                    if p.get_content_type() == "text/html")
                        pixel = re.search(r'<img src="http://127.0.0.1:\d+(/t/o/[^"]+)"', html).group(1)
                        assert call(port, "GET", pixel)[0] == 200
                        opened.add(address)
                return opened == openers

            wait_for(open_new_welcomes, 60, "welcome emails to the openers")

            def all_done() -> bool:
                _, page = call(port, "GET", f"/api/v1/email-sequences/{sequence['id']}/enrollments?page_size=100", None, auth)
                return len(page) == 100 and all(e["status"] in ("completed", "exited") for e in page)

            wait_for(all_done, 90, "every enrollment to finish")
            wait_for(lambda: len(smtp.handler.received) >= 200, 60, "both emails of every subscriber to arrive")
            time.sleep(1.0)  # any stray duplicate send would land by now

            received: dict[str, list[str]] = defaultdict(list)
            for got in smtp.handler.received:
                for address in got.recipients:
                    received[address].append(got.message["Subject"])
            for address in emails:
                expected = ["Welcome", "Glad you read it"] if address in openers else ["Welcome", "Did you miss this?"]
                assert received[address] == expected, (address, received[address])

            with db.session_scope() as s:
                by_subscriber: dict[int, list[Message]] = defaultdict(list)
                for message in s.scalars(select(Message).order_by(Message.id)):
                    by_subscriber[message.subscriber_id].append(message)
            assert len(by_subscriber) == 100
            for first, second in by_subscriber.values():
                assert first.status == second.status == "sent"
                assert second.created_at >= first.created_at + timedelta(seconds=2 + 3)
