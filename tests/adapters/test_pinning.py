"""Every transport of a provider an account configured checks its host with the
SSRF guard when it connects, and connects to the address checked: a name that
was public when the provider was saved and answers loopback now (DNS rebinding)
reaches nothing, and a second lookup's answer is never used. DNS is stood in for
by tests.support.dns; the servers are real, on 127.0.0.1."""
from __future__ import annotations

import json

import pytest

from core.netguard import host_check
from delivery.errors import TransientDeliveryError
from delivery.providers import build_transport
from tests.support.dns import rebinding
from tests.support.smtp import PipeliningHandler, SmtpServer

SENDER, RECIPIENT = "alice@news.example", "bob@example.org"
RELAY = "relay.rebind.test"
API = "api.rebind.test"
# What each HTTP adapter needs besides a base URL, and the answer its provider gives.
HTTP_KINDS = {
    "sendgrid": ({"api_key": "SG.alice"}, 202, {}),
    "postmark": ({"server_token": "alice-token"}, 200, {"MessageID": "pm-1", "ErrorCode": 0}),
    "mailgun": ({"api_key": "key-alice", "domain": "news.example"}, 200, {"id": "<mg-1@news.example>"}),
    "ses": ({"access_key_id": "AKIAALICE", "secret_access_key": "alice-secret", "region": "eu-west-1"}, 200,
            {"MessageId": "ses-1"}),
}


def smtp(port: int, allow_private: bool):  # type: ignore[no-untyped-def]
    return build_transport("smtp", {"host": RELAY, "port": port, "timeout": 5}, "relay", host_check(allow_private))


def test_an_smtp_relay_is_reached_at_the_address_its_check_accepted_with_one_lookup_a_batch(monkeypatch, message):
    # The guard's lookup says 127.0.0.1, where the server listens; any later lookup
    # says 127.0.0.2, where nothing does. Loopback is allowed here, as an operator may.
    dns = rebinding(monkeypatch, RELAY, "127.0.0.1", "127.0.0.2")
    with SmtpServer(handler=PipeliningHandler()) as server:
        with smtp(server.port, allow_private=True) as relay:
            relay.send(message, SENDER, RECIPIENT)
            relay.send(message, SENDER, "carol@example.org")
    assert [r.recipients for r in server.handler.received] == [[RECIPIENT], ["carol@example.org"]]
    assert server.handler.greetings == 1 and dns.lookups == 1, "one connection, one lookup, for the batch"


def test_an_smtp_relay_whose_name_now_answers_loopback_is_refused_before_connecting(monkeypatch, message):
    rebinding(monkeypatch, RELAY, "127.0.0.1")
    with SmtpServer(handler=PipeliningHandler()) as server:
        with smtp(server.port, allow_private=False) as relay:
            with pytest.raises(TransientDeliveryError, match=f"refused to connect to {RELAY}.*non-public"):
                relay.send(message, SENDER, RECIPIENT)
    assert server.handler.greetings == 0 and server.handler.received == []


def test_each_checked_address_of_a_relay_is_tried_in_turn_as_its_name_would_be(monkeypatch, message):
    # The name's first address takes no connection (as an unrouted IPv6 one may not).
    dns = rebinding(monkeypatch, RELAY, "127.0.0.2,127.0.0.1", "127.0.0.2")
    with SmtpServer(handler=PipeliningHandler()) as server:
        with smtp(server.port, allow_private=True) as relay:
            relay.send(message, SENDER, RECIPIENT)
    assert len(server.handler.received) == 1 and dns.lookups == 1


def test_the_operators_own_relay_is_not_checked(monkeypatch, message):
    # SMTP_HOST is the operator's choice: no check, so loopback works without allow_private.
    with SmtpServer(handler=PipeliningHandler()) as server:
        with build_transport("smtp", {"host": "127.0.0.1", "port": server.port, "timeout": 5}, "smtp") as relay:
            relay.send(message, SENDER, RECIPIENT)
    assert len(server.handler.received) == 1


def http_transport(kind: str, port: int, allow_private: bool):  # type: ignore[no-untyped-def]
    config, _, _ = HTTP_KINDS[kind]
    return build_transport(kind, {**config, "base_url": f"http://{API}:{port}"}, kind, host_check(allow_private))


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_an_http_provider_is_reached_at_the_address_its_check_accepted_under_its_name(
        kind, monkeypatch, provider, message):
    _, status, body = HTTP_KINDS[kind]
    provider.answer(status, json.dumps(body), {"Content-Type": "application/json"})
    port = int(provider.base_url.rsplit(":", 1)[1])
    dns = rebinding(monkeypatch, API, "127.0.0.1", "127.0.0.2")
    with http_transport(kind, port, allow_private=True) as transport:
        transport.send(message, SENDER, RECIPIENT)
    assert provider.last.headers["Host"] == f"{API}:{port}"
    assert dns.lookups == 1


def test_each_checked_address_of_an_http_provider_is_tried_in_turn(monkeypatch, provider, message):
    provider.answer(202)
    port = int(provider.base_url.rsplit(":", 1)[1])
    rebinding(monkeypatch, API, "127.0.0.2,127.0.0.1", "127.0.0.2")
    with http_transport("sendgrid", port, allow_private=True) as transport:
        transport.send(message, SENDER, RECIPIENT)
    assert provider.last.headers["Host"] == f"{API}:{port}"


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_an_http_provider_whose_name_now_answers_loopback_gets_no_request(kind, monkeypatch, provider, message):
    port = int(provider.base_url.rsplit(":", 1)[1])
    rebinding(monkeypatch, API, "127.0.0.1")
    with http_transport(kind, port, allow_private=False) as transport:
        with pytest.raises(TransientDeliveryError, match=f"refused to connect to {API}.*non-public"):
            transport.send(message, SENDER, RECIPIENT)
    assert provider.requests == []
