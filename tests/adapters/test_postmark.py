"""Postmark's single-send endpoint against a local server that checks the documented request."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from delivery.errors import PermanentDeliveryError, TransientDeliveryError, UnconfirmedDeliveryError
from delivery.mime import Envelope, build_message
from delivery.providers.postmark import PostmarkConfig, PostmarkTransport
from tests.adapters.conftest import KEY

OK = {"To": "bob@example.org", "SubmittedAt": "2026-03-02T09:30:00Z",
      "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "ErrorCode": 0, "Message": "OK"}


def transport(base_url: str, timeout: float = 5.0) -> PostmarkTransport:
    return PostmarkTransport(PostmarkConfig(server_token="alice-server-token", message_stream="broadcast",
                                            base_url=base_url, timeout=timeout))


def send(base_url: str, message, timeout: float = 5.0) -> str:
    with transport(base_url, timeout) as postmark:
        return postmark.send(message, "alice@news.example", "bob@example.org")


def test_it_posts_the_documented_request_and_returns_the_message_id(provider, message):
    provider.answer(200, json.dumps(OK), {"Content-Type": "application/json"})
    assert send(provider.base_url, message) == "b7bc2f4a-e38e-4336-af7d-e6c392c2f817"
    request = provider.last
    assert (request.method, request.path) == ("POST", "/email")
    assert request.headers["X-Postmark-Server-Token"] == "alice-server-token"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "From": "Alice Example <alice@news.example>",
        "To": "bob@example.org",
        "Subject": "Hello Bob",
        "TextBody": "Hi Bob\n",
        "HtmlBody": "<p>Hi Bob</p>\n",
        "Headers": [
            {"Name": "List-Unsubscribe", "Value": "<mailto:alice@news.example?subject=unsubscribe>, <https://t.example/u/1>"},
            {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
            {"Name": "X-Eseq-Message", "Value": KEY},
        ],
        "MessageStream": "broadcast",
        "Metadata": {"eseq_message": KEY},
    }


@pytest.mark.parametrize("transactional, broadcast_stream, expected", [
    (False, "newsletters", "newsletters"),  # marketing goes to the broadcast stream, as Postmark's policy asks
    (True, "newsletters", "outbound"),  # a transactional sequence's mail stays on the transactional stream
    (False, None, "outbound"),  # no broadcast stream configured: everything on message_stream
])
def test_marketing_mail_goes_to_the_broadcast_stream_when_one_is_set(provider, transactional, broadcast_stream,
                                                                      expected):
    built = build_message(Envelope(
        from_email="alice@news.example", from_name=None, to_email="bob@example.org", subject="Hello", html=None,
        text="Hi", unsubscribe_url="https://t.example/u/1", unsubscribe_mailto=None, message_key=KEY,
        transactional=transactional), datetime.now(timezone.utc))
    provider.answer(200, json.dumps(OK))
    config = PostmarkConfig(server_token="t", broadcast_stream=broadcast_stream, base_url=provider.base_url)
    PostmarkTransport(config).send(built, "alice@news.example", "bob@example.org")
    assert json.loads(provider.last.body)["MessageStream"] == expected


def test_a_429_is_transient_with_retry_after(provider, message):
    provider.answer(429, '{"ErrorCode":429,"Message":"Rate limit exceeded"}', {"Retry-After": "12"})
    with pytest.raises(TransientDeliveryError) as caught:
        send(provider.base_url, message)
    assert caught.value.retry_after == 12


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_transient(provider, message, status):
    provider.answer(status, '{"ErrorCode":100,"Message":"Maintenance"}')
    with pytest.raises(TransientDeliveryError):
        send(provider.base_url, message)


def test_an_inactive_recipient_is_permanent(provider, message):
    provider.answer(422, json.dumps({"ErrorCode": 406, "Message": (
        "You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: "
        "bob@example.org. Inactive recipients are ones that have generated a hard bounce, a spam complaint, "
        "or a manual suppression.")}))
    with pytest.raises(PermanentDeliveryError, match="inactive"):
        send(provider.base_url, message)


def test_an_invalid_to_address_is_permanent(provider, message):
    provider.answer(422, json.dumps({"ErrorCode": 300, "Message": (
        "Error parsing 'To': Illegal email address 'bob@example'. It must contain the '@' symbol.")}))
    with pytest.raises(PermanentDeliveryError, match="Illegal email address"):
        send(provider.base_url, message)


def test_an_invalid_request_about_our_sender_is_not_blamed_on_the_recipient(provider, message):
    provider.answer(422, json.dumps({"ErrorCode": 300, "Message": (
        "Invalid 'From' address: 'alice@news.example' is not a verified sender signature.")}))
    with pytest.raises(TransientDeliveryError):
        send(provider.base_url, message)


def test_a_bad_server_token_is_transient_and_not_echoed(provider, message):
    provider.answer(401, '{"ErrorCode":10,"Message":"The Server Token you provided in the X-Postmark-Server-Token request header was invalid."}')
    with pytest.raises(TransientDeliveryError) as caught:
        send(provider.base_url, message)
    assert "alice-server-token" not in str(caught.value)


def test_connection_refused_is_transient_and_not_in_doubt(nothing_listening, message):
    with pytest.raises(TransientDeliveryError, match="cannot reach") as refused:
        send(nothing_listening, message)
    assert not refused.value.in_doubt  # nothing reached the provider: another may be tried


def test_a_provider_slower_than_the_timeout_leaves_the_message_in_doubt(provider, message):
    provider.answer(200, json.dumps(OK), delay=1.0)
    with pytest.raises(UnconfirmedDeliveryError, match="after the whole request was sent"):
        send(provider.base_url, message, timeout=0.2)
