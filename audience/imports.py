"""Bulk imports as jobs: accept an upload, then process it chunk by chunk.

The upload is checked as a whole when it arrives (format, header, size, row count)
and stored in ``Job.payload``, so any worker can take it. Processing is a generator
that yields after each chunk: the caller commits there, so a client polling the job
sees progress, and a crash loses at most one chunk. The worker holds a lease on
the job, extended after every chunk; when a worker dies the lease lapses, the tick
puts the job back to pending and a new task resumes it after the last committed
chunk (a re-upserted chunk would be harmless too, but the counts stay exact). Bad rows do not stop an import; they are counted and the first
``MAX_ERROR_MESSAGES`` are kept with their row numbers. That includes a row the
database refuses although it passed the checks: the chunk is then written again
row by row, each in a savepoint, so only that row is lost, and reported.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from audience.payloads import ImportRow, count_rows, read_rows
from audience.upsert import CHUNK, upsert_rows
from core.isolation import run_isolated
from models import Job, utcnow

KIND = "subscriber_import"
MAX_ERROR_MESSAGES = 100
LEASE = timedelta(minutes=5)


def create_import_job(session: Session, account_id: int, payload: bytes, fmt: str, now: datetime) -> Job:
    """A pending job holding the upload; raises ImportPayloadError / ImportTooLargeError
    when the upload cannot be accepted at all."""
    total = count_rows(payload, fmt)
    job = Job(account_id=account_id, kind=KIND, status="pending", payload=payload, payload_format=fmt,
              total=total, processed=0, created_count=0, updated_count=0, error_count=0,
              errors=[], result={}, created_at=now, claimed_until=now + LEASE)
    session.add(job)
    session.flush()
    return job


def claim_import(session: Session, job_id: int, now: datetime, lease: timedelta = LEASE, kind: str = KIND) -> bool:
    """pending -> running, with a lease. The conditional UPDATE is the claim: a task
    delivered twice finds the row already taken (rowcount 0) and does nothing."""
    result = session.execute(update(Job).where(Job.id == job_id, Job.kind == kind, Job.status == "pending")
                             .values(status="running", claimed_until=now + lease))
    return result.rowcount == 1  # type: ignore[attr-defined]


def imports_to_resume(session: Session, now: datetime, lease: timedelta = LEASE, kind: str = KIND) -> list[int]:
    """Jobs that need a task: running ones whose worker's lease lapsed (back to
    pending) and pending ones whose task was lost. Each is given ``lease`` before
    it can be picked again."""
    stale = or_(and_(Job.status == "running", Job.claimed_until < now),
                and_(Job.status == "pending", or_(Job.claimed_until.is_(None), Job.claimed_until < now)))
    ids = list(session.scalars(select(Job.id).where(Job.kind == kind, stale).with_for_update(skip_locked=True)))
    if ids:
        session.execute(update(Job).where(Job.id.in_(ids)).values(status="pending", claimed_until=now + lease),
                        execution_options={"synchronize_session": False})
    return ids


def _record(job: Job, created: int, updated: int, processed: int, errors: list[str], error_count: int) -> None:
    job.created_count += created
    job.updated_count += updated
    job.processed += processed
    job.error_count += error_count
    room = MAX_ERROR_MESSAGES - len(job.errors or [])
    if errors and room > 0:
        job.errors = [*(job.errors or []), *errors[:room]]  # a new list: JSON columns don't track mutation


def row_faults(session: Session) -> tuple[type[Exception], ...]:
    """Errors that mean "the database refused this data", as opposed to "the database
    is unavailable" (which must fail the chunk and be retried): SQLAlchemy's wrapped
    ones, the driver's raw ones (the PostgreSQL path COPYs through the driver's own
    cursor), and values the driver cannot encode."""
    dbapi = session.get_bind().dialect.dbapi
    return (DataError, IntegrityError, dbapi.DataError, dbapi.IntegrityError, ValueError, OverflowError)


def _write(session: Session, account_id: int, batch: list[tuple[int, ImportRow]],
           now: datetime) -> tuple[int, int, list[tuple[int, str]]]:
    """Upsert ``batch``; returns (created, updated, refused rows). When the database
    refuses the chunk, each row is written in its own savepoint, so one bad row
    costs only itself (in file order, so repeats of an address merge as before)."""
    refused: list[tuple[int, str]] = []

    def refuse(numbered: tuple[int, ImportRow], exc: Exception) -> None:
        refused.append((numbered[0], f"The database refused the row ({type(exc).__name__})."))

    written = run_isolated(session, batch, lambda rows: upsert_rows(session, account_id, [r for _, r in rows], now),
                           refuse, passthrough=(), what="import", caught=row_faults(session))
    return sum(c for c, _ in written), sum(u for _, u in written), refused


def run_import(session: Session, job_id: int, clock: Callable[[], datetime] = utcnow,
               lease: timedelta = LEASE) -> Iterator[Job]:
    """Process a claimed job from where it stopped, yielding it after each chunk
    (commit there: that is also when the lease is extended); the last yield has
    status ``completed``. The payload is dropped once done: it can be 50 MB and
    the counts say what happened."""
    job = session.get(Job, job_id)
    if job is None or job.status != "running":
        return
    now = clock()
    payload = job.payload or b""
    batch: list[tuple[int, ImportRow]] = []
    errors: list[tuple[int, str]] = []
    processed = 0
    for number, row in islice(read_rows(payload, job.payload_format), job.processed, None):
        processed += 1
        if isinstance(row, str):
            errors.append((number, row))
        else:
            batch.append((number, row))
        if processed >= CHUNK:
            _flush(session, job, batch, errors, processed, now)
            job.claimed_until = clock() + lease
            batch, errors, processed = [], [], 0
            yield job
    _flush(session, job, batch, errors, processed, now)
    job.status = "completed"
    job.finished_at = clock()
    job.claimed_until = None
    job.payload = None
    yield job


def _flush(session: Session, job: Job, batch: list[tuple[int, ImportRow]], errors: list[tuple[int, str]],
           processed: int, now: datetime) -> None:
    created, updated, refused = _write(session, job.account_id, batch, now)
    every = sorted([*errors, *refused])
    messages = [f"row {number}: {message}" for number, message in every[:MAX_ERROR_MESSAGES]]
    _record(job, created, updated, processed, messages, len(every))


def fail_import(session: Session, job_id: int, reason: str, now: datetime) -> None:
    """Mark the job failed with ``reason`` (rows already committed stay imported)."""
    job = session.get(Job, job_id)
    if job is None:
        return
    job.status = "failed"
    job.finished_at = now
    job.errors = [*(job.errors or [])[:MAX_ERROR_MESSAGES], f"import failed: {reason}"]
