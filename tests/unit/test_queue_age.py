"""The age of a kombu Redis message, from the header every publisher stamps."""
from __future__ import annotations

import json

from observability.queues import PUBLISHED_AT, age_of, stamp_published_at


def test_age_is_counted_from_the_published_at_header():
    raw = json.dumps({"headers": {PUBLISHED_AT: 1000.0}, "body": ""}).encode()
    assert age_of(raw, now=1012.5) == 12.5


def test_an_empty_queue_has_age_zero_and_an_unstamped_message_an_unknown_age():
    assert age_of(None, now=5.0) == 0.0
    assert age_of(json.dumps({"headers": {"task": "x"}}).encode(), now=5.0) is None
    assert age_of(b"not json", now=5.0) is None


def test_a_publisher_clock_ahead_of_the_scraper_gives_zero_not_a_negative_age():
    assert age_of(json.dumps({"headers": {PUBLISHED_AT: 20.0}}).encode(), now=5.0) == 0.0


def test_the_stamp_keeps_a_time_already_there():
    headers = {PUBLISHED_AT: 1.0}
    stamp_published_at(headers=headers)
    assert headers[PUBLISHED_AT] == 1.0
    fresh: dict[str, float] = {}
    stamp_published_at(headers=fresh)
    assert fresh[PUBLISHED_AT] > 1.0
