"""How long the model client waits between tries (the server's Retry-After in its
three spellings, and the backoff when it names none), and how it is configured."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

from ai.client import backoff_seconds, default_token_field, retry_after_seconds

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)


def test_it_reads_retry_after_in_seconds():
    assert retry_after_seconds({"Retry-After": "12"}) == 12.0
    assert retry_after_seconds({"retry-after": " 0.5 "}) == 0.5


def test_it_reads_retry_after_as_an_http_date():
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds({"Retry-After": later}, now=NOW) == 90.0


def test_a_date_in_the_past_means_now():
    earlier = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert retry_after_seconds({"Retry-After": earlier}, now=NOW) == 0.0


def test_retry_after_ms_wins_over_retry_after():
    assert retry_after_seconds({"Retry-After": "2", "retry-after-ms": "1500"}) == 1.5


def test_an_unreadable_or_absent_header_names_no_wait():
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({"retry-after-ms": "x"}) is None
    assert retry_after_seconds({"Retry-After": "-3"}) == 0.0
    assert retry_after_seconds({"Retry-After": "inf"}) is None
    assert retry_after_seconds({"Retry-After": "nan"}) is None
    assert retry_after_seconds({"retry-after-ms": "-5"}) == 0.0


def test_a_wait_longer_than_a_day_is_read_as_a_day():
    assert retry_after_seconds({"Retry-After": "1e12"}) == 86400.0


def test_backoff_doubles_with_jitter_below_each_step_and_is_capped():
    rng = random.Random(1)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 30.0)]:
        waits = [backoff_seconds(attempt, rng) for _ in range(50)]
        assert all(base / 2 <= w <= base for w in waits), (attempt, min(waits), max(waits))
        assert len(set(waits)) > 1  # jittered: threads that failed together spread out


def test_openai_itself_gets_max_completion_tokens_and_other_servers_max_tokens():
    assert default_token_field("https://api.openai.com/v1") == "max_completion_tokens"
    assert default_token_field("http://localhost:11434/v1") == "max_tokens"
    assert default_token_field("http://vllm.internal:8000/v1") == "max_tokens"


def test_a_process_builds_one_client_per_configuration():
    from ai.client import shared_client

    first = shared_client("http://model.internal/v1", "sk-a", "m")
    assert shared_client("http://model.internal/v1", "sk-a", "m") is first
    assert shared_client("http://model.internal/v1", "sk-b", "m") is not first
    assert first.circuit is shared_client("http://model.internal/v1", "sk-b", "m").circuit  # one breaker per endpoint
