"""A segment too large for one request is enrolled by a job on the default pool:
chunk by chunk, each committed with its cursor, so a worker killed between chunks
is resumed where it stopped and nobody is enrolled twice, even into a sequence
whose re-entry rule would start a second run for anyone enrolled again."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from audience.imports import claim_import, imports_to_resume
from audience.segments import create_segment
from models import Enrollment, Job, Subscriber, db, utcnow
from sequencing import segment_enroll
from sequencing.segment_enroll import JOB_KIND, enroll_segment, run_segment_job
from tasks.audience import enroll_segment as enroll_segment_task
from tests.support import factories


@pytest.fixture
def small_limits(monkeypatch):
    monkeypatch.setattr(segment_enroll, "MAX_SEGMENT_ENROLL", 10)
    monkeypatch.setattr(segment_enroll, "CHUNK", 4)


def _setup(members: int) -> tuple[int, int, int, list[int]]:
    acct = factories.account()
    ids = factories.subscribers(acct, members, tags=["vip"])
    factories.subscribers(acct, 3, prefix="other")  # not in the segment
    with db.session_scope() as s:
        s.execute(update(Subscriber).where(Subscriber.id == ids[0]).values(status="unsubscribed"))
        segment_id = create_segment(s, acct, "vips", {"tag": "vip"}, utcnow()).id
    sequence_id = factories.sequence(acct, [{"type": "email", "subject": "Hi", "text": "Hello"}],
                                     settings={"reentry": "always"})
    return acct, sequence_id, segment_id, ids


def _runs_by_subscriber(sequence_id: int) -> dict[int, int]:
    with db.session_scope() as s:
        return dict(s.execute(select(Enrollment.subscriber_id, func.count()).where(
            Enrollment.sequence_id == sequence_id).group_by(Enrollment.subscriber_id)).all())


def test_a_large_segment_becomes_a_job_that_survives_a_killed_worker(small_limits):
    acct, sequence_id, segment_id, ids = _setup(12)  # 11 active members: past the request's limit of 10
    with db.session_scope() as s:
        outcome = enroll_segment(s, acct, sequence_id, segment_id, utcnow())
    assert (outcome.enrolled, outcome.skipped) == (0, 0) and outcome.job_id is not None
    assert _runs_by_subscriber(sequence_id) == {}, "the request itself enrolls no one"
    job_id = outcome.job_id
    now = utcnow()
    with db.session_scope() as s:
        assert claim_import(s, job_id, now, kind=JOB_KIND)
    # A worker commits one chunk, then dies (its session goes without committing the next).
    s = db.new_session()
    chunks = run_segment_job(s, job_id, utcnow)
    next(chunks)
    s.commit()
    next(chunks)
    s.rollback()
    s.close()
    assert sum(_runs_by_subscriber(sequence_id).values()) == 4
    # Its lease runs out; the tick's sweep hands the job to another worker, which resumes.
    with db.session_scope() as s:
        assert imports_to_resume(s, now + timedelta(hours=1), kind=JOB_KIND) == [job_id]
        assert claim_import(s, job_id, now + timedelta(hours=1), kind=JOB_KIND)
    with db.session_scope() as s:
        for _job in run_segment_job(s, job_id, utcnow):
            s.commit()
    assert _runs_by_subscriber(sequence_id) == {sid: 1 for sid in ids[1:]}, "each active member once, with one run"
    with db.session_scope() as s:
        job = s.get(Job, job_id)
        assert (job.status, job.processed, job.result["enrolled"], job.result["skipped"]) == ("completed", 11, 11, 0)


def test_the_task_enrolls_a_pending_job_and_stops_when_the_sequence_is_paused(small_limits):
    acct, sequence_id, segment_id, ids = _setup(15)
    with db.session_scope() as s:
        job_id = enroll_segment(s, acct, sequence_id, segment_id, utcnow()).job_id
    enroll_segment_task.run(job_id)
    assert _runs_by_subscriber(sequence_id) == {sid: 1 for sid in ids[1:]}, "the unsubscribed member is not enrolled"
    with db.session_scope() as s:
        assert s.get(Job, job_id).status == "completed"
        job_id = enroll_segment(s, acct, sequence_id, segment_id, utcnow()).job_id
        s.execute(update(segment_enroll.Sequence).where(segment_enroll.Sequence.id == sequence_id)
                  .values(status="paused"))
    enroll_segment_task.run(job_id)
    with db.session_scope() as s:
        job = s.get(Job, job_id)
        assert job.status == "failed" and "paused" in job.errors[0]
    assert sum(_runs_by_subscriber(sequence_id).values()) == 14, "a paused sequence is fed no one"
