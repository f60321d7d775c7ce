"""Building a transport from a provider row's kind and config."""
from __future__ import annotations

import pytest

from delivery.batch import default_route
from delivery.errors import TransientDeliveryError
from delivery.providers import (
    CONFIG_FIELDS,
    REQUIRED_FIELDS,
    SECRET_FIELDS,
    ConfigKeyError,
    build_transport,
    http,
    require_encrypted_auth,
    validate_config,
)
from delivery.providers.mailgun import MailgunTransport
from delivery.providers.postmark import PostmarkTransport
from delivery.providers.sendgrid import SendgridTransport
from delivery.providers.ses import SesTransport
from delivery.smtp import SmtpTransport
from settings import load_settings

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


@pytest.mark.parametrize("region", ["@10.0.0.5:8443/#", "eu-west-1.attacker.example", "10.0.0.5", "EU-WEST-1",
                                    "eu-west-1/", "eu-west", "eu-west-1\u0663"])
def test_an_ses_region_that_is_not_a_region_name_is_refused_by_name(region):
    # The endpoint's host is built from the region: anything else could aim signed requests inward.
    with pytest.raises(ConfigKeyError, match="'region'") as caught:
        build_transport("ses", {**COMPLETE["ses"], "region": region}, "p")
    assert caught.value.key == "region"


@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-2", "us-gov-west-1", "il-central-1"])
def test_real_ses_regions_are_accepted_and_make_the_endpoint(region):
    transport = build_transport("ses", {**COMPLETE["ses"], "region": region}, "p")
    assert transport.config.endpoint == f"https://email.{region}.amazonaws.com"


@pytest.mark.parametrize("credentials", [{"username": "alice", "password": "pw"}, {"username": "alice"},
                                         {"password": "pw"}])
def test_smtp_credentials_without_tls_are_refused_naming_use_tls(credentials):
    config = {"host": "smtp.example.org", "port": 587, **credentials, "use_tls": False, "use_ssl": False}
    with pytest.raises(ConfigKeyError, match="'use_tls'") as caught:
        require_encrypted_auth("smtp", validate_config("smtp", config))
    assert caught.value.key == "use_tls" and "pw" not in str(caught.value)


@pytest.mark.parametrize("encrypted", [{"use_tls": True}, {"use_ssl": True, "port": 465},
                                       {"allow_plaintext_auth": True}])
def test_smtp_credentials_go_with_tls_or_an_explicit_opt_in(encrypted):
    config = {"host": "smtp.example.org", "port": 587, "username": "alice", "password": "pw", **encrypted}
    require_encrypted_auth("smtp", validate_config("smtp", config))
    assert isinstance(build_transport("smtp", config, "p"), SmtpTransport)


def test_a_stored_relay_with_a_login_and_no_tls_still_sends():
    # The rule is for configs saved through the API: a row saved before it, or the
    # environment's SMTP_* relay, must not start failing every send.
    config = {"host": "smtp.example.org", "port": 25, "username": "alice", "password": "pw"}
    assert isinstance(build_transport("smtp", config, "p"), SmtpTransport)


def test_the_opt_in_must_be_a_boolean():
    with pytest.raises(ValueError, match="'allow_plaintext_auth' must be true or false"):
        build_transport("smtp", {**COMPLETE["smtp"], "use_tls": False, "allow_plaintext_auth": "yes"}, "p")


def test_the_environments_smtp_without_credentials_or_tls_still_builds():
    # make run's relay (SMTP_HOST=mailpit, no TLS, no login) goes through the same validation.
    route = default_route(load_settings({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "1025"}))
    assert route is not None
    transport = build_transport(route.kind, route.config, route.name)
    assert isinstance(transport, SmtpTransport) and transport.config.port == 1025


def test_the_smtp_password_is_not_in_the_configs_repr():
    transport = build_transport("smtp", {**COMPLETE["smtp"], "password": "hunter2-smtp"}, "p")
    assert "hunter2-smtp" not in repr(transport.config)
