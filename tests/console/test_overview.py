"""The overview: the account's outcomes today and over 30 days from the rollups,
each pool's queue from the broker, workers alive from their heartbeats, Flower."""
from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from celeryconfig import QUEUES
from core.liveness import beat
from models import SequenceRollup, db, utcnow
from tests.conftest import TEST_ENV
from tests.console.test_sequences import api_sequence
from tests.support.console import sign_in
from tests.support.db_fixtures import Tenant


def card(html: str, key: str) -> str:
    found = re.search(rf'id="{key}">\s*<div class="value"[^>]*>([^<]+)<', html)
    assert found, key
    return found.group(1)


def rollups(account_id: int, sequence_id: int, step_id: int, days_ago: int, **uniques: int) -> None:
    with db.session_scope() as s:
        for metric, count in uniques.items():
            s.add(SequenceRollup(account_id=account_id, sequence_id=sequence_id, step_id=step_id, variant="",
                                 day=utcnow().date() - timedelta(days=days_ago), metric=metric, uniques=count,
                                 total=count))


def test_counts_today_and_over_30_days_are_the_accounts_own(client: Any, alice: Tenant, bob: Tenant) -> None:
    mine, theirs = api_sequence(client, alice), api_sequence(client, bob)
    step = mine["steps"][0]["id"]
    rollups(alice.account_id, mine["id"], step, 0, sent=1200, delivered=1100, opened=600, clicked=80, bounced=7,
            complained=1)
    rollups(alice.account_id, mine["id"], step, 10, sent=3000, opened=900)
    rollups(alice.account_id, mine["id"], step, 31, sent=50_000)  # outside the 30 days
    rollups(bob.account_id, theirs["id"], theirs["steps"][0]["id"], 0, sent=777_777)
    sign_in(client, alice.api_key)
    html = client.get("/console/").get_data(as_text=True)
    assert card(html, "today-sent") == "1,200" and card(html, "today-opened") == "600"
    assert card(html, "today-complained") == "1" and card(html, "today-bounced") == "7"
    assert card(html, "month-sent") == "4,200" and card(html, "month-opened") == "1,500"
    assert card(html, "month-clicked") == "80"
    assert "777,777" not in html and "50,000" not in html and "54,200" not in html


def test_a_new_account_sees_zeros_and_what_to_do(client: Any, alice: Tenant) -> None:
    sign_in(client, alice.api_key)
    html = client.get("/console/").get_data(as_text=True)
    assert card(html, "today-sent") == "0" and card(html, "month-delivered") == "0"
    assert "Build and activate a sequence" in html and 'href="/console/sequences"' in html


@pytest.fixture
def waiting_task() -> Iterator[float]:
    """One task waiting in this run's ``analytics`` queue on the real Redis broker,
    published 30 s ago (its ``published_at`` header, as every process stamps it),
    and nothing else: tasks earlier tests enqueued with no worker to take them go."""
    client = redis.Redis.from_url(TEST_ENV["CELERY_BROKER_URL"])
    key = TEST_ENV["ESEQ_BROKER_PREFIX"] + "analytics"
    published = time.time() - 30
    for queue in QUEUES:
        client.delete(TEST_ENV["ESEQ_BROKER_PREFIX"] + queue)
    client.lpush(key, json.dumps({"headers": {"published_at": published}, "body": ""}))
    try:
        yield published
    finally:
        client.delete(key)


def test_queue_depths_are_read_from_the_broker(client: Any, alice: Tenant, waiting_task: float) -> None:
    sign_in(client, alice.api_key)
    html = client.get("/console/").get_data(as_text=True)
    rows = dict(re.findall(r"<tr><td>(\w+)</td><td class=\"num\">([\d,]+)</td>", html))
    assert set(rows) == set(QUEUES)
    assert rows["analytics"] == "1" and rows["send"] == "0"
    age = re.search(r"<tr><td>analytics</td>.*?<td class=\"num\">([\d,]+) s</td>", html, re.S)
    assert age and 30 <= int(age.group(1)) < 30 + 60


def test_an_unreachable_broker_leaves_the_page_up(client: Any, alice: Tenant, app: Any) -> None:
    from observability.queues import QueueCollector, RedisQueues

    collector = next(c for c in app.extensions["eseq_metrics_collectors"] if isinstance(c, QueueCollector))
    kept = collector.reader
    collector.reader = RedisQueues("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        sign_in(client, alice.api_key)
        response = client.get("/console/")
    finally:
        collector.reader = kept
    assert response.status_code == 200
    assert "could not be read just now" in response.get_data(as_text=True)


def test_workers_alive_are_those_with_a_recent_heartbeat(client: Any, alice: Tenant, settings: Any) -> None:
    now = utcnow()
    stale = now - timedelta(seconds=settings.worker_dead_after_seconds + 5)
    with db.session_scope() as s:
        for worker_id, at in (("host:1:a", now), ("host:2:b", now), ("host:3:c", stale)):
            beat(s.connection(), worker_id, at)
    sign_in(client, alice.api_key)
    html = client.get("/console/").get_data(as_text=True)
    assert re.search(r'id="workers-alive">2<', html)


def test_flower_is_linked_only_when_configured(client: Any, alice: Tenant, app: Any) -> None:
    sign_in(client, alice.api_key)
    assert "Flower" not in client.get("/console/").get_data(as_text=True)
    kept = app.config["ESEQ_SETTINGS"]
    app.config["ESEQ_SETTINGS"] = dataclasses.replace(kept, flower_url="https://flower.example.test/")
    try:
        html = client.get("/console/").get_data(as_text=True)
    finally:
        app.config["ESEQ_SETTINGS"] = kept
    assert 'href="https://flower.example.test/"' in html


def test_flower_url_must_be_a_web_address() -> None:
    from settings import ConfigError, load_settings

    assert load_settings({"FLOWER_URL": "http://127.0.0.1:5555"}).flower_url == "http://127.0.0.1:5555"
    assert load_settings({}).flower_url is None
    with pytest.raises(ConfigError, match="FLOWER_URL"):
        load_settings({"FLOWER_URL": "javascript:alert(1)"})


def test_the_workers_answering_a_ping_are_listed_by_pool(client: Any, alice: Tenant, celery_app: Any) -> None:
    from celery.contrib.testing.worker import start_worker

    import tasks.workers

    sign_in(client, alice.api_key)
    html = client.get("/console/").get_data(as_text=True)
    assert 'data-url="/console/workers.json"' in html  # the page asks after rendering, not before
    tasks.workers._last = None
    with start_worker(celery_app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                      queues=["send"], hostname="send@console-test", shutdown_timeout=10):
        answer = client.get("/console/workers.json")
    assert answer.status_code == 200
    assert answer.get_json()["pools"]["send"] == ["send@console-test"]
    client.post("/console/sign-out", data={"csrf_token": sign_in(client, alice.api_key)})
    assert client.get("/console/workers.json").status_code == 302  # signed out: nothing


def test_an_unreachable_broker_answers_the_ping_list_with_a_503(client: Any, alice: Tenant,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.workers

    sign_in(client, alice.api_key)
    tasks.workers._last = None
    from celery import Celery

    # The same ping through a broker where nothing listens (port 1); Celery would take
    # this run's CELERY_BROKER_URL over the argument.
    monkeypatch.delenv("CELERY_BROKER_URL")
    monkeypatch.setattr(tasks.workers, "app", Celery(broker="redis://127.0.0.1:1/0", set_as_current=False))
    answer = client.get("/console/workers.json")
    assert answer.status_code == 503 and "broker" in answer.get_json()["error"], answer.get_json()
