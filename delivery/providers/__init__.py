"""Email providers behind one interface (``name``, ``send(message, sender,
recipient) -> provider message id``, used as a context manager): SMTP and one
HTTP adapter per provider, built from a provider row's ``kind`` and ``config``.

Idempotency keys: none of SendGrid, Postmark, Mailgun or SES v2 SendEmail accepts
one, so a crash between a provider's acceptance and our record can still
duplicate a message. Every adapter passes our X-Eseq-Message key where the
provider echoes it back on its events (SendGrid custom_args, Postmark Metadata,
Mailgun v: variables, SES the raw header), so duplicates can be recognised and
``sending`` rows reconciled.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from core.netguard import HostCheck
from delivery.providers.mailgun import MailgunConfig, MailgunTransport
from delivery.providers.postmark import PostmarkConfig, PostmarkTransport
from delivery.providers.sendgrid import SendgridConfig, SendgridTransport
from delivery.providers.ses import SesConfig, SesTransport, is_region
from delivery.smtp import SmtpConfig, SmtpTransport

CONFIG_FIELDS: dict[str, tuple[str, ...]] = {
    "smtp": ("host", "port", "username", "password", "use_tls", "use_ssl", "allow_plaintext_auth", "timeout"),
    "sendgrid": ("api_key", "base_url", "timeout", "webhook_public_key"),
    "postmark": ("server_token", "message_stream", "broadcast_stream", "base_url", "timeout", "webhook_username",
                 "webhook_password"),
    "mailgun": ("api_key", "domain", "base_url", "timeout", "webhook_signing_key"),
    "ses": ("access_key_id", "secret_access_key", "region", "session_token", "configuration_set", "base_url",
            "timeout", "webhook_topic_arns"),
}
# The webhook_* keys verify the provider's event webhooks (inbound/): sendgrid's is a
# public key, the others are shared secrets.
WEBHOOK_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(key for key in keys if key.startswith("webhook_")) for kind, keys in CONFIG_FIELDS.items()}
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "smtp": ("host",),
    "sendgrid": ("api_key",),
    "postmark": ("server_token",),
    "mailgun": ("api_key", "domain"),
    "ses": ("access_key_id", "secret_access_key", "region"),
}
# Stored with the provider, never returned by the API nor put in an error message.
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "smtp": ("password",),
    "sendgrid": ("api_key",),
    "postmark": ("server_token", "webhook_password"),
    "mailgun": ("api_key", "webhook_signing_key"),
    "ses": ("secret_access_key", "session_token"),
}
# Keys that decide where a provider's credentials are sent, or whether encrypted:
# changing one takes the credentials sent again (provider_admin), so that whoever
# can edit a provider without knowing its secrets cannot redirect them to himself.
DESTINATION_FIELDS: dict[str, tuple[str, ...]] = {
    "smtp": ("host", "port", "use_tls", "use_ssl"),
    "sendgrid": ("base_url",),
    "postmark": ("base_url",),
    "mailgun": ("base_url",),
    "ses": ("region", "base_url"),
}
_BOOLEANS = {"use_tls", "use_ssl", "allow_plaintext_auth"}
# Keys that only decide what validation accepts: no transport takes them.
_VALIDATION_ONLY = {"allow_plaintext_auth"}
MAX_TIMEOUT = 60.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ConfigKeyError(ValueError):
    """A config refused for one key's value; ``key`` lets the API name the field."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


_BUILDERS: dict[str, Callable[[dict[str, Any], HostCheck | None], Any]] = {
    "smtp": lambda c, check: SmtpTransport(SmtpConfig(**c), check),
    "sendgrid": lambda c, check: SendgridTransport(SendgridConfig(**c), check),
    "postmark": lambda c, check: PostmarkTransport(PostmarkConfig(**c), check),
    "mailgun": lambda c, check: MailgunTransport(MailgunConfig(**c), check),
    "ses": lambda c, check: SesTransport(SesConfig(**c), check),
}


_CONFIGS: dict[str, type] = {"smtp": SmtpConfig, "sendgrid": SendgridConfig, "postmark": PostmarkConfig,
                              "mailgun": MailgunConfig, "ses": SesConfig}


def destination(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The DESTINATION_FIELDS of a config as the transport will use them (a key
    left out means its default), so that sending a default explicitly is no change."""
    defaults = {f.name: f.default for f in dataclasses.fields(_CONFIGS[kind])
                if f.default is not dataclasses.MISSING}
    return {key: config.get(key, defaults.get(key)) for key in DESTINATION_FIELDS[kind]}


def outbound_secrets(kind: str) -> tuple[str, ...]:
    """The secrets a transport sends to the provider (webhook_* ones only check
    what the provider sends us)."""
    return tuple(key for key in SECRET_FIELDS.get(kind, ()) if not key.startswith("webhook_"))


def _check(kind: str, key: str, value: Any) -> None:
    # Messages name the key, never the value: it may be a secret.
    if key in _BOOLEANS:
        if not isinstance(value, bool):
            raise ValueError(f"{kind} config '{key}' must be true or false")
    elif key == "port":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise ValueError(f"{kind} config 'port' must be an integer from 1 to 65535")
    elif key == "timeout":
        # At most a minute: a send must finish well inside its claim's lease
        # (delivery.sender.send_budget), or another worker could be handed it mid-send.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT:
            raise ValueError(f"{kind} config 'timeout' must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}")
    elif key == "base_url":
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise ValueError(f"{kind} config 'base_url' must be an http(s) URL")
    elif value is not None and not isinstance(value, str):
        raise ValueError(f"{kind} config '{key}' must be a string")
    elif isinstance(value, str) and _CONTROL.search(value):
        # A key pasted with its line break would be refused by the HTTP client
        # only when sending, in an error quoting the header, key and all.
        raise ValueError(f"{kind} config '{key}' must not contain line breaks or other control characters")


def require_encrypted_auth(kind: str, config: dict[str, Any]) -> None:
    """smtplib sends AUTH PLAIN/LOGIN over whatever connection it has: without TLS
    the password crosses the network readable, so a provider saved through the API
    takes an explicit opt-in for that. Not checked when sending: rows saved before
    this rule, and the environment's relay (SMTP_*), keep working as configured."""
    if kind != "smtp" or not (config.get("username") or config.get("password")):
        return
    if config.get("use_tls") or config.get("use_ssl") or config.get("allow_plaintext_auth"):
        return
    raise ConfigKeyError("use_tls", "smtp config with a username or password needs 'use_tls' or 'use_ssl' "
                                    "(or 'allow_plaintext_auth': true to send them unencrypted)")


def _check_shapes(kind: str, config: dict[str, Any]) -> None:
    """What a key's type alone does not settle: values that must have a shape."""
    if kind == "ses" and not is_region(config["region"]):
        # The endpoint's host is built from it (SesConfig.endpoint).
        raise ConfigKeyError("region", "ses config 'region' must be an AWS region name such as eu-west-1")


def validate_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config with empty optional values dropped; ValueError naming the first
    key that is missing, unknown or of the wrong type (ConfigKeyError when one
    key's value is refused)."""
    if kind not in CONFIG_FIELDS:
        raise ValueError(f"unknown provider kind '{kind}'; expected one of {', '.join(CONFIG_FIELDS)}")
    for key in config:
        if key not in CONFIG_FIELDS[kind]:
            raise ValueError(f"{kind} config has unknown key '{key}'")
    for key in REQUIRED_FIELDS[kind]:
        if config.get(key) in (None, ""):
            raise ValueError(f"{kind} config needs '{key}'")
    cleaned = {key: value for key, value in config.items() if value not in (None, "")}
    for key, value in cleaned.items():
        _check(kind, key, value)
    _check_shapes(kind, cleaned)
    return cleaned


def build_transport(kind: str, config: dict[str, Any], name: str, check: HostCheck | None = None) -> Any:
    """A transport for one provider row; ``name`` is what outcomes are recorded under.
    ``check`` (core.netguard.host_check) vets each connection's host when it is made,
    for a provider an account configured; None trusts the host (the operator's)."""
    # The webhook_* keys verify the provider's events coming in; sending needs none.
    cleaned = {k: v for k, v in validate_config(kind, config).items()
               if not k.startswith("webhook_") and k not in _VALIDATION_ONLY}
    return _BUILDERS[kind]({**cleaned, "name": name}, check)
