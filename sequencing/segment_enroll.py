"""Enrolling a saved segment's members into a sequence (``{"segment_id"}`` on
``POST /email-sequences/{id}/subscribers``).

The members are one query (audience.segment_filter); the enrollments go in as the
other enroll paths write them (sequencing.enroll.enroll_ids: one executemany with
``ON CONFLICT DO NOTHING``, the same re-entry rule and holdout draw), all in the
request's transaction, so a retry enrolls nobody twice and a failure enrolls no one.

Only active members are enrolled, whatever statuses the segment's filter names.
A request takes at most ``MAX_SEGMENT_ENROLL`` members (docs/segments.md has the
measured time); a larger segment is refused whole with a 422 naming
``segment_id``, rather than half-enrolled or held in a request for minutes.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from audience.errors import SegmentNotFoundError
from audience.segment_filter import member_ids
from audience.segments import get_segment
from models import Subscriber
from sequencing.enroll import enroll_ids
from sequencing.errors import InvalidInputError, StateConflictError
from sequencing.lifecycle import get_sequence

MAX_SEGMENT_ENROLL = 100_000


def enroll_segment(session: Session, account_id: int, sequence_id: int, segment_id: int,
                   now: datetime) -> tuple[int, int]:
    """Enroll the segment's active members now; return (enrolled, skipped)."""
    sequence = get_sequence(session, account_id, sequence_id, lock=False)
    if sequence.status != "active":
        raise StateConflictError(f"Cannot enroll into a sequence that is {sequence.status}; activate it first.")
    try:
        segment = get_segment(session, account_id, segment_id)
    except SegmentNotFoundError:
        raise InvalidInputError({"segment_id": ["No such segment in this account."]}) from None
    query = (member_ids(account_id, segment.filter, now).where(Subscriber.status == "active")
             .order_by(Subscriber.id).limit(MAX_SEGMENT_ENROLL + 1))
    ids = list(session.scalars(query))
    if len(ids) > MAX_SEGMENT_ENROLL:
        raise InvalidInputError({"segment_id": [
            f"The segment has more than {MAX_SEGMENT_ENROLL} active members; narrow it (split it by an "
            "attribute or by created_at) and enroll the parts, or send it a broadcast."]})
    enrolled = enroll_ids(session, account_id, sequence, ids, now)
    return enrolled, len(ids) - enrolled
