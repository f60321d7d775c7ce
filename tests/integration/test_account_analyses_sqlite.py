"""The account analyses on the embedded SQLite database: the week numbers, epochs
and groupings of analytics.account_data give the same answers as on PostgreSQL
(tests/api/test_account_analyses.py works the same kind of history out by hand)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from analytics import account_data
from analytics.cohorts import compute_cohorts
from analytics.ltv import compute_ltv
from analytics.rfm import compute_rfm
from models import Event, Subscriber
from tests.support.database import sqlite_engine


def test_cohorts_rfm_and_ltv_on_sqlite_match_the_history_worked_out_by_hand(tmp_path: Path):
    now = datetime.now(timezone.utc)
    start = account_data.monday(account_data.week_of(now) - 2)
    a_start = datetime(start.year, start.month, start.day, 1, tzinfo=timezone.utc)
    with sqlite_engine(tmp_path) as engine, Session(engine) as s:
        ids = []
        for name in ("alice", "bob"):
            ids.append(s.execute(text("INSERT INTO accounts (name, from_email, from_name, created_at) "
                                      "VALUES (:n, :n || '@x.test', :n, :t) RETURNING id"),
                                 {"n": name, "t": now}).scalar_one())
        alice, bob = ids
        people = [Subscriber(account_id=alice, email=f"p{i}@example.test", created_at=a_start) for i in range(4)]
        stranger = Subscriber(account_id=bob, email="p0@example.test", created_at=a_start)
        s.add_all([*people, stranger])
        s.flush()
        p0, p1, p2, _p3 = (p.id for p in people)
        week = timedelta(days=7)
        s.add_all([
            Event(account_id=alice, subscriber_id=p0, name="opened", occurred_at=a_start + timedelta(hours=1)),
            Event(account_id=alice, subscriber_id=p0, name="clicked", occurred_at=a_start + week),
            Event(account_id=alice, subscriber_id=p1, name="opened", occurred_at=a_start + week + timedelta(days=6)),
            Event(account_id=alice, subscriber_id=p2, name="purchase", value=30.0, occurred_at=a_start + week),
            Event(account_id=alice, subscriber_id=p2, name="purchase", value=12.5, occurred_at=a_start + week * 1.5),
            Event(account_id=bob, subscriber_id=stranger.id, name="opened", occurred_at=a_start + timedelta(hours=2)),
            Event(account_id=bob, subscriber_id=stranger.id, name="purchase", value=999.0, occurred_at=a_start),
        ])
        s.flush()
        cohorts = compute_cohorts(s, alice, now)
        assert cohorts["cohorts"] == [{"cohort": start.isoformat(), "subscribers": 4, "engaged": [1, 2, 0],
                                       "shares": [0.25, 0.5, 0.0]}]
        rfm = compute_rfm(s, alice, now)
        assert (rfm["customers"], rfm["subscribers_without_value"]) == (1, 3)
        # a lone customer has no one scoring worse: 1 on every measure
        assert [(g["segment"], g["revenue"]) for g in rfm["segments"] if g["customers"]] == [("hibernating", 42.5)]
        assert rfm["scores"] == [{"r": 1, "f": 1, "m": 1, "customers": 1}]
        ltv = compute_ltv(s, alice, now)
        assert (ltv["revenue"], ltv["customers"], ltv["subscribers"], ltv["model"]) == (42.5, 1, 4, None)
        assert ltv["top_subscribers"] == [{"subscriber_id": p2, "transactions": 2, "revenue": 42.5,
                                           "predicted_revenue": None, "email": "p2@example.test"}]
