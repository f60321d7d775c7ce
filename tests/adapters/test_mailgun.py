"""Mailgun's messages endpoint against a local server that checks the documented request."""
from __future__ import annotations

import base64
import json
from urllib.parse import parse_qsl

import pytest

from delivery.errors import PermanentDeliveryError, RejectedMessageError, TransientDeliveryError, UnconfirmedDeliveryError
from delivery.providers.mailgun import MailgunConfig, MailgunTransport
from tests.adapters.conftest import KEY


def send(base_url: str, message, timeout: float = 5.0) -> str:
    config = MailgunConfig(api_key="key-alice", domain="news.example", base_url=base_url, timeout=timeout)
    with MailgunTransport(config) as mailgun:
        return mailgun.send(message, "alice@news.example", "bob@example.org")


def test_it_posts_the_documented_form_with_basic_auth_and_returns_the_id(provider, message):
    provider.answer(200, json.dumps({"id": "<20260302093000.1.2@news.example>", "message": "Queued. Thank you."}))
    assert send(provider.base_url, message) == "<20260302093000.1.2@news.example>"
    request = provider.last
    assert (request.method, request.path) == ("POST", "/v3/news.example/messages")
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"api:key-alice").decode()
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(request.body.decode(), strict_parsing=True) == [
        ("from", "Alice Example <alice@news.example>"),
        ("to", "bob@example.org"),
        ("subject", "Hello Bob"),
        ("text", "Hi Bob\n"),
        ("html", "<p>Hi Bob</p>\n"),
        ("h:List-Unsubscribe", "<mailto:alice@news.example?subject=unsubscribe>, <https://t.example/u/1>"),
        ("h:List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("h:X-Eseq-Message", KEY),
        ("v:eseq_message", KEY),
    ]


def test_a_429_is_transient_with_retry_after(provider, message):
    provider.answer(429, '{"message":"Too many requests"}', {"Retry-After": "7"})
    with pytest.raises(TransientDeliveryError) as caught:
        send(provider.base_url, message)
    assert caught.value.retry_after == 7


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_transient(provider, message, status):
    provider.answer(status, '{"message":"Internal error"}')
    with pytest.raises(TransientDeliveryError):
        send(provider.base_url, message)


def test_a_400_about_the_to_address_is_permanent(provider, message):
    provider.answer(400, '{"message":"\'to\' parameter is not a valid address. please check documentation"}')
    with pytest.raises(PermanentDeliveryError, match="not a valid address"):
        send(provider.base_url, message)


@pytest.mark.parametrize("said", ["'from' parameter is not a valid address. please check documentation",
                                  "to parameter is missing"])
def test_a_400_about_our_payload_is_not_blamed_on_the_recipient(provider, message, said):
    provider.answer(400, json.dumps({"message": said}))
    with pytest.raises(TransientDeliveryError) as caught:
        send(provider.base_url, message)
    assert not caught.value.permanent


def test_a_message_too_large_fails_without_blaming_the_recipient(provider, message):
    provider.answer(413, '{"message":"Request entity too large"}')
    with pytest.raises(RejectedMessageError, match="too large") as caught:
        send(provider.base_url, message)
    assert caught.value.permanent and not caught.value.suppresses


def test_an_unknown_domain_is_transient(provider, message):
    provider.answer(404, '{"message":"Domain not found: news.example"}')
    with pytest.raises(TransientDeliveryError, match="Domain not found"):
        send(provider.base_url, message)


def test_a_wrong_api_key_is_transient_and_not_echoed(provider, message):
    provider.answer(401, "Forbidden", {"Content-Type": "text/plain"})
    with pytest.raises(TransientDeliveryError) as caught:
        send(provider.base_url, message)
    assert "key-alice" not in str(caught.value)


def test_connection_refused_is_transient_and_not_in_doubt(nothing_listening, message):
    with pytest.raises(TransientDeliveryError, match="cannot reach") as refused:
        send(nothing_listening, message)
    assert not refused.value.in_doubt  # nothing reached the provider: another may be tried


def test_a_provider_slower_than_the_timeout_leaves_the_message_in_doubt(provider, message):
    provider.answer(200, '{"id":"<x@news.example>"}', delay=1.0)
    with pytest.raises(UnconfirmedDeliveryError, match="after the whole request was sent"):
        send(provider.base_url, message, timeout=0.2)
