"""Building a transport from a provider row's kind and config."""
from __future__ import annotations

import pytest

from delivery.errors import TransientDeliveryError
from delivery.providers import CONFIG_FIELDS, REQUIRED_FIELDS, SECRET_FIELDS, build_transport, http
from delivery.providers.mailgun import MailgunTransport
from delivery.providers.postmark import PostmarkTransport
from delivery.providers.sendgrid import SendgridTransport
from delivery.providers.ses import SesTransport
from delivery.smtp import SmtpTransport

COMPLETE = {
    "smtp": {"host": "smtp.example.org", "port": 587, "username": "alice", "password": "pw", "use_tls": True},
    "sendgrid": {"api_key": "SG.alice"},
    "postmark": {"server_token": "alice-token", "message_stream": "broadcast"},
    "mailgun": {"api_key": "key-alice", "domain": "news.example", "base_url": "https://api.eu.mailgun.net"},
    "ses": {"access_key_id": "AKIAALICE", "secret_access_key": "alice-secret", "region": "eu-west-1"},
}
CLASSES = {"smtp": SmtpTransport, "sendgrid": SendgridTransport, "postmark": PostmarkTransport,
           "mailgun": MailgunTransport, "ses": SesTransport}


@pytest.mark.parametrize("kind", sorted(COMPLETE))
def test_each_kind_builds_its_adapter_under_the_given_name(kind):
    transport = build_transport(kind, COMPLETE[kind], "alice-primary")
    assert isinstance(transport, CLASSES[kind])
    assert transport.name == "alice-primary"


def test_the_kinds_match_the_provider_model():
    from models.provider import PROVIDER_KINDS
    assert set(CONFIG_FIELDS) == set(PROVIDER_KINDS) == set(SECRET_FIELDS)


@pytest.mark.parametrize("kind, key", [(k, key) for k, keys in REQUIRED_FIELDS.items() for key in keys])
def test_a_missing_required_key_is_named(kind, key):
    config = {k: v for k, v in COMPLETE[kind].items() if k != key}
    with pytest.raises(ValueError, match=f"{kind} config needs '{key}'"):
        build_transport(kind, config, "p")


def test_an_empty_required_value_counts_as_missing():
    with pytest.raises(ValueError, match="needs 'api_key'"):
        build_transport("sendgrid", {"api_key": ""}, "p")


def test_an_unknown_key_is_named():
    with pytest.raises(ValueError, match="unknown key 'apikey'"):
        build_transport("sendgrid", {"api_key": "SG.alice", "apikey": "typo"}, "p")


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown provider kind 'sparkpost'"):
        build_transport("sparkpost", {}, "p")


@pytest.mark.parametrize("kind, key, value", [
    ("smtp", "port", "587"), ("smtp", "port", 0), ("smtp", "use_tls", "yes"), ("sendgrid", "timeout", -1), ("smtp", "timeout", 600),
    ("sendgrid", "timeout", True), ("postmark", "base_url", "ftp://api.postmarkapp.com"), ("ses", "region", 3),
])
def test_a_value_of_the_wrong_type_is_named(kind, key, value):
    with pytest.raises(ValueError, match=f"'{key}'"):
        build_transport(kind, {**COMPLETE[kind], key: value}, "p")


@pytest.mark.parametrize("kind, key", [("sendgrid", "api_key"), ("postmark", "server_token"), ("smtp", "host")])
def test_a_value_with_a_line_break_is_refused_without_repeating_it(kind, key):
    with pytest.raises(ValueError, match=f"'{key}' must not contain line breaks") as caught:
        build_transport(kind, {**COMPLETE[kind], key: "SG.pasted-key\n"}, "p")
    assert "pasted-key" not in str(caught.value)


def test_a_header_http_refuses_is_reported_without_its_value(provider):
    # A row stored before the check above: the HTTP client refuses the header and
    # its error quotes it.
    with pytest.raises(TransientDeliveryError) as caught:
        http.post(provider.base_url + "/v3/mail/send", b"{}", {"Authorization": "Bearer SG.pasted-key\n"}, 5)
    assert "pasted-key" not in str(caught.value) and "character" in str(caught.value)


def test_errors_never_repeat_a_secret_value():
    with pytest.raises(ValueError) as caught:
        build_transport("ses", {**COMPLETE["ses"], "session_token": 12345}, "p")
    assert "12345" not in str(caught.value)


def test_secret_fields_are_config_fields():
    for kind, secrets in SECRET_FIELDS.items():
        assert set(secrets) <= set(CONFIG_FIELDS[kind])
