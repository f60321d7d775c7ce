"""Enrolling a saved segment's members into a sequence (``{"segment_id"}`` on
``POST /email-sequences/{id}/subscribers``).

The members are one query (audience.segment_filter); the enrollments go in as the
other enroll paths write them (sequencing.enroll.enroll_ids: one executemany with
``ON CONFLICT DO NOTHING``, the same re-entry rule and holdout draw).

Up to ``MAX_SEGMENT_ENROLL`` members are enrolled in the request's transaction, so a
retry enrolls nobody twice and a failure enrolls no one. A larger segment becomes a
job (``segment_enroll``, polled at ``GET /jobs/{id}``) that the default pool works
through in chunks by subscriber id: each chunk's enrollments and the job's cursor
commit together, so a worker killed mid-job is resumed (audience.imports' lease)
from the last committed chunk and enrolls nobody twice, whatever the sequence's
re-entry rule. The filter is evaluated as of the request's time in every chunk.

Only active members are enrolled, whatever statuses the segment's filter names.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from audience.errors import SegmentNotFoundError
from audience.imports import LEASE
from audience.segment_filter import member_ids
from audience.segments import get_segment
from models import Job, Segment, Sequence, Subscriber
from sequencing.enroll import enroll_ids
from sequencing.errors import InvalidInputError, StateConflictError
from sequencing.lifecycle import get_sequence

MAX_SEGMENT_ENROLL = 100_000
JOB_KIND = "segment_enroll"
CHUNK = 10_000


@dataclass(frozen=True)
class SegmentEnrollment:
    enrolled: int
    skipped: int
    job_id: int | None = None  # set when the segment was too large for one request: a job enrolls it


def _active_members(account_id: int, segment: Segment, as_of: datetime, after: int, limit: int) -> Select[Any]:
    """The next ``limit`` active members after subscriber id ``after``, in id order."""
    return (member_ids(account_id, segment.filter, as_of)
            .where(Subscriber.status == "active", Subscriber.id > after).order_by(Subscriber.id).limit(limit))


def _checked(session: Session, account_id: int, sequence_id: int, segment_id: int) -> tuple[Sequence, Segment]:
    sequence = get_sequence(session, account_id, sequence_id, lock=False)
    if sequence.status != "active":
        raise StateConflictError(f"Cannot enroll into a sequence that is {sequence.status}; activate it first.")
    try:
        return sequence, get_segment(session, account_id, segment_id)
    except SegmentNotFoundError:
        raise InvalidInputError({"segment_id": ["No such segment in this account."]}) from None


def enroll_segment(session: Session, account_id: int, sequence_id: int, segment_id: int,
                   now: datetime) -> SegmentEnrollment:
    """Enroll the segment's active members now, or, past ``MAX_SEGMENT_ENROLL``,
    create the job that will (its task is the caller's to enqueue after commit)."""
    sequence, segment = _checked(session, account_id, sequence_id, segment_id)
    ids = list(session.scalars(_active_members(account_id, segment, now, 0, MAX_SEGMENT_ENROLL + 1)))
    if len(ids) <= MAX_SEGMENT_ENROLL:
        enrolled = enroll_ids(session, account_id, sequence, ids, now)
        return SegmentEnrollment(enrolled, len(ids) - enrolled)
    job = Job(account_id=account_id, kind=JOB_KIND, status="pending", created_at=now,
              result={"sequence_id": sequence.id, "segment_id": segment.id, "as_of": now.isoformat(), "after": 0,
                      "enrolled": 0, "skipped": 0})
    session.add(job)
    session.flush()
    return SegmentEnrollment(0, 0, job.id)


def run_segment_job(session: Session, job_id: int, clock: Callable[[], datetime],
                    lease: timedelta = LEASE) -> Iterator[Job]:
    """Work a claimed job from its cursor, yielding it after each chunk (the caller
    commits there, which is also when the lease is extended); the last yield has
    status ``completed`` or ``failed`` (the sequence stopped, or the segment went)."""
    job = session.get(Job, job_id)
    if job is None or job.status != "running" or job.kind != JOB_KIND:
        return
    state = dict(job.result)
    as_of = datetime.fromisoformat(state["as_of"])
    while True:
        try:
            sequence, segment = _checked(session, job.account_id, state["sequence_id"], state["segment_id"])
        except (StateConflictError, InvalidInputError) as exc:
            job.status, job.finished_at, job.claimed_until = "failed", clock(), None
            job.errors = [f"segment enroll stopped: {getattr(exc, 'errors', None) or exc}"[:500]]
            yield job
            return
        ids = list(session.scalars(_active_members(job.account_id, segment, as_of, state["after"], CHUNK)))
        if ids:
            enrolled = enroll_ids(session, job.account_id, sequence, ids, clock())
            state.update(after=ids[-1], enrolled=state["enrolled"] + enrolled,
                         skipped=state["skipped"] + len(ids) - enrolled)
            job.processed += len(ids)
            job.created_count = state["enrolled"]
        if len(ids) < CHUNK:
            job.status, job.finished_at, job.claimed_until = "completed", clock(), None
        else:
            job.claimed_until = clock() + lease
        job.total = job.processed
        job.result = dict(state)  # a new dict: JSON columns don't track mutation
        yield job
        if job.status == "completed":
            return

