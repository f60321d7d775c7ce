"""The ai pool: one draft per task, on the ``ai`` queue (Procfile: a threads pool of
AI_CONCURRENCY, which is also how many calls the model server gets at once from
each worker). The domain does the work (``ai.drafts``); this maps its outcome:
``retry`` becomes a Celery retry with the server's countdown, so a rate-limited
draft waits in the broker, not in a thread. Beat's sweep hands on drafts whose
task was lost and fails drafts whose worker died.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from functools import lru_cache
from typing import Any

from ai import draft_rows, drafts
from ai.budget import Prices
from ai.client import ChatClient, backoff_seconds
from content.preflight import Spamd
from models import Sequence
from models.base import utcnow
from models.db import session_scope
from sequencing.preflight import Preflight, check_sequence
from settings import get_settings
from tasks.app import app

log = logging.getLogger(__name__)

DRAFT_SOFT_LIMIT = 300
DRAFT_HARD_LIMIT = 360  # under draft_rows.LEASE, so a live draft is never swept
# A draft is run this many times (waits for the model server included, across
# tasks the sweep handed on), then fails.
MAX_ATTEMPTS = 8
MAX_COUNTDOWN = 600.0
OPENAI_URL = "https://api.openai.com/v1"


@lru_cache(maxsize=1)
def model_client() -> ChatClient | None:
    """The process's client for the configured model server; None: blueprints only.
    One attempt per call: waiting out a 429 or an outage is the task's retry."""
    settings = get_settings()
    if not settings.ai_configured:
        return None
    return ChatClient(base_url=settings.openai_base_url or OPENAI_URL, api_key=settings.openai_api_key,
                      model=settings.openai_model, timeout=settings.ai_timeout_seconds, max_attempts=1)


def configured_model() -> str | None:
    settings = get_settings()
    return settings.openai_model if settings.ai_configured else None


def enqueue_draft(draft_id: int, countdown: float | None = None) -> None:
    """After the draft's row is committed."""
    draft.apply_async(args=[draft_id], countdown=countdown)


def check(sequence: Sequence) -> Preflight:
    """The pre-flight as the API runs it, in a session of its own (a draft holds no
    transaction while the model works)."""
    settings = get_settings()
    with session_scope() as session:
        return check_sequence(session, sequence, settings.dkim_domain, Spamd(settings.spamd_host, settings.spamd_port))


@app.task(name="ai.draft", bind=True, ignore_result=True, max_retries=None, soft_time_limit=DRAFT_SOFT_LIMIT,
          time_limit=DRAFT_HARD_LIMIT)
def draft(self: Any, draft_id: int) -> str | None:
    """Run one queued draft; its status afterwards, or None if it was not queued."""
    settings = get_settings()
    with session_scope() as session:
        job = drafts.start(session, draft_id, utcnow(), model=configured_model(), daily_tokens=settings.ai_daily_tokens)
    if job is None:
        return None
    outcome = drafts.compose(job, model_client(), check)
    prices = Prices(settings.ai_price_prompt_per_1k, settings.ai_price_completion_per_1k)
    if outcome.status == "retry" and job.attempts < MAX_ATTEMPTS:
        countdown = min(max(outcome.retry_after or backoff_seconds(job.attempts), 1.0), MAX_COUNTDOWN)
        with session_scope() as session:
            due = utcnow() + timedelta(seconds=countdown)
            waiting = draft_rows.wait_for_server(session, draft_id, due, outcome.usage)
        if waiting:
            log.info("ai draft %s waits %.0f s for the model server: %s", draft_id, countdown, outcome.error)
            raise self.retry(countdown=countdown, max_retries=None)
        return None
    if outcome.status == "retry":
        outcome.status, outcome.error = "failed", f"the model server stayed unavailable: {outcome.error}"
    with session_scope() as session:
        drafts.finish(session, job, outcome, utcnow(), prices)
    return outcome.status


@app.task(name="ai.sweep", ignore_result=True)
def sweep() -> int:
    """Fail drafts whose worker died mid-draft; hand lost queued drafts to the pool again."""
    with session_scope() as session:
        lapsed, stale = draft_rows.sweep(session, utcnow())
    for draft_id in lapsed:
        log.warning("ai draft %s failed: its lease lapsed", draft_id)
    for draft_id in stale:
        enqueue_draft(draft_id)
    return len(lapsed)
