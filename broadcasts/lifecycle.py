"""A broadcast's life before and around sending: created and changed as a draft,
scheduled through the pre-flight check (as activating a sequence is), cancelled.

Cancelling stops what has not gone out: the broadcast's queued and deferred
messages are settled as ``suppressed`` in the same transaction, and the sender
refuses any message of a cancelled broadcast it claims later (delivery.sender).
Only a message a send worker already holds when the cancel commits can still go.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broadcasts.validation import validate
from content.preflight import Spamd
from models import Broadcast, Message
from sequencing.errors import NotFoundError, PreflightFailedError, StateConflictError
from sequencing.preflight import Preflight, check_email

CANCELLABLE = ("draft", "scheduled", "testing", "sending")
CANCELLED_REASON = "broadcast cancelled"


class BroadcastPreflightError(PreflightFailedError):
    """The broadcast's content fails the pre-flight check."""

    def __init__(self, report: Preflight) -> None:
        super().__init__(report)
        self.args = ("The broadcast fails the pre-flight check; fix it or schedule with override_preflight.",)


def get(session: Session, account_id: int, broadcast_id: int) -> Broadcast:
    row = session.scalar(select(Broadcast).where(Broadcast.id == broadcast_id, Broadcast.account_id == account_id))
    if row is None:
        raise NotFoundError("Broadcast not found.")
    return row


def create(session: Session, account_id: int, raw: Any, now: datetime) -> Broadcast:
    data = validate(session, account_id, raw)
    row = Broadcast(account_id=account_id, status="draft", best_time=bool(data.pop("best_time", False)),
                    created_at=now, updated_at=now, **data)
    session.add(row)
    session.flush()
    return row


def _fields(row: Broadcast) -> dict[str, Any]:
    return {"name": row.name, "segment_id": row.segment_id, "topic": row.topic, "subject": row.subject,
            "html": row.html, "text": row.text, "template_id": row.template_id, "variants": row.variants,
            "send_at": row.send_at, "local_time": row.local_time, "best_time": row.best_time, "test": row.test}


def update_draft(session: Session, account_id: int, broadcast_id: int, raw: Any, now: datetime) -> Broadcast:
    row = get(session, account_id, broadcast_id)
    if row.status != "draft":
        raise StateConflictError(f"A broadcast can be changed only as a draft; this one is {row.status}.")
    if isinstance(raw, dict) and "segment_id" in raw and "topic" not in raw:
        raw = {**raw, "topic": None}  # naming the other audience replaces the first
    elif isinstance(raw, dict) and "topic" in raw and "segment_id" not in raw:
        raw = {**raw, "segment_id": None}
    for key, value in validate(session, account_id, raw, _fields(row)).items():
        setattr(row, key, value)
    row.updated_at = now
    return row


def preflight(session: Session, row: Broadcast, dkim_domain: str | None, spamd: Spamd) -> Preflight:
    return check_email(session, row.account_id, {"subject": row.subject, "html": row.html, "text": row.text,
                                                 "template_id": row.template_id, "variants": row.variants},
                       dkim_domain, spamd)


def schedule(session: Session, account_id: int, broadcast_id: int, now: datetime, dkim_domain: str | None,
             spamd: Spamd, override_preflight: bool = False) -> Broadcast:
    """Draft -> scheduled, due at ``send_at`` (or now). The pre-flight check must
    pass unless overridden, as for activating a sequence."""
    row = get(session, account_id, broadcast_id)
    if row.status != "draft":
        raise StateConflictError(f"Only a draft can be scheduled; this broadcast is {row.status}.")
    report = preflight(session, row, dkim_domain, spamd)
    if not report.passed and not override_preflight:
        raise BroadcastPreflightError(report)
    moved = session.execute(update(Broadcast).where(Broadcast.id == row.id, Broadcast.status == "draft").values(
        status="scheduled", scheduled_at=now, next_run_at=max(row.send_at or now, now),
        preflight_overridden=not report.passed, updated_at=now).execution_options(synchronize_session=False))
    if not moved.rowcount:
        raise StateConflictError("The broadcast changed meanwhile; read it again.")
    session.refresh(row)
    return row


def cancel(session: Session, account_id: int, broadcast_id: int, now: datetime) -> Broadcast:
    """Stop the broadcast: the status first (a running step then finds it moved and
    changes nothing), then every message of it not yet taken by a send worker."""
    row = get(session, account_id, broadcast_id)
    moved = session.execute(update(Broadcast).where(Broadcast.id == row.id, Broadcast.status.in_(CANCELLABLE))
                            .values(status="cancelled", cancelled_at=now, next_run_at=None, updated_at=now)
                            .execution_options(synchronize_session=False))
    if not moved.rowcount:
        session.refresh(row)
        raise StateConflictError(f"A {row.status} broadcast cannot be cancelled.")
    session.execute(update(Message).where(Message.broadcast_id == row.id, Message.status.in_(("queued", "deferred")))
                    .values(status="suppressed", error=CANCELLED_REASON, claimed_until=None, retry_at=None,
                            updated_at=now).execution_options(synchronize_session=False))
    session.refresh(row)
    return row
