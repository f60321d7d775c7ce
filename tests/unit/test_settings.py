"""Settings fail at start, naming the variable, so an operator fixes the right line
instead of reading a traceback from a worker hours later."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from settings import ConfigError, get_settings, load_settings, public_url_problem
from tests.conftest import ROOT

BAD_VALUES = [
    ("ESEQ_TICK_SECONDS", "soon"),
    ("ESEQ_TICK_SECONDS", "-5"),
    ("SMTP_PORT", "twenty-five"),
    ("PORT", "0"),
    ("SMTP_USE_TLS", "maybe"),
    ("DATABASE_URL", "mysql://root@localhost/eseq"),
    ("REDIS_URL", "http://127.0.0.1:6379"),
    ("CELERY_BROKER_URL", "ftp://broker"),
    ("CELERY_RESULT_BACKEND", "mongodb://results"),
    ("PUBLIC_BASE_URL", "javascript:alert(1)"),
    ("SENTRY_DSN", "not-a-url"),
    ("OPENAI_BASE_URL", "file:///etc/passwd"),
    ("ESEQ_JWT_EXPIRES_SECONDS", "1.5"),
    ("ESEQ_LEASE_SECONDS", "0"),
    ("ESEQ_WORKER_DEAD_AFTER_SECONDS", "0"),
    ("ESEQ_WORKER_DEAD_AFTER_SECONDS", "soon"),
    ("ESEQ_WEBHOOK_ALLOW_PRIVATE", "sometimes"),
    ("SECRET_KEY", "short"),
    ("ESEQ_SECRETS_KEYS", "not-a-fernet-key"),
    ("ESEQ_SECRETS_KEYS", "dGhpcnR5LXR3byBieXRlcyBvZiBrZXkgbWF0ZXJpYWw=,short"),
    ("ESEQ_ADMIN_TOKEN", "admin"),
    ("ESEQ_ADMIN_TOKEN", "x" * 31),
    ("ESEQ_METRICS_TOKEN", "scrape-me"),
    ("ESEQ_PROXY_HOPS", "-1"),
    ("ESEQ_PROXY_HOPS", "one"),
    ("ESEQ_DB_POOL_SIZE", "0"),
    ("ESEQ_DB_MAX_OVERFLOW", "-1"),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_a_bad_value_is_refused_with_the_variables_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({name: value})
    assert name in str(refused.value)


def test_tokens_of_32_characters_or_more_are_taken() -> None:
    settings = load_settings({"ESEQ_ADMIN_TOKEN": "a" * 32, "ESEQ_METRICS_TOKEN": "m" * 40, "ESEQ_PROXY_HOPS": "2"})
    assert (settings.admin_token, settings.metrics_token, settings.proxy_hops) == ("a" * 32, "m" * 40, 2)
    unset = load_settings({})
    assert (unset.admin_token, unset.metrics_token, unset.proxy_hops) == (None, None, 0)


def test_the_database_pool_is_sized_from_the_environment() -> None:
    sized = load_settings({"ESEQ_DB_POOL_SIZE": "3", "ESEQ_DB_MAX_OVERFLOW": "0"})
    assert (sized.db_pool_size, sized.db_max_overflow) == (3, 0)
    unset = load_settings({})
    assert (unset.db_pool_size, unset.db_max_overflow) == (10, 20)


def test_a_worker_is_taken_for_dead_after_15_seconds_unless_told_otherwise() -> None:
    assert load_settings({}).worker_dead_after_seconds == 15.0
    assert load_settings({"ESEQ_WORKER_DEAD_AFTER_SECONDS": "2.5"}).worker_dead_after_seconds == 2.5


def test_the_tests_own_admin_token_is_long_enough() -> None:
    from tests.conftest import ADMIN_TOKEN

    assert load_settings({"ESEQ_ADMIN_TOKEN": ADMIN_TOKEN}).admin_token == ADMIN_TOKEN


def test_nothing_set_means_the_embedded_default() -> None:
    settings = load_settings({"ESEQ_VAR_DIR": "/srv/eseq"})
    assert settings.embedded
    assert settings.database_url == "sqlite:////srv/eseq/eseq.sqlite"
    assert settings.broker_url == "sqla+sqlite:////srv/eseq/broker.sqlite"
    assert settings.secret_key_generated and len(settings.secret_key) >= 32


def test_redis_url_becomes_the_broker_and_result_backend_unless_they_are_set() -> None:
    settings = load_settings({"REDIS_URL": "redis://cache:6379/0"})
    assert (settings.broker_url, settings.result_backend) == ("redis://cache:6379/0", "redis://cache:6379/0")
    assert not settings.embedded
    own = load_settings({"REDIS_URL": "redis://cache:6379/0", "CELERY_BROKER_URL": "amqp://guest@mq//"})
    assert own.broker_url == "amqp://guest@mq//"


def test_heroku_style_postgres_urls_are_accepted() -> None:
    assert load_settings({"DATABASE_URL": "postgres://u@db/eseq"}).database_url == "postgresql://u@db/eseq"


def test_the_secrets_keys_are_read_in_order() -> None:
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert load_settings({"ESEQ_SECRETS_KEYS": f" {first} , {second} "}).secrets_keys == (first, second)
    assert load_settings({}).secrets_keys == ()


def test_secrets_stay_out_of_the_settings_repr() -> None:
    sealing = Fernet.generate_key().decode()
    settings = load_settings({"SECRET_KEY": "s3cret-signing-key-0123456789", "ESEQ_ADMIN_TOKEN": "admin-tok-123-0123456789abcdef0123",
                              "SMTP_PASSWORD": "smtp-pw-123", "OPENAI_API_KEY": "sk-123456",
                              "SENTRY_DSN": "https://dsnkey@sentry.example/1", "ESEQ_SECRETS_KEYS": sealing,
                              "ESEQ_METRICS_TOKEN": "metrics-tok-123-0123456789abcdef01"})
    shown = repr(settings)
    for secret in ("s3cret-signing-key", "admin-tok-123", "metrics-tok-123", "smtp-pw-123", "sk-123456", "dsnkey", sealing):
        assert secret not in shown


def test_the_web_process_refuses_to_start_on_a_bad_value_and_names_it() -> None:
    env = {**os.environ, "ESEQ_TICK_SECONDS": "soon"}
    done = subprocess.run([sys.executable, "-c", "import web.wsgi"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert "ESEQ_TICK_SECONDS must be a number" in done.stderr


@pytest.mark.parametrize("url, problem", [
    ("https://mail.example.com", False), ("http://localhost:8000", False), ("http://127.0.0.1:8000", False),
    ("http://mail.example.com", True), ("http://10.0.0.5", True),
])
def test_a_plain_http_public_url_is_named_at_start_unless_it_is_this_machine(url, problem, monkeypatch, caplog):
    assert bool(public_url_problem(url)) is problem
    monkeypatch.setenv("PUBLIC_BASE_URL", url)
    get_settings.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="settings"):
            assert get_settings().public_base_url == url  # a warning, not a refusal: the platform still runs
    finally:
        get_settings.cache_clear()
    assert any("PUBLIC_BASE_URL is plain http" in r.getMessage() for r in caplog.records) is problem


@pytest.mark.parametrize("per_minute, annotations", [("30", "{'ai.draft': {'rate_limit': '30/m'}}"), ("0", "None")])
def test_the_ai_workers_draft_rate_comes_from_the_settings(per_minute, annotations):
    env = {**os.environ, "ESEQ_AI_DRAFTS_PER_MINUTE": per_minute}
    done = subprocess.run([sys.executable, "-c", "import celeryconfig; print(getattr(celeryconfig, 'task_annotations',"
                           " None))"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == annotations
