"""What the API's routes and the console's pages both do with AI drafts, in one
place: ask for one (checked, stored, committed, then handed to the ai pool; a
broker that refuses it loses nothing, the ai sweep queues stored drafts), and
apply a ready one with the pre-flight as the API runs it."""
from __future__ import annotations

from typing import Any

from flask import current_app

from ai import apply, draft_rows
from models import AiDraft, utcnow
from tasks.ai import draft as draft_task
from web.auth import current_account_id
from web.db import get_db
from web.enqueue import enqueue_stored
from web.preflight import check


def ask_for_draft(data: dict[str, Any]) -> AiDraft:
    """A queued draft of the caller's account, committed and enqueued. Raises
    InvalidInputError naming each bad field, NotFoundError for another account's
    sequence (both before anything is stored)."""
    session = get_db()
    settings = current_app.config["ESEQ_SETTINGS"]
    draft = draft_rows.queue_draft(session, current_account_id(), data, utcnow(),
                                   model_configured=settings.ai_configured)
    session.commit()
    enqueue_stored(draft_task, (draft.id,), "ai draft", "the ai sweep will queue it", draft_id=draft.id)
    return draft


def apply_ready_draft(draft_id: int) -> dict[str, Any]:
    """Apply the caller's ready draft once and commit; what it made ({sequence_id,
    step, status, version}). NotFoundError, StateConflictError (not ready, applied,
    sequence changed) and PreflightFailedError (a step draft on an active sequence)
    leave nothing changed."""
    session = get_db()
    applied = apply.apply_draft(session, current_account_id(), draft_id, utcnow(),
                                preflight=lambda sequence: check(session, sequence))
    session.commit()
    return applied
