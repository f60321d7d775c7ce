"""Issue-level proof of event subscriptions: real web, worker and beat processes
send five welcome emails to a real SMTP sink; the test opens each one's pixel;
beat's feed delivers each subscriber's ``message.sent`` and ``message.opened`` to a
real HTTP receiver on loopback exactly once, every call signed so the documented
check verifies it."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from scripts.verify_webhook_example import verify
from tests.conftest import ADMIN_TOKEN
from tests.e2e.test_sequence_flow import call
from tests.support.processes import Proc, beat_argv, platform_env, running, wait_healthy, web_argv, worker_argv
from tests.support.provider_server import ProviderServer
from tests.support.smtp import SmtpServer, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def test_sent_and_opened_events_reach_a_subscribed_receiver_once_each_signed(tmp_path: Path):
    port = free_port()
    receiver = ProviderServer()
    receiver.start()
    try:
        with SmtpServer() as smtp:
            env = platform_env(PORT=str(port), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", ESEQ_TICK_SECONDS="0.5",
                               SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port), ESEQ_WEBHOOK_ALLOW_PRIVATE="true")
            procs = [Proc("web", web_argv(port), env, tmp_path), Proc("worker", worker_argv("all"), env, tmp_path),
                     Proc("beat", beat_argv(tmp_path / "beat-schedule"), env, tmp_path)]
            with running(procs):
                assert wait_healthy(port)["status"] == "ok"
                _, account = call(port, "POST", "/api/v1/accounts", {"name": "Acme", "from_email": "news@acme.test"},
                                  {"Authorization": f"Bearer {ADMIN_TOKEN}"})
                auth = {"X-API-Key": account["api_key"]}
                status, subscription = call(port, "POST", "/api/v1/event-subscriptions", {
                    "url": receiver.base_url + "/events", "events": ["message.sent", "message.opened"]}, auth)
                assert status == 201, subscription
                status, sequence = call(port, "POST", "/api/v1/email-sequences", {"name": "Welcome", "steps": [
                    {"type": "email", "subject": "Welcome",
                     "html": '<p>Hi <a href="https://acme.test/start">start</a></p>'}]}, auth)
                assert status == 201, sequence
                assert call(port, "POST", f"/api/v1/email-sequences/{sequence['id']}/activate", {}, auth)[0] == 200
                emails = [f"reader{i}@example.test" for i in range(5)]
                assert call(port, "POST", f"/api/v1/email-sequences/{sequence['id']}/subscribers",
                            {"emails": emails}, auth)[0] == 202
                wait_for(lambda: all(smtp.handler.to(a) for a in emails), 60, "the welcome emails")
                for address in emails:
                    [welcome] = smtp.handler.to(address)
                    html = next(p.get_payload(decode=True).decode() for p in welcome.walk()
                                if p.get_content_type() == "text/html")
                    pixel = re.search(r'<img src="http://127.0.0.1:\d+(/t/o/[^"]+)"', html).group(1)
                    assert call(port, "GET", pixel)[0] == 200

                def delivered() -> list[dict]:
                    events = [e for r in list(receiver.requests) for e in json.loads(r.body)["events"]]
                    return events if len({e["id"] for e in events}) >= 10 else []

                events = wait_for(delivered, 60, "ten events at the receiver",
                                  detail=lambda: f"{len(receiver.requests)} calls; {procs[1].tail()}")

                def settled() -> bool:
                    _, shown = call(port, "GET", f"/api/v1/event-subscriptions/{subscription['id']}", None, auth)
                    return shown["deliveries"].get("events_delivered") == 10 and set(shown["deliveries"]) == {
                        "delivered", "events_delivered"}

                wait_for(settled, 30, "every batch recorded as delivered")
                events = [e for r in list(receiver.requests) for e in json.loads(r.body)["events"]]
                for request in receiver.requests:
                    assert verify(subscription["secret"], request.headers["X-Eseq-Signature"], request.body)
                assert Counter(e["id"] for e in events).most_common(1)[0][1] == 1, "no event twice"
                assert Counter((e["type"], e["data"]["email"]) for e in events) == Counter(
                    {(kind, address): 1 for kind in ("message.sent", "message.opened") for address in emails})
    finally:
        receiver.stop()
