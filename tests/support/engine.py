"""The timer's two steps run in-process, with time injected."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import event

from models import db
from sequencing.claims import claim_due_enrollments
from sequencing.engine import advance_enrollments


def run_due(now: datetime) -> list[int]:
    """Claim everything due at ``now`` and advance it as one batch, each step in its
    own transaction as the tick and advance tasks run them; the messages queued."""
    with db.session_scope() as s:
        ids = claim_due_enrollments(s, now, 10_000)
    if not ids:
        return []
    with db.session_scope() as s:
        return advance_enrollments(s, ids, now).message_ids


@contextmanager
def on_each_statement(callback: Callable[..., None]) -> Iterator[None]:
    """``callback(connection, cursor, statement, parameters, ...)`` before each
    statement the process's engine runs meanwhile (SQLAlchemy's before_cursor_execute)."""
    engine = db.get_engine()
    event.listen(engine, "before_cursor_execute", callback)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", callback)
