"""Tasks of the audience area (subscriber and event-history imports, segment entries and
enrollments, opt-in expiry), on the
``default`` queue: imports are database work (COPY and INSERT ... SELECT), short
compared with training, which keeps the ``ml`` pool (concurrency 1) for models."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from audience import event_import
from audience.opt_in import expire_pending
from audience.errors import ImportPayloadError
from audience.imports import KIND as IMPORT_JOB, claim_import, fail_import, imports_to_resume, run_import
from models.base import utcnow
from models.db import session_scope
from sequencing.segment_enroll import JOB_KIND as SEGMENT_JOB, run_segment_job
from sequencing.segment_entries import check_segment, segments_to_check
from settings import get_settings
from tasks.app import app

log = logging.getLogger(__name__)


def _run_job(job_id: int, kind: str, run: Callable[[Session, int, Callable[[], datetime], timedelta], Iterator[Any]],
             what: str) -> None:
    """Claim a job of ``kind``, then work it committing after every chunk (progress a
    client can poll, and where a killed worker's job resumes). Any failure marks the
    job failed instead of leaving it running."""
    lease = timedelta(seconds=get_settings().lease_seconds)
    with session_scope() as session:
        if not claim_import(session, job_id, utcnow(), lease, kind=kind):
            return
    try:
        with session_scope() as session:
            for _job in run(session, job_id, utcnow, lease):
                session.commit()
    except Exception as exc:
        log.exception("%s failed", what, extra={"job_id": job_id})
        with session_scope() as session:
            fail_import(session, job_id, type(exc).__name__, utcnow())


# 500,000 rows take well under a minute on PostgreSQL; the limits only stop a stuck
# import, and stay under the broker's visibility timeout (celeryconfig).
@app.task(name="audience.import_subscribers", ignore_result=True, soft_time_limit=1500, time_limit=1800)
def import_subscribers(job_id: int) -> None:
    """A subscriber import (audience.imports)."""
    _run_job(job_id, IMPORT_JOB, run_import, "subscriber import")


# 5,000,000 rows take about two minutes on PostgreSQL (bench/import_events.py);
# SQLite is several times slower. The hard limit stays under the broker's
# visibility timeout (celeryconfig); a killed import resumes after its last chunk.
@app.task(name="audience.import_events", ignore_result=True, soft_time_limit=3300, time_limit=3500)
def import_events(job_id: int) -> None:
    """Claim the event-history job, then import it committing after every chunk."""
    lease = timedelta(seconds=get_settings().lease_seconds)
    with session_scope() as session:
        if not claim_import(session, job_id, utcnow(), lease, kind=event_import.KIND):
            return
    try:
        with session_scope() as session:
            for _job in event_import.run_event_import(session, job_id, utcnow, lease):
                session.commit()
    except Exception as exc:
        log.exception("event import failed", extra={"job_id": job_id})
        with session_scope() as session:
            fail_import(session, job_id, str(exc) if isinstance(exc, ImportPayloadError) else type(exc).__name__,
                        utcnow())
            event_import.discard_upload(session, job_id)


@app.task(name="audience.enroll_segment", ignore_result=True, soft_time_limit=1500, time_limit=1800)
def enroll_segment(job_id: int) -> None:
    """A large segment enrolled into a sequence, chunk by chunk with its cursor
    (sequencing.segment_enroll)."""
    _run_job(job_id, SEGMENT_JOB, run_segment_job, "segment enroll")


def resume_stale_imports(lease: timedelta) -> list[int]:
    """Called by the tick: re-enqueue imports and segment enrollments whose worker died or whose task was lost."""
    with session_scope() as session:
        ids = imports_to_resume(session, utcnow(), lease)
        events = imports_to_resume(session, utcnow(), lease, kind=event_import.KIND)
        segments = imports_to_resume(session, utcnow(), lease, kind=SEGMENT_JOB)
    for job_id in ids:
        import_subscribers.apply_async(args=[job_id])
    for job_id in events:
        import_events.apply_async(args=[job_id])
    for job_id in segments:
        enroll_segment.apply_async(args=[job_id])
    return ids + events + segments


@app.task(name="audience.check_segment_entries", ignore_result=True)
def check_segment_entries() -> int:
    """Enroll who entered a segment since the last check into the sequences it
    triggers: one transaction per segment (sequencing.segment_entries), so one
    failing segment neither blocks nor rolls back the others."""
    with session_scope() as session:
        segment_ids = segments_to_check(session)
    enrolled = 0
    for segment_id in segment_ids:
        try:
            with session_scope() as session:
                enrolled += check_segment(session, segment_id, utcnow())
        except Exception:
            log.exception("segment entry check failed", extra={"segment_id": segment_id})
    return enrolled


@app.task(name="audience.expire_pending", ignore_result=True)
def expire_pending_subscribers() -> int:
    """Remove the pending subscribers who did not confirm within ESEQ_OPT_IN_EXPIRY_HOURS."""
    with session_scope() as session:
        removed = expire_pending(session, utcnow(), timedelta(hours=get_settings().opt_in_expiry_hours))
        session.commit()
    if removed:
        log.info("expired unconfirmed subscribers", extra={"removed": removed})
    return removed
