"""A history import whose worker is killed with SIGKILL mid-import: beat's tick finds
the lapsed lease, a new worker resumes after the last committed chunk, and every
row is imported exactly once, the counts exact."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Event, Job, db
from models.base import utcnow
from tests.support import factories
from tests.support.processes import Proc, beat_argv, platform_env, running, worker_argv
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def job_state(job_id: int) -> tuple[str, int]:
    with db.session_scope() as s:
        job = s.get(Job, job_id)
        return job.status, job.processed


def test_killing_the_worker_mid_import_imports_every_row_once(tmp_path: Path):
    from audience import event_import
    from tasks.audience import import_events

    account = factories.account()
    rows = event_import.CHUNK * 6
    body = "email,name,occurred_at,value\n" + "".join(
        f"p{i % 5000}@example.com,{'purchase' if i % 7 == 0 else 'opened'},2025-06-01T00:00:00.{i:06d}+02:00,"
        f"{i % 100 if i % 7 == 0 else ''}\n" for i in range(rows))
    with db.session_scope() as s:
        job_id = event_import.create_event_import_job(s, account, [body.encode()], "csv", utcnow()).id
    env = platform_env(ESEQ_TICK_SECONDS="0.5", ESEQ_LEASE_SECONDS="10")
    beat = Proc("beat", beat_argv(tmp_path / "schedule"), env, tmp_path)
    with running([beat]):
        first = Proc("first", worker_argv("first", queues="default", concurrency=2), env, tmp_path)
        with running([first]):
            import_events.delay(job_id)
            wait_for(lambda: job_state(job_id)[1] >= event_import.CHUNK, 120, "a first chunk to commit",
                     detail=first.tail)
            first.kill()
        status, processed = job_state(job_id)
        assert status == "running" and 0 < processed < rows, "the kill landed mid-import"
        with db.session_scope() as s:
            assert s.scalar(select(func.count()).select_from(Event)) == processed, "only committed chunks are kept"
        second = Proc("second", worker_argv("second", queues="default", concurrency=2), env, tmp_path)
        with running([second]):
            wait_for(lambda: job_state(job_id)[0] in ("completed", "failed"), 300, "the resumed import to finish",
                     detail=second.tail)
    with db.session_scope() as s:
        job = s.get(Job, job_id)
        assert (job.status, job.processed, job.created_count, job.error_count) == ("completed", rows, rows, 0)
        assert job.result == {"events": rows, "duplicates": 0, "subscribers_created": 5000}
        assert s.scalar(select(func.count()).select_from(Event)) == rows
        assert s.scalar(select(func.count(func.distinct(Event.dedup_key)))) == rows
        purchases = [i for i in range(rows) if i % 7 == 0]
        assert s.scalar(select(func.count()).where(Event.name == "purchase")) == len(purchases)
        assert s.scalar(select(func.sum(Event.value))) == float(sum(i % 100 for i in purchases))
