"""The send path driven in-process, as the send task runs it, with time injected:
emails queued through the real engine, and the task's own batch function."""
from __future__ import annotations

import os
from datetime import datetime

from sqlalchemy import func, select

from models import Message, db
from models.base import utcnow
from settings import get_settings
from delivery.batch import send_batch
from tasks.sending import RECORDER
from tests.support import factories
from tests.support.engine import run_due

LINK = "https://shop.example.test/sale?x=1"
STEP = {"type": "email", "subject": "Hi {{ subscriber.first_name }}",
        "html": f'<p>Hello {{{{ subscriber.first_name }}}}, <a href="{LINK}">see the sale</a></p>'}


def use_smtp(port: int) -> None:
    """Point the platform's default SMTP provider at ``port``, through the environment
    as an operator would, for this process and its in-thread worker."""
    os.environ.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port))
    get_settings.cache_clear()


def forget_smtp() -> None:
    for name in ("SMTP_HOST", "SMTP_PORT"):
        os.environ.pop(name, None)
    get_settings.cache_clear()


def statuses() -> dict[str, int]:
    with db.session_scope() as s:
        return dict(s.execute(select(Message.status, func.count()).group_by(Message.status)).all())


def queue_emails(count: int, steps: list[dict] | None = None) -> list[int]:
    acct = factories.account()
    seq = factories.sequence(acct, steps or [STEP])
    now = utcnow()
    factories.enroll(acct, seq, factories.subscribers(acct, count), now)
    return run_due(now)


def account_of(message_ids: list[int]) -> int:
    """The account the (first) message belongs to."""
    with db.session_scope() as s:
        return s.scalar(select(Message.account_id).where(Message.id == message_ids[0]))


def send_in_process(ids: list[int], at: datetime | None = None) -> dict[str, int]:
    """The send task's batch, run here at ``at`` (default: now)."""
    now = at or utcnow()
    return send_batch(ids, get_settings(), RECORDER.start, clock=lambda: now)
