"""The "entered segment" trigger: ``settings.trigger = {"type": "segment_entered",
"segment_id": N}``.

A segment's members are a query, not rows, so entering is found by comparison:
``segment_members`` keeps who was in at the last check; each check (beat, every
minute) deletes those no longer members, inserts the members not yet there
(``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING``: the entrants), and enrolls
the entrants into the segment's active triggered sequences, all in one
transaction per segment. Set-wise: three statements and one enrollment insert per
sequence, however many members there are.

Who counts as entering (docs/segments.md): only those who become members after
the segment's first check. The first check (``segments.members_at`` null) records
the members without enrolling anyone, so activating a sequence on an existing
segment does not enroll everyone already in it (Customer.io's default). A member
who leaves and comes back enters again; the sequence's re-entry rule decides
whether that starts a new run. Two checks racing insert each entrant once (the
primary key), so no one is enrolled twice.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, exists, literal, select
from sqlalchemy.orm import Session

from audience.segment_filter import member_ids
from models import Segment, Sequence, Subscriber
from models.bulk import dialect_insert
from models.segment import SegmentMember
from sequencing.enroll import enroll_ids

TRIGGER = "segment_entered"


def _triggered(session: Session, account_id: int | None = None) -> list[Sequence]:
    """Active sequences triggered by entering a segment (of one account, or all)."""
    query = select(Sequence).where(Sequence.status == "active")
    if account_id is not None:
        query = query.where(Sequence.account_id == account_id)
    return [s for s in session.scalars(query) if ((s.settings or {}).get("trigger") or {}).get("type") == TRIGGER]


def segments_to_check(session: Session) -> list[int]:
    """Ids of the segments some active sequence is triggered by, in id order."""
    return sorted({int(s.settings["trigger"]["segment_id"]) for s in _triggered(session)})


def _entrants(session: Session, segment: Segment, now: datetime) -> list[int]:
    """Bring the snapshot up to date; return who entered since the last check.

    Both statements are correlated (NOT) EXISTS, which PostgreSQL runs as a hash
    anti-/semi-join: ``NOT IN (subquery)`` degrades to a rescan of the members per
    row once they outgrow ``work_mem`` (a million members never finished)."""
    members = member_ids(segment.account_id, segment.filter, now)
    session.execute(delete(SegmentMember).where(
        SegmentMember.segment_id == segment.id,
        ~exists(members.where(Subscriber.id == SegmentMember.subscriber_id))))
    table = SegmentMember.__table__
    known = select(SegmentMember.id).where(SegmentMember.segment_id == segment.id,
                                           SegmentMember.subscriber_id == Subscriber.id)
    new = members.with_only_columns(literal(segment.id), Subscriber.id,
                                    literal(now, type_=table.c.entered_at.type)).where(~exists(known))
    statement = (dialect_insert(session, table)
                 .from_select(["segment_id", "subscriber_id", "entered_at"], new)
                 .on_conflict_do_nothing(index_elements=["segment_id", "subscriber_id"])
                 .returning(table.c.subscriber_id))
    return sorted(session.scalars(statement))


def check_segment(session: Session, segment_id: int, now: datetime) -> int:
    """One segment's check (see the module's docstring); returns the enrollments made."""
    segment = session.scalar(select(Segment).where(Segment.id == segment_id).with_for_update())
    if segment is None:
        return 0
    first = segment.members_at is None
    entered = _entrants(session, segment, now)
    segment.members_at = now
    enrolled = 0
    if entered and not first:
        active = _active(session, entered)
        for sequence in _triggered(session, segment.account_id):
            if sequence.settings["trigger"].get("segment_id") == segment.id:
                enrolled += enroll_ids(session, segment.account_id, sequence, active, now)
    session.flush()
    return enrolled


def _active(session: Session, subscriber_ids: Iterable[int]) -> list[int]:
    """The active ones (a filter naming ``status`` may let others in)."""
    ids = list(subscriber_ids)
    found: set[int] = set()
    for start in range(0, len(ids), 1000):
        found.update(session.scalars(select(Subscriber.id).where(
            Subscriber.id.in_(ids[start:start + 1000]), Subscriber.status == "active")))
    return sorted(found)
