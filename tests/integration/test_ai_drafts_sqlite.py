"""AI drafts on the embedded SQLite database (`make run`): a draft from the
blueprints is queued, claimed, told the attribute names (read without PostgreSQL's
jsonb functions), pre-flighted, swept and applied, all on SQLite."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from ai import draft_rows, drafts
from ai.apply import apply_draft
from ai.budget import Prices, tokens_used_today
from models import Sequence, Subscriber
from sequencing.preflight import check_sequence
from tests.support.database import sqlite_engine


def test_a_blueprint_draft_is_drafted_swept_and_applied_on_sqlite(tmp_path: Path):
    now = datetime.now(timezone.utc)
    with sqlite_engine(tmp_path) as engine, Session(engine) as s:
        account = s.execute(text("INSERT INTO accounts (name, from_email, from_name, created_at) "
                                 "VALUES ('alice', 'alice@x.test', 'Alice', :t) RETURNING id"), {"t": now}).scalar_one()
        s.add(Subscriber(account_id=account, email="p@example.test", attributes={"plan": "gold", "city": "Utrecht"}))
        draft_id = draft_rows.queue_draft(s, account, {"kind": "sequence", "brief": {"goal": "welcome", "emails": 3}},
                                          now, model_configured=False).id
        job = drafts.start(s, draft_id, now, model=None, daily_tokens=1000)
        assert job is not None and job.attribute_names == ["city", "plan"]
        outcome = drafts.compose(job, None, lambda sequence: check_sequence(s, sequence, None))
        drafts.finish(s, job, outcome, now, Prices())
        draft = draft_rows.get_draft(s, account, draft_id)
        s.refresh(draft)
        assert (draft.status, draft.model, draft.error) == ("ready", "blueprint", None)
        assert draft_rows.sweep(s, now) == ([], [])
        assert tokens_used_today(s, account, now) == 0
        applied = apply_draft(s, account, draft_id, now)
        assert s.get(Sequence, applied["sequence_id"]).status == "draft"
