"""The send path's shortcuts write the same bytes as the plain per-email path.

Each email goes through what ``delivery.sender.prepare`` does (render, footer,
tracking links, MIME, DKIM) twice: once as the worker runs it, once with the
shortcuts taken out (Jinja's own sandbox lookup instead of the plain-dict one,
the href of each link worked out afresh instead of remembered, ``followable``
always translating). Several subscribers, variants of the content, HTML with a
derived text part and a hand-written one, DKIM on and off.
"""
from __future__ import annotations

import random
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from jinja2.sandbox import SandboxedEnvironment

import content.html_input
import content.render
import delivery.tracking
from content.compliance import add_unsubscribe_footer
from content.render import render_email, subscriber_context
from delivery.dkim import SIGNED_HEADERS, DkimKey, signature_field
from delivery.mime import Envelope, build_message
from delivery.tracking import Tracker
from tests.support.factories import rsa_pem

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
TRACKER = Tracker("sameness-secret-key-0123456789abcdef", "https://mail.example.test")

HTML = ("<html><body><h1>Hello {{ subscriber.first_name|default('there') }}</h1>"
        "<p>Your plan: {{ subscriber.attributes.plan }} — {{ subscriber.attributes.get('items', 0) }} {{ subscriber.keys is defined }}"
        " {{ subscriber.missing }} {{ subscriber.tags|join(', ') }}</p>"
        '<p><a href="https://shop.example.test/spring?a=1&amp;b={{ subscriber.id }}">Spring</a> · '
        '<a href="https://shop.example.test/sale\n">Sale</a> · <a href="mailto:help@example.test">Help</a> · '
        '<a href="{{ unsubscribe_url }}?from=top" style="font-size:11px">Leave</a></p>'
        "{% for tag in subscriber.tags %}<li>{{ loop.index }}. {{ tag }}</li>{% endfor %}</body></html>")
VARIANTS = [
    ("Spring, {{ subscriber.first_name }}", HTML, None),  # text derived from the HTML
    ("Sale for {{ subscriber.last_name or 'you' }}", HTML.replace("Spring", "Sale"),
     "Hi {{ subscriber.first_name }}, {{ subscriber.attributes.get('plan') }}\n{{ unsubscribe_url }}\n"),
    ("Plain text only", None, "Hi {{ subscriber.first_name }} <{{ subscriber.email }}>\n"),
]
SUBSCRIBERS = [
    SimpleNamespace(id=7, email="ada@example.test", first_name="Ada", last_name="Lovelace", timezone=None,
                    attributes={"plan": "pro", "items": 3}, tags=["news", "vip"]),
    SimpleNamespace(id=8, email="bo@example.test", first_name="Bø <b>&amp;", last_name=None, timezone="Europe/Oslo",
                    attributes={}, tags=[]),
    SimpleNamespace(id=9, email="cy@example.test", first_name=None, last_name="", timezone=None,
                    attributes={"plan": "free"}, tags=["a", "b", "c"]),
]


def build(subject: str, html: str | None, text: str | None, subscriber: Any, message_id: int,
          dkim: DkimKey | None) -> bytes:
    """One email as ``prepare`` builds it, its boundary and DKIM time fixed."""
    unsubscribe_url = TRACKER.unsubscribe_url(1, message_id)
    rendered = render_email(subject, html, text, subscriber_context(subscriber, {"unsubscribe_url": unsubscribe_url}))
    rendered = add_unsubscribe_footer(rendered, unsubscribe_url, "1 Main St\nSpringfield")
    random.seed(message_id)
    email = build_message(Envelope(
        from_email="news@example.test", from_name="News", to_email=subscriber.email, subject=rendered.subject,
        html=TRACKER.rewrite_html(rendered.html, 1, message_id) if rendered.html else None, text=rendered.text,
        unsubscribe_url=unsubscribe_url, unsubscribe_mailto=TRACKER.unsubscribe_mailto(1, message_id, "news@example.test"),
        message_key=f"1:{message_id}:a"), NOW)
    if dkim is not None:
        email.prepend_header(signature_field(email.raw, dkim, list(SIGNED_HEADERS), now=NOW.timestamp()))
    return email.raw


def batch(dkim: DkimKey | None) -> list[bytes]:
    return [build(subject, html, text, subscriber, 100 * v + n, dkim)
            for v, (subject, html, text) in enumerate(VARIANTS) for n, subscriber in enumerate(SUBSCRIBERS)]


@pytest.fixture(scope="module")
def dkim_key() -> DkimKey:
    return DkimKey("s1", "example.test", rsa_pem()[0].encode())


@pytest.mark.parametrize("signed", [False, True], ids=["no DKIM", "DKIM"])
def test_shortcuts_write_the_bytes_the_plain_path_writes(signed: bool, dkim_key: DkimKey,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    key = dkim_key if signed else None
    fast = batch(key)
    assert len(set(fast)) == len(fast)  # every email its own: names, links and tokens differ

    plain_followable = content.html_input.followable

    def always_translating(url: str) -> str:
        return url.translate(content.html_input._URL_DROPPED)

    monkeypatch.setattr(content.render._BoundedSandbox, "getattr", SandboxedEnvironment.getattr)
    monkeypatch.setattr(delivery.tracking, "_followed", lambda href: always_translating(
        delivery.tracking.html_unescape(href)).strip())
    monkeypatch.setattr(content.html_input, "followable", always_translating)
    assert content.html_input.followable is not plain_followable
    plain = batch(key)
    assert fast == plain
    assert b"Hello Ada" in fast[0] and b"/t/c/" in fast[0]


@pytest.mark.parametrize("name", ["first_name", "missing", "items", "get", "keys", "__class__", "_private", "copy"])
def test_plain_dict_lookup_answers_as_the_sandbox_does(name: str) -> None:
    env = content.render._html_env
    value = {"first_name": "Ada", "items": 3, "get": "x", "_private": 1}
    ours = env.getattr(value, name)
    theirs = SandboxedEnvironment.getattr(env, value, name)
    assert type(ours) is type(theirs)
    if callable(theirs):
        assert ours == theirs
    elif not isinstance(theirs, content.render.Undefined):
        assert ours == theirs
    else:
        assert ours._undefined_name == theirs._undefined_name and ours._undefined_hint == theirs._undefined_hint
