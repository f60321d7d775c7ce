"""Segments on the embedded SQLite database: the same compiled query
(audience.segment_filter.member_ids, spelled with json_each / json_extract there)
finds exactly the members PostgreSQL finds (tests/api/test_segments.py), and the
"entered segment" snapshot's INSERT ... SELECT ... ON CONFLICT works there too."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from audience.segment_filter import member_ids
from models import Enrollment, Segment, Sequence, Subscriber
from sequencing.segment_enroll import enroll_segment
from sequencing.segment_entries import check_segment
from tests.support import audience_rows
from tests.support.database import sqlite_engine


def _account(s: Session, name: str, now: datetime) -> int:
    return int(s.execute(text("INSERT INTO accounts (name, from_email, from_name, created_at) "
                              "VALUES (:n, :n || '@x.test', :n, :t) RETURNING id"), {"n": name, "t": now}).scalar_one())


def test_every_leaf_matches_the_same_subscribers_on_sqlite(tmp_path: Path):
    now = datetime.now(timezone.utc)
    with sqlite_engine(tmp_path) as engine, Session(engine) as s:
        alice, bob = _account(s, "alice", now), _account(s, "bob", now)
        rows = audience_rows.build(s, alice, bob, now)
        email_of = {v: k for k, v in rows["ids"].items()}
        failures = []
        for filter_, expected in audience_rows.cases(rows, now):
            found = {email_of.get(i, f"other:{i}") for i in s.scalars(member_ids(alice, filter_, now))}
            if found != expected:
                failures.append((filter_, sorted(found), sorted(expected)))
        assert not failures, failures


def test_the_entry_snapshot_works_on_sqlite(tmp_path: Path):
    now = datetime.now(timezone.utc)
    with sqlite_engine(tmp_path) as engine, Session(engine) as s:
        alice = _account(s, "alice", now)
        ann = Subscriber(account_id=alice, email="ann@example.com", tags=["vip"], attributes={})
        bob = Subscriber(account_id=alice, email="bob@example.com", tags=[], attributes={})
        segment = Segment(account_id=alice, name="VIPs", filter={"tag": "vip"}, created_at=now, updated_at=now)
        sequence = Sequence(account_id=alice, name="Welcome", status="active",
                            settings={"trigger": {"type": "segment_entered", "segment_id": 0}})
        s.add_all([ann, bob, segment, sequence])
        s.flush()
        sequence.settings = {"trigger": {"type": "segment_entered", "segment_id": segment.id}}
        s.flush()
        check_segment(s, segment.id, now)
        bob.tags = ["vip"]
        ann.tags = []
        s.flush()
        check_segment(s, segment.id, now + timedelta(minutes=1))
        members = s.execute(text("SELECT subscriber_id FROM segment_members WHERE segment_id = :s"),
                            {"s": segment.id}).scalars().all()
        assert members == [bob.id]
        assert s.scalars(select(Enrollment.subscriber_id)).all() == [bob.id]  # the entrant, enrolled
        outcome = enroll_segment(s, alice, sequence.id, segment.id, now)
        assert (outcome.enrolled, outcome.skipped, outcome.job_id) == (0, 1, None)  # already in
        assert s.scalar(select(Segment.members_at).where(Segment.id == segment.id)) == now + timedelta(minutes=1)
