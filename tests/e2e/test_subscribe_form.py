"""Issue-level proof of double opt-in: with the real web process and workers, a
browser's round trip. The form's HTML is fetched from the web process and parsed
(its action and inputs), filled and posted form-encoded; the confirmation email is
read at a real SMTP server, its link followed, and the subscriber is active in
the topic they ticked."""
from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.support.processes import Proc, platform_env, running, wait_healthy, web_argv, worker_argv
from tests.support.smtp import SmtpServer, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


class FormReader(HTMLParser):
    """The first form's method, action and fields as a browser would submit them:
    text inputs with their value, checkboxes only when ticked."""

    def __init__(self) -> None:
        super().__init__()
        self.method = self.action = ""
        self.inputs: list[dict[str, str]] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        fields = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self._in_form, self.method, self.action = True, fields.get("method", "get"), fields.get("action", "")
        elif tag == "input" and self._in_form:
            self.inputs.append(fields)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def call(port: int, method: str, path: str, body: object = None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_the_form_posted_as_a_browser_would_ends_in_a_confirmed_subscriber(tmp_path: Path):
    port = free_port()
    with SmtpServer() as smtp:
        env = platform_env(PORT=str(port), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", ESEQ_TICK_SECONDS="0.5",
                           SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port))
        procs = [Proc("web", web_argv(port), env, tmp_path), Proc("worker", worker_argv("all"), env, tmp_path)]
        with running(procs):
            assert wait_healthy(port)["status"] == "ok"
            _, account = call(port, "POST", "/api/v1/accounts", {"name": "Acme", "from_email": "news@acme.test"},
                              {"Authorization": f"Bearer {ADMIN_TOKEN}"})
            auth = {"X-API-Key": account["api_key"]}
            _, account = call(port, "PATCH", "/api/v1/account", {"opt_in": "double"}, auth)
            assert call(port, "POST", "/api/v1/topics", {"key": "newsletter", "name": "Newsletter"}, auth)[0] == 201

            with urllib.request.urlopen(account["subscribe_url"], timeout=30) as page:
                reader = FormReader()
                reader.feed(page.read().decode())
            assert reader.method.lower() == "post"
            fields: list[tuple[str, str]] = []
            for field in reader.inputs:
                kind, name = field.get("type", "text"), field.get("name", "")
                if kind == "email":
                    fields.append((name, "Reader@Example.test"))
                elif name == "first_name":
                    fields.append((name, "Rea"))
                elif kind == "checkbox":
                    fields.append((name, field["value"]))  # tick every topic
                elif kind == "text":
                    fields.append((name, field.get("value", "")))  # the honeypot, left as it is: empty
            assert {name for name, _ in fields} == {"email", "first_name", "topics", "website"}
            posted = urllib.request.Request(urllib.parse.urljoin(account["subscribe_url"], reader.action),
                                            data=urllib.parse.urlencode(fields).encode(), method="POST",
                                            headers={"Content-Type": "application/x-www-form-urlencoded"})
            with urllib.request.urlopen(posted, timeout=30) as answer:
                assert answer.status == 200 and "check your inbox" in answer.read().decode()

            wait_for(lambda: smtp.handler.to("reader@example.test"), 60, "the confirmation email")
            [email] = smtp.handler.to("reader@example.test")
            text = next(p.get_payload(decode=True).decode() for p in email.walk()
                        if p.get_content_type() == "text/plain")
            link = re.search(rf"http://127\.0\.0\.1:{port}/subscribe/confirm/\S+", text).group(0)
            _, found = call(port, "GET", "/api/v1/subscribers?email=reader@example.test", headers=auth)
            assert [s["status"] for s in found] == ["pending"]

            with urllib.request.urlopen(link, timeout=30) as confirmed:
                assert confirmed.status == 200 and "You are subscribed" in confirmed.read().decode()
            _, subscriber = call(port, "GET", f"/api/v1/subscribers/{found[0]['id']}", headers=auth)
            assert (subscriber["status"], subscriber["first_name"]) == ("active", "Rea")
            assert subscriber["topics"] == [{"key": "newsletter", "name": "Newsletter", "status": "subscribed"}]
