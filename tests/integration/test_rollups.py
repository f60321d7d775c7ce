"""Rollups on real parts: emails sent through a real SMTP server, opens and clicks
through the real pixel and redirect, conversions through /api/v1/events, folds by
a real Celery worker (killed with kill -9 mid-fold) and by two folds at once; the
analytics endpoint's numbers checked exactly against what was sent and done."""
from __future__ import annotations

import re
import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, func, select, text

from analytics.rollups import fold_chunk
from models import Event, Message, RollupWatermark, SequenceRollup, Subscriber, db
from models.base import utcnow
from tests.conftest import TEST_ENV
from tests.support import factories
from tests.support.database import embedded_sqlite
from tests.support.engine import run_due
from tests.support.processes import Proc, beat_argv, platform_env, running, worker_argv
from tests.support.sending import STEP, send_in_process
from tests.support.waiting import at_once, wait_for

GOAL = {"event": "purchase", "within_days": 7}
SECOND = {"type": "email", "subject": "Still there?", "html": "<p>Second <a href=\"https://shop.example.test/b\">b</a></p>"}


def _fold_all(account_id: int, limit: int = 50_000) -> int:
    folded = 0
    while True:
        with db.session_scope() as s:
            fold = fold_chunk(s, account_id, utcnow(), limit=limit)
        folded += fold.events
        if fold.caught_up:
            return folded


def _rollup_totals(account_id: int) -> dict[str, tuple[int, int]]:
    with db.session_scope() as s:
        return {metric: (int(u), int(t)) for metric, u, t in s.execute(
            select(SequenceRollup.metric, func.sum(SequenceRollup.uniques), func.sum(SequenceRollup.total))
            .where(SequenceRollup.account_id == account_id).group_by(SequenceRollup.metric))}


def _raw_totals(account_id: int) -> dict[str, tuple[int, int]]:
    """What the rollups must say, counted from the events themselves."""
    with db.session_scope() as s:
        return {name: (int(u), int(t)) for name, u, t in s.execute(
            select(Event.name, func.count(func.distinct(Event.message_id)), func.count())
            .join(Message, Message.id == Event.message_id)
            .where(Event.account_id == account_id, Message.sequence_id.is_not(None)).group_by(Event.name))}


def _sequence_with_events(people: int, opens_per_person: int = 3) -> tuple[int, int]:
    """(account, sequence): ``people`` sent emails, each opened ``opens_per_person`` times."""
    account = factories.account()
    sequence = factories.sequence(account, [STEP])
    now = utcnow()
    factories.enroll(account, sequence, factories.subscribers(account, people), now)
    ids = run_due(now)
    with db.session_scope() as s:
        rows = s.execute(select(Message.id, Message.subscriber_id).where(Message.id.in_(ids))).all()
        s.add_all(Event(account_id=account, subscriber_id=sub, message_id=mid, name=name,
                        dedup_key=f"{name}:{mid}:{n}", occurred_at=now)
                  for mid, sub in rows for name, n in [("sent", 0)] + [("opened", i) for i in range(opens_per_person)])
    return account, sequence


def test_sends_opens_clicks_and_conversions_are_counted_exactly_per_step(smtp, client, alice):
    t0 = utcnow() - timedelta(days=10)
    account = alice.account_id
    sequence = factories.sequence(account, [STEP, {"type": "delay", "seconds": 60}, SECOND], settings={"goal": GOAL})
    people = factories.subscribers(account, 6)
    factories.enroll(account, sequence, people, t0)
    send_in_process(run_due(t0), at=t0)
    second = run_due(t0 + timedelta(seconds=61))
    send_in_process(second, at=t0 + timedelta(seconds=61))
    assert len(second) == 6
    with db.session_scope() as s:
        emails = dict(s.execute(select(Subscriber.id, Subscriber.email).where(Subscriber.id.in_(people))).all())

    def links(address: str) -> tuple[str, str]:
        first = smtp.handler.to(address)[0]
        html = next(p.get_payload(decode=True).decode() for p in first.walk() if p.get_content_type() == "text/html")
        return (urlsplit(re.search(r'<img src="([^"]+)"', html).group(1)).path,
                urlsplit(re.search(r'href="(http://localhost:8000/t/c/[^"]+)"', html).group(1)).path)

    for n in (0, 1, 2):  # three open the first email, the first twice
        pixel, click = links(emails[people[n]])
        assert client.get(pixel).status_code == 200
        if n == 0:
            assert client.get(pixel).status_code == 200
        if n in (0, 1):  # two click it
            assert client.get(click).status_code == 302

    headers = alice.headers
    for n, value, after in ((0, 20.0, 30), (1, 10.0, 40), (1, 5.0, 50), (3, 30.0, 90),
                            (4, 99.0, 61 + 8 * 86400), (5, 7.0, -5)):
        response = client.post("/api/v1/events", headers=headers, json={
            "email": emails[people[n]], "name": "purchase", "value": value,
            "occurred_at": (t0 + timedelta(seconds=after)).isoformat()})
        assert response.status_code == 202, response.get_json()
    client.post("/api/v1/events", headers=headers, json={"email": "nobody@example.test", "name": "purchase",
                                                         "value": 1.0})

    body = client.get(f"/api/v1/email-sequences/{sequence}/analytics", headers=headers).get_json()
    first_row, second_row = body["steps"]
    assert (first_row["step"], first_row["sent"], first_row["opened"], first_row["clicked"]) == (0, 6, 3, 2)
    assert (first_row["converted"], first_row["conversions"], first_row["revenue"]) == (2, 3, 35.0)
    assert (second_row["step"], second_row["sent"], second_row["opened"], second_row["clicked"]) == (2, 6, 0, 0)
    assert (second_row["converted"], second_row["conversions"], second_row["revenue"]) == (1, 1, 30.0)
    assert first_row["opened_total"] == _raw_totals(account)["opened"][1]
    assert body["as_of"] is not None

    series = client.get(f"/api/v1/email-sequences/{sequence}/analytics?interval=day&from={t0.date()}&to={t0.date()}",
                        headers=headers).get_json()
    assert [day["day"] for day in series["series"]] == [t0.date().isoformat()]
    assert series["steps"][0]["sent"] == 6 and series["steps"][0]["opened"] == 0, "opens came days later"
    assert series["steps"][0]["revenue"] == 35.0


def test_a_rerun_of_the_fold_counts_nothing_twice_and_later_events_are_added():
    account, _sequence = _sequence_with_events(20)
    assert _fold_all(account) == 20 * 4
    assert _fold_all(account) == 0
    assert _rollup_totals(account) == {"sent": (20, 20), "opened": (20, 60)} == _raw_totals(account)
    with db.session_scope() as s:
        message = s.scalar(select(Message).where(Message.account_id == account).limit(1))
        s.add(Event(account_id=account, subscriber_id=message.subscriber_id, message_id=message.id, name="clicked",
                    dedup_key=f"clicked:{message.id}"))
    assert _fold_all(account) == 1
    assert _rollup_totals(account) == {"sent": (20, 20), "opened": (20, 60), "clicked": (1, 1)} == _raw_totals(account)


def test_an_event_whose_transaction_commits_after_a_later_ones_fold_is_still_counted_once():
    account, _sequence = _sequence_with_events(2, opens_per_person=0)
    with db.session_scope() as s:
        first, second = s.execute(select(Message.id, Message.subscriber_id).where(Message.account_id == account)
                                  .order_by(Message.id)).all()
    engine = create_engine(db.get_engine().url)
    slow = engine.connect()
    try:
        slow_tx = slow.begin()
        # The slow transaction takes the lower id, then waits before committing.
        slow.execute(text("INSERT INTO events (account_id, subscriber_id, message_id, name, dedup_key, source,"
                          " properties, occurred_at, created_at) VALUES (:a, :s, :m, 'opened', 'slow', 'api', '{}',"
                          " now(), now())"), {"a": account, "s": first.subscriber_id, "m": first.id})
        with db.session_scope() as s:
            s.add(Event(account_id=account, subscriber_id=second.subscriber_id, message_id=second.id, name="opened",
                        dedup_key="fast"))
        _fold_all(account)
        assert _rollup_totals(account).get("opened", (0, 0)) == (0, 0), "held back behind the open transaction"
        slow_tx.commit()
    finally:
        slow.close()
        engine.dispose()
    _fold_all(account)
    assert _rollup_totals(account) == {"sent": (2, 2), "opened": (2, 2)} == _raw_totals(account)


def test_two_folds_at_once_count_every_event_exactly_once():
    account, _sequence = _sequence_with_events(300)
    at_once(lambda: _fold_all(account, limit=97))
    assert _rollup_totals(account) == {"sent": (300, 300), "opened": (300, 900)} == _raw_totals(account)
    with db.session_scope() as s:
        assert s.scalar(select(RollupWatermark.folded).where(RollupWatermark.account_id == account)) == 1200


@pytest.mark.e2e
def test_a_worker_killed_mid_fold_loses_and_doubles_nothing_and_the_next_fold_finishes_exactly(tmp_path: Path):
    account, _sequence = _sequence_with_events(2000)
    env = platform_env(**TEST_ENV)

    def folded() -> int:
        with db.session_scope() as s:
            return s.scalar(select(RollupWatermark.folded).where(RollupWatermark.account_id == account)) or 0

    with running([Proc("analytics", worker_argv("a", queues="analytics", concurrency=1, loglevel="INFO"),
                       env, tmp_path)]) as [worker]:
        worker.wait_ready()
        from tasks.analytics import fold_rollups  # noqa: PLC0415 - the app is configured for this run by now
        fold_rollups.delay(chunk=50)
        wait_for(lambda: folded() > 0, 60, "the worker to commit a first chunk", interval=0.01, detail=worker.tail)
        worker.kill(signal.SIGKILL)
        worker.popen.wait(10)
    at_kill = folded()
    assert 0 < at_kill < 8000, "killed mid-fold"
    assert _fold_all(account) == 8000 - at_kill
    assert _rollup_totals(account) == {"sent": (2000, 2000), "opened": (2000, 6000)} == _raw_totals(account)


def test_the_embedded_sqlite_default_folds_the_same_counts_and_conversions(tmp_path: Path, smtp):
    from analytics.sequence_stats import step_counts  # noqa: PLC0415
    from models import Sequence  # noqa: PLC0415

    with embedded_sqlite(tmp_path):
        t0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
        account = factories.account_row(t0)
        sequence = factories.sequence(account, [STEP], settings={"goal": GOAL})
        people = factories.subscribers(account, 4)
        factories.enroll(account, sequence, people, t0)
        assert send_in_process(run_due(t0), t0) == {"sent": 4}
        with db.session_scope() as s:
            messages = dict(s.execute(select(Message.subscriber_id, Message.id)).all())
            s.add_all([Event(account_id=account, subscriber_id=people[0], message_id=messages[people[0]], name=name,
                             dedup_key=key, occurred_at=t0 + timedelta(hours=1)) for name, key in
                       (("opened", "o1"), ("opened", "o2"), ("clicked", "c1"))]
                      + [Event(account_id=account, subscriber_id=people[1], name="purchase", value=12.5,
                               occurred_at=t0 + timedelta(days=2)),
                         Event(account_id=account, subscriber_id=people[2], name="purchase", value=99.0,
                               occurred_at=t0 + timedelta(days=8))])
        assert _fold_all(account, limit=3) == 4 + 3 + 2
        assert _fold_all(account) == 0
        with db.session_scope() as s:
            [row] = step_counts(s, s.get(Sequence, sequence))["steps"]
        assert (row["sent"], row["opened"], row["opened_total"], row["clicked"]) == (4, 1, 2, 1)
        assert (row["converted"], row["conversions"], row["revenue"]) == (1, 1, 12.5)


@pytest.mark.e2e
def test_beat_and_an_analytics_worker_fold_new_events_with_nobody_asking(tmp_path: Path):
    account, _sequence = _sequence_with_events(30)
    env = platform_env(**TEST_ENV)
    with running([Proc("beat", beat_argv(tmp_path / "schedule"), env, tmp_path),
                  Proc("analytics", worker_argv("a", queues="analytics", concurrency=2), env, tmp_path)]) as [_, worker]:
        wait_for(lambda: _rollup_totals(account) == {"sent": (30, 30), "opened": (30, 90)}, 90,
                 "beat's fold to count the events", interval=0.5, detail=worker.tail)
    assert _rollup_totals(account) == _raw_totals(account)


def test_while_a_worker_holds_the_account_the_endpoint_answers_at_once_from_the_rollups_with_their_age(client, alice):
    sequence = factories.sequence(alice.account_id, [STEP])
    now = utcnow()
    factories.enroll(alice.account_id, sequence, factories.subscribers(alice.account_id, 3), now)
    ids = run_due(now)

    def add_sent(message_ids: list[int]) -> None:
        with db.session_scope() as s:
            s.add_all(Event(account_id=alice.account_id, subscriber_id=sub, message_id=mid, name="sent",
                            dedup_key=f"sent:{mid}") for mid, sub in s.execute(
                select(Message.id, Message.subscriber_id).where(Message.id.in_(message_ids))).all())

    add_sent(ids[:1])
    url = f"/api/v1/email-sequences/{sequence}/analytics"
    first = client.get(url, headers=alice.headers).get_json()
    assert first["steps"][0]["sent"] == 1
    add_sent(ids[1:])
    holder = create_engine(db.get_engine().url).connect()
    try:
        with holder.begin():  # a worker's fold of the account, in progress
            holder.execute(text("SELECT 1 FROM rollup_watermarks WHERE account_id = :a FOR UPDATE"),
                           {"a": alice.account_id})
            held = client.get(url, headers=alice.headers).get_json()
            assert held["steps"][0]["sent"] == 1 and held["as_of"] == first["as_of"]
    finally:
        holder.close()
    after = client.get(url, headers=alice.headers).get_json()
    assert after["steps"][0]["sent"] == 3 and after["as_of"] > first["as_of"]


def test_beat_hands_on_only_the_accounts_with_events_past_their_watermark():
    from analytics.rollups import accounts_with_new_events  # noqa: PLC0415

    busy, _ = _sequence_with_events(3)
    idle, _ = _sequence_with_events(2)
    _fold_all(idle)
    with db.session_scope() as s:
        assert accounts_with_new_events(s) == [busy]
    _fold_all(busy)
    with db.session_scope() as s:
        assert accounts_with_new_events(s) == []


def test_an_event_naming_another_accounts_message_counts_for_neither():
    mine, _ = _sequence_with_events(1, opens_per_person=0)
    theirs, _ = _sequence_with_events(1, opens_per_person=0)
    with db.session_scope() as s:
        their_message = s.scalar(select(Message.id).where(Message.account_id == theirs))
        s.add(Event(account_id=mine, message_id=their_message, name="opened", dedup_key="cross"))
    _fold_all(mine)
    _fold_all(theirs)
    assert _rollup_totals(mine) == {"sent": (1, 1)}
    assert _rollup_totals(theirs) == {"sent": (1, 1)}, "the other account's open is not theirs to count"
