"""The ai pool as the Procfile runs it (threads, the ai queue only), configured with
the fake chat-completions server: a draft asked for while the server rate-limits
waits out its Retry-After as a Celery retry (the thread is free meanwhile) and
becomes ready; a batch of drafts all finish; no subscriber's data is sent."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ai import draft_rows
from models import AiDraft, Subscriber, db
from models.base import utcnow
from tasks.ai import enqueue_draft
from tests.support import ai_answers, factories
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import Proc, platform_env, running, worker_argv
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def _ai_worker(fake: FakeOpenAI, tmp_path: Path, **env: str) -> Proc:
    environment = platform_env(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY=fake.api_key, OPENAI_MODEL="gpt-test",
                               **env)
    proc = Proc("ai", worker_argv("ai", queues="ai", pool="threads", concurrency=4, loglevel="INFO"), environment,
                tmp_path)
    proc.wait_ready()
    return proc


def _statuses(ids: list[int]) -> dict[int, AiDraft]:
    with db.session_scope() as s:
        rows = s.scalars(select(AiDraft).where(AiDraft.id.in_(ids))).all()
        for row in rows:
            s.expunge(row)
        return {row.id: row for row in rows}


def test_a_rate_limited_draft_waits_out_retry_after_on_the_ai_worker_and_becomes_ready(tmp_path: Path):
    acct = factories.account()
    with db.session_scope() as s:
        s.add(Subscriber(account_id=acct, email="jane.doe@private.test", first_name="Janeway",
                         attributes={"plan": "platinum-secret"}))
    with FakeOpenAI(answerer=ai_answers.good) as fake:
        fake.rate_limited(retry_after="2")
        with db.session_scope() as s:
            draft_id = draft_rows.queue_draft(s, acct, {"kind": "sequence", "brief": {"goal": "onboarding"}},
                                              utcnow(), model_configured=True).id
        worker = _ai_worker(fake, tmp_path)
        with running([worker]):
            enqueue_draft(draft_id)
            wait_for(lambda: _statuses([draft_id])[draft_id].status in ("ready", "failed"), 60,
                     "the draft to finish", detail=worker.tail)
        row = _statuses([draft_id])[draft_id]
        assert (row.status, row.error, row.attempts, row.model) == ("ready", None, 2, "gpt-test")
        assert len(fake.requests) == 2
        assert "waits 2 s for the model server" in worker.log.read_text()
        for request in fake.requests:
            assert b"jane.doe" not in request.raw and b"Janeway" not in request.raw
            assert b"platinum-secret" not in request.raw


def test_a_batch_of_drafts_all_finish_on_the_ai_pool(tmp_path: Path):
    acct = factories.account()
    with FakeOpenAI(answerer=ai_answers.good) as fake:
        ids = []
        with db.session_scope() as s:
            for n in range(12):
                ids.append(draft_rows.queue_draft(s, acct, {"kind": "sequence", "brief": {"goal": f"goal {n}"}},
                                                  utcnow(), model_configured=True).id)
        worker = _ai_worker(fake, tmp_path)
        with running([worker]):
            for draft_id in ids:
                enqueue_draft(draft_id)
            wait_for(lambda: all(r.status in ("ready", "failed") for r in _statuses(ids).values()), 90,
                     "the drafts to finish", detail=worker.tail)
        rows = _statuses(ids)
        assert {r.status for r in rows.values()} == {"ready"}, {r.id: r.error for r in rows.values()}
        assert len(fake.requests) == 12
