"""Saved segments: create, read, change, delete, count and list members.

Every function takes the caller's ``account_id`` and filters on it, so another
account's segment is indistinguishable from one that does not exist. Counts and
members are asked of the database each time (audience.segment_filter); nothing
about who is in a segment is stored with it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from audience.errors import InvalidFilterError, SegmentNotFoundError
from audience.segment_filter import count_query, member_ids, validate_filter
from models import Segment, Subscriber
from models.segment import SegmentMember

MAX_INT = 2**31 - 1
NAME_MAX = 200


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX or "\x00" in value:
        raise InvalidFilterError({"name": [f"Must be a string of 1 to {NAME_MAX} characters."]})
    return value.strip()


def create_segment(session: Session, account_id: int, name: Any, filter: Any, now: datetime) -> Segment:
    """A new segment; InvalidFilterError names every bad part of ``filter``."""
    segment = Segment(account_id=account_id, name=_name(name), filter=validate_filter(filter),
                      created_at=now, updated_at=now)
    session.add(segment)
    session.flush()
    return segment


def get_segment(session: Session, account_id: int, segment_id: int) -> Segment:
    segment = None
    if 0 < segment_id <= MAX_INT:
        segment = session.scalar(select(Segment).where(Segment.id == segment_id, Segment.account_id == account_id))
    if segment is None:
        raise SegmentNotFoundError(f"Segment {segment_id} not found.")
    return segment


def update_segment(session: Session, account_id: int, segment_id: int, data: dict[str, Any],
                   now: datetime) -> Segment:
    """Change the name and/or filter. A new filter forgets who was in at the last
    check, so the "entered segment" trigger starts again from the new members
    without enrolling them (they did not enter; the definition moved)."""
    segment = get_segment(session, account_id, segment_id)
    if "name" in data:
        segment.name = _name(data["name"])
    if "filter" in data:
        new_filter = validate_filter(data["filter"])
        if new_filter != segment.filter:
            segment.filter = new_filter
            segment.members_at = None
            session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
    segment.updated_at = now
    session.flush()
    return segment


def delete_segment(session: Session, account_id: int, segment_id: int) -> None:
    """Delete it (its membership snapshot goes by the database cascade). Sequences it
    triggers stop being fed by it: their trigger names a segment that is gone."""
    session.delete(get_segment(session, account_id, segment_id))
    session.flush()


def list_segments(account_id: int) -> Select[Any]:
    """The account's segments, newest first; a query for the paginator."""
    return select(Segment).where(Segment.account_id == account_id).order_by(Segment.id.desc())


def count_members(session: Session, account_id: int, filter: dict[str, Any], now: datetime) -> int:
    """How many of the account's subscribers match ``filter`` now (one COUNT query)."""
    return int(session.scalar(count_query(account_id, filter, now)) or 0)


def members(account_id: int, filter: dict[str, Any], now: datetime) -> Select[Any]:
    """The matching subscribers themselves, newest first, for pages and CSV."""
    return member_ids(account_id, filter, now).with_only_columns(Subscriber).order_by(Subscriber.id.desc())
