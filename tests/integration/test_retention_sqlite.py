"""Retention on the embedded SQLite database: one unpartitioned events table, the
dedup trigger of migration 0034 (a replayed key is skipped), and the same pruning
(analytics.retention) with SQLite's spelling of its statements."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from analytics.events import record_event
from analytics.retention import plan, run_step
from analytics.rollups import fold_chunk
from models import Event, EventKey, Message, Subscriber
from tests.support.database import sqlite_engine


def _prune(s: Session, now: datetime) -> dict[str, int]:
    pruned: dict[str, int] = {}
    for step in plan(s, now):
        while True:
            done = run_step(s, step, 2)
            s.commit()
            pruned[step.kind] = pruned.get(step.kind, 0) + done
            if done < 2:
                break
    return pruned


def test_dedup_and_pruning_work_on_sqlite(tmp_path: Path):
    now = datetime.now(timezone.utc)
    old = now - timedelta(days=45)
    with sqlite_engine(tmp_path) as engine, Session(engine) as s:
        alice, bob = (int(s.execute(text(
            "INSERT INTO accounts (name, from_email, created_at, retention_events_days) VALUES (:n, 'a@x.test', :t, :d)"
            " RETURNING id"), {"n": name, "t": now, "d": days}).scalar_one()) for name, days in (("a", 30), ("b", 400)))
        subscribers = {}
        for account in (alice, bob):
            person = Subscriber(account_id=account, email=f"p{account}@x.test", status="active", attributes={}, tags=[])
            s.add(person)
            s.flush()
            subscribers[account] = person.id
        for account in (alice, bob):
            for n, at in enumerate((old, old, old, now)):
                assert record_event(s, account_id=account, subscriber_id=subscribers[account], name="custom", now=now,
                                    dedup_key=f"{account}:{n}", occurred_at=at) is not None
        assert record_event(s, account_id=alice, subscriber_id=subscribers[alice], name="custom", now=now,
                            dedup_key=f"{alice}:0") is None, "a replayed key is skipped"
        s.add(Message(account_id=alice, subscriber_id=subscribers[alice], idempotency_key="m1", to_email="p@x.test",
                      subject="Hello", status="sent", meta={"position": 0, "html": "<p>x</p>"}, created_at=old))
        s.commit()
        for account in (alice, bob):
            assert fold_chunk(s, account, now).caught_up
            s.commit()
        pruned = _prune(s, now)
        assert (pruned["events"], pruned["event_keys"], pruned["bodies"]) == (3, 3, 1)
        assert s.scalar(select(func.count()).select_from(Event).where(Event.account_id == alice)) == 1
        assert s.scalar(select(func.count()).select_from(Event).where(Event.account_id == bob)) == 4
        assert s.scalar(select(func.count()).select_from(EventKey)) == 5
        message = s.scalars(select(Message)).one()
        assert (message.subject, message.meta) == (None, {"position": 0})
        assert _prune(s, now).get("events", 0) == 0
