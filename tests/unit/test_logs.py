"""Logs are JSON, one object a line, and never carry a credential: not in fields
named like one, not in settings logged whole. From a real request's handling, with
the database: tests/integration/test_process_logs.py."""
from __future__ import annotations

import json
import logging
import sys

from observability.logs import JsonFormatter
from settings import load_settings


def formatted(message: str, exc_info: object = None, **extra: object) -> str:
    record = logging.LogRecord("eseq.test", logging.WARNING, __file__, 1, message, (), exc_info)  # type: ignore[arg-type]
    for key, value in extra.items():
        setattr(record, key, value)
    return JsonFormatter().format(record)


def test_each_record_is_one_json_object_with_time_level_logger_and_message() -> None:
    line = formatted("send deferred", message_id=42)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "eseq.test" and entry["msg"] == "send deferred"
    assert entry["message_id"] == 42 and entry["ts"].endswith("+00:00")


def test_fields_named_like_credentials_are_masked() -> None:
    secrets = {"smtp_password": "hunter2-smtp", "api_key": "esk_live_abcdef", "authorization": "Bearer eyJabc",
               "secret_key": "signing-key-xyz", "admin_token": "admin-tok-xyz", "sentry_dsn": "https://k@s/1"}
    line = formatted("provider configured", **secrets)
    for value in secrets.values():
        assert value not in line
    assert json.loads(line)["smtp_password"] == "***"


def test_settings_logged_whole_do_not_reveal_their_secrets() -> None:
    settings = load_settings({"SECRET_KEY": "signing-key-0123456789abc", "ESEQ_ADMIN_TOKEN": "admin-tok-456-0123456789abcdef0123",
                              "SMTP_PASSWORD": "smtp-pw-456", "OPENAI_API_KEY": "sk-openai-456"})
    line = formatted("starting", settings=settings)
    for secret in ("signing-key-0123456789abc", "admin-tok-456", "smtp-pw-456", "sk-openai-456"):
        assert secret not in line


def test_exceptions_keep_their_traceback() -> None:
    try:
        raise ValueError("bad row")
    except ValueError:
        line = formatted("import failed", exc_info=sys.exc_info())
    assert "ValueError: bad row" in json.loads(line)["exc"]
