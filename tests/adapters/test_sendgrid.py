"""SendGrid v3 Mail Send against a local server that checks the documented request."""
from __future__ import annotations

import json
import time

import pytest

from delivery.errors import (PermanentDeliveryError, RejectedMessageError, ThrottledError, TransientDeliveryError,
                             UnconfirmedDeliveryError)
from delivery.providers.sendgrid import SendgridConfig, SendgridTransport
from tests.adapters.conftest import KEY


def transport(base_url: str, timeout: float = 5.0) -> SendgridTransport:
    return SendgridTransport(SendgridConfig(api_key="SG.alice-key", base_url=base_url, timeout=timeout))


def test_it_posts_the_documented_request_and_returns_x_message_id(provider, message):
    provider.answer(202, headers={"X-Message-Id": "sg-abc123"})
    with transport(provider.base_url) as sendgrid:
        assert sendgrid.send(message, "alice@news.example", "bob@example.org") == "sg-abc123"
    request = provider.last
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.headers["Authorization"] == "Bearer SG.alice-key"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "personalizations": [{"to": [{"email": "bob@example.org"}]}],
        "from": {"email": "alice@news.example", "name": "Alice Example"},
        "subject": "Hello Bob",
        "content": [{"type": "text/plain", "value": "Hi Bob\n"}, {"type": "text/html", "value": "<p>Hi Bob</p>\n"}],
        "headers": {
            "List-Unsubscribe": "<mailto:alice@news.example?subject=unsubscribe>, <https://t.example/u/1>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Eseq-Message": KEY,
        },
        "custom_args": {"eseq_message": KEY},
    }


def test_a_202_without_x_message_id_is_still_accepted_under_our_message_id(provider, message):
    provider.answer(202)
    assert transport(provider.base_url).send(message, "alice@news.example", "bob@example.org") == message["Message-ID"]


def test_a_429_is_a_throttle_with_retry_after(provider, message):
    provider.answer(429, '{"errors":[{"field":null,"message":"too many requests"}]}', {"Retry-After": "30"})
    with pytest.raises(ThrottledError) as caught:
        transport(provider.base_url).send(message, "alice@news.example", "bob@example.org")
    assert caught.value.retry_after == 30


def test_a_429_without_retry_after_waits_for_sendgrids_rate_limit_reset(provider, message):
    reset = int(time.time()) + 40  # SendGrid documents X-RateLimit-Reset, an epoch time
    provider.answer(429, '{"errors":[{"field":null,"message":"too many requests"}]}', {"X-RateLimit-Reset": str(reset)})
    with pytest.raises(ThrottledError) as caught:
        transport(provider.base_url).send(message, "alice@news.example", "bob@example.org")
    assert 30 < caught.value.retry_after <= 40


def test_a_429_that_says_nothing_still_pauses_the_provider(provider, message):
    provider.answer(429, '{"errors":[{"field":null,"message":"too many requests"}]}')
    with pytest.raises(ThrottledError) as caught:
        transport(provider.base_url).send(message, "alice@news.example", "bob@example.org")
    assert caught.value.retry_after == 60


def test_a_gateway_timeout_leaves_the_message_in_doubt(provider, message):
    provider.answer(504, "<html>gateway timeout</html>")
    with pytest.raises(UnconfirmedDeliveryError):
        transport(provider.base_url).send(message, "alice@news.example", "bob@example.org")


def test_a_message_too_large_fails_without_blaming_the_recipient(provider, message):
    provider.answer(413, '{"errors":[{"field":null,"message":"payload too large"}]}')
    with pytest.raises(RejectedMessageError) as caught:
        transport(provider.base_url).send(message, "alice@news.example", "bob@example.org")
    assert not caught.value.suppresses


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_transient(provider, message, status):
    provider.answer(status, "<html>oops</html>")
    with pytest.raises(TransientDeliveryError):
        transport(provider.base_url).send(message, "alice@news.example", "bob@example.org")


def test_a_400_about_the_recipient_address_is_permanent(provider, message):
    provider.answer(400, json.dumps({"errors": [{"message": "Does not contain a valid address.",
                                                 "field": "personalizations.0.to.0.email", "help": None}]}))
    with pytest.raises(PermanentDeliveryError, match="valid address"):
        transport(provider.base_url).send(message, "alice@news.example", "bob@example.org")


@pytest.mark.parametrize("error", [
    {"message": "The from email does not contain a valid address.", "field": "from.email"},
    {"message": "The to array is required for all personalization objects, and must have at least one email "
                "object with a valid email address.", "field": "personalizations.0.to"},
])
def test_a_400_about_our_payload_is_not_blamed_on_the_recipient(provider, message, error):
    provider.answer(400, json.dumps({"errors": [error]}))
    with pytest.raises(TransientDeliveryError):
        transport(provider.base_url).send(message, "alice@news.example", "bob@example.org")


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_are_transient_so_failover_moves_on(provider, message, status):
    provider.answer(status, '{"errors":[{"field":null,"message":"The provided authorization grant is invalid"}]}')
    with pytest.raises(TransientDeliveryError) as caught:
        transport(provider.base_url).send(message, "alice@news.example", "bob@example.org")
    assert "SG.alice-key" not in str(caught.value)


def test_a_redirect_is_not_followed(provider, message):
    # Followed, the redirect would reach the same stand-in and count a second request.
    provider.answer(302, headers={"Location": provider.base_url + "/elsewhere"})
    with pytest.raises(TransientDeliveryError, match="redirect"):
        transport(provider.base_url).send(message, "alice@news.example", "bob@example.org")
    assert len(provider.requests) == 1


def test_connection_refused_is_transient_and_not_in_doubt(nothing_listening, message):
    with pytest.raises(TransientDeliveryError, match="cannot reach") as refused:
        transport(nothing_listening).send(message, "alice@news.example", "bob@example.org")
    assert not refused.value.in_doubt  # nothing reached the provider: another may be tried


def test_a_provider_slower_than_the_timeout_leaves_the_message_in_doubt(provider, message):
    provider.answer(202, delay=1.0)
    with pytest.raises(UnconfirmedDeliveryError, match="after the whole request was sent"):
        transport(provider.base_url, timeout=0.2).send(message, "alice@news.example", "bob@example.org")
