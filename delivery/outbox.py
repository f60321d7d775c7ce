"""The outbox's state changes, each a conditional UPDATE so that two workers racing
over one message never both send it ("the conditional UPDATE is the claim").

    queued -> sending -> sent
           \\-> deferred (retry_at) -> sending ...
           \\-> failed | suppressed

``claimed_until`` serves two leases: for a queued/deferred row it is "dispatched,
do not dispatch again before", for a sending row "a worker is on it until". A
sending row whose lease ran out belongs to a dead worker and is picked up again.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, case, or_, text, update
from sqlalchemy.orm import Session

from analytics.events import record_event
from models import Message
from models.bulk import id_array
from sequencing.claims import OutboxRedispatch

SEND_LEASE = timedelta(minutes=5)
DISPATCH_LEASE = timedelta(seconds=60)
# A message whose send crashed its worker this many times is failed, so one poison
# message cannot take a worker down forever.
MAX_ATTEMPTS = 8

# The send path's statements are written against the table (Core): the ORM's
# per-call update machinery cost more than the statements themselves.
MESSAGES = Message.__table__
_COLUMNS = MESSAGES.c


# What sending a claimed message needs of its row, returned by the claim itself.
CLAIMED_COLUMNS = ("id", "account_id", "subscriber_id", "step_id", "variant", "attempts", "to_email",
                   "idempotency_key", "in_doubt_since")


def _claim_statement() -> Any:
    c = _COLUMNS
    now = bindparam("now", type_=c.updated_at.type)
    sendable = or_(
        and_(c.status.in_(("queued", "deferred")), or_(c.retry_at.is_(None), c.retry_at <= now)),
        and_(c.status == "sending", c.claimed_until < now),
    )
    return (
        update(MESSAGES)
        .where(c.id.in_(bindparam("ids", expanding=True)), sendable)
        .values(status="sending", claimed_until=bindparam("lease_until", type_=c.claimed_until.type),
                attempts=c.attempts + 1, updated_at=now,
                in_doubt_since=case((c.status == "sending", now), else_=c.in_doubt_since))
        .returning(*(c[name] for name in CLAIMED_COLUMNS))
    )


# Built once: building the expression (IN, CASE, bound values) cost more than running it.
_CLAIM_FOR_SEND = _claim_statement()


def claim_for_send(session: Session, ids: list[int], now: datetime, lease: timedelta = SEND_LEASE) -> list[Row[Any]]:
    """Mark the sendable ones among ``ids`` as ``sending``; return the rows we own
    (``CLAIMED_COLUMNS``, by id), read in the same round trip as the claim."""
    rows = session.connection().execute(_CLAIM_FOR_SEND, {"ids": ids, "now": now, "lease_until": now + lease})
    return sorted(rows.all(), key=lambda row: row.id)


# A row found ``sending`` by the sweep lost its worker mid-send: the provider may
# have taken it, so it is marked in doubt (see sender.hold_in_doubt).
_REDISPATCH = OutboxRedispatch(
    "messages", "in_doubt_since = CASE WHEN status = 'sending' THEN :now ELSE in_doubt_since END")


def claim_for_dispatch(session: Session, now: datetime, limit: int, lease: timedelta = DISPATCH_LEASE) -> list[int]:
    """Messages that need a send task: deferred ones now due, queued ones whose task
    was lost (Redis restarted), and sending ones whose worker died."""
    return _REDISPATCH.claim(session, now, limit, lease)


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: 30 s, 1 min, 2 min ... capped at 6 h."""
    base = min(30 * 2 ** max(attempts - 1, 0), 6 * 3600)
    return timedelta(seconds=base * (rng or random).uniform(0.8, 1.2))



def _owned(message_id: int):  # type: ignore[no-untyped-def]
    return and_(_COLUMNS.id == message_id, _COLUMNS.status == "sending")


def sent_event_key(message_id: int) -> str:
    """The ``sent`` event's dedup key: one ``sent`` per message, however it is recorded."""
    return f"sent:{message_id}"


@dataclass(frozen=True)
class Accepted:
    """A provider took a message: what its row and its ``sent`` event record."""

    message_id: int
    account_id: int
    subscriber_id: int
    provider: str
    provider_message_id: str
    at: datetime


# PostgreSQL: the rows marked and their events in one statement (one round trip, and
# atomic without a transaction of its own), only for rows still ``sending``: a row
# another worker's outcome reached first keeps that outcome and gets no event. The
# ids are given again as an array so the planner looks them up by key (see
# models.bulk.id_array).
_MARK_SENT_PG = text("""
    WITH v AS (SELECT * FROM json_to_recordset(CAST(:rows AS json))
               AS v(id integer, provider varchar, provider_message_id varchar, at timestamptz, dedup_key varchar)),
    sent AS (
        UPDATE messages SET status = 'sent', provider = v.provider, provider_message_id = v.provider_message_id,
            sent_at = v.at, updated_at = v.at, error = NULL, claimed_until = NULL, retry_at = NULL
        FROM v WHERE messages.id = ANY(CAST(:ids AS bigint[])) AND messages.id = v.id AND messages.status = 'sending'
        RETURNING messages.id, messages.account_id, messages.subscriber_id, v.at, v.dedup_key)
    INSERT INTO events (account_id, subscriber_id, message_id, name, dedup_key, source, properties,
                        occurred_at, created_at)
    SELECT account_id, subscriber_id, id, 'sent', dedup_key, 'platform', '{}', at, at FROM sent
    ON CONFLICT DO NOTHING""")


def mark_sent(session: Session, accepted: list[Accepted]) -> None:
    """Record the providers' acceptances, each with its ``sent`` event (keyed by
    the message, so a replay adds none), for the rows we still own."""
    if not accepted:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        rows = [{"id": a.message_id, "provider": a.provider, "provider_message_id": a.provider_message_id,
                 "at": a.at.isoformat(), "dedup_key": sent_event_key(a.message_id)} for a in accepted]
        connection.execute(_MARK_SENT_PG, {"rows": json.dumps(rows), "ids": id_array([a.message_id for a in accepted])})
        return
    for a in accepted:  # the embedded SQLite default: one row at a time is plenty
        owned = connection.execute(update(MESSAGES).where(_owned(a.message_id)).values(
            status="sent", provider=a.provider, provider_message_id=a.provider_message_id, sent_at=a.at,
            updated_at=a.at, error=None, claimed_until=None, retry_at=None)).rowcount
        if owned:
            record_event(session, account_id=a.account_id, subscriber_id=a.subscriber_id, name="sent", now=a.at,
                         message_id=a.message_id, source="platform", dedup_key=sent_event_key(a.message_id))


def mark_deferred(session: Session, message_id: int, attempts: int, error: str, now: datetime,
                  retry_after: float | None = None, provider: str | None = None, in_doubt: bool = False) -> str:
    """Defer for a retry, or fail once the attempts are used up. Returns the new
    status. ``in_doubt``: the provider may have taken it (its answer was lost), so
    the retry first waits for its events (sender.hold_in_doubt)."""
    if attempts >= MAX_ATTEMPTS:
        mark_failed(session, message_id, f"gave up after {attempts} attempts: {error}", now, provider)
        return "failed"
    delay = backoff(attempts)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    session.execute(
        update(MESSAGES).where(_owned(message_id)).values(
            status="deferred", retry_at=now + delay, error=error[:2000], claimed_until=now + delay,
            provider=provider, updated_at=now, **({"in_doubt_since": now} if in_doubt else {})),
    )
    return "deferred"


def reconcile_sent(session: Session, message_id: int, provider: str, provider_message_id: str | None,
                   sent_at: datetime, now: datetime) -> bool:
    """A provider's event shows it took a message our row never recorded as sent
    (the worker died after the provider's answer, or the answer was lost): record
    the send instead of sending again. Only rows that were tried qualify."""
    row = session.execute(
        update(MESSAGES).where(_COLUMNS.id == message_id, _COLUMNS.status.in_(("queued", "sending", "deferred")),
                              _COLUMNS.attempts > 0, _COLUMNS.sent_at.is_(None)).values(
            status="sent", provider=provider, provider_message_id=provider_message_id, sent_at=sent_at,
            error=None, claimed_until=None, retry_at=None, in_doubt_since=None, updated_at=now)
        .returning(_COLUMNS.account_id, _COLUMNS.subscriber_id),
    ).first()
    if row is None:
        return False
    record_event(session, account_id=row.account_id, subscriber_id=row.subscriber_id, name="sent", now=now,
                 message_id=message_id, source="platform", properties={"reconciled_from": provider},
                 dedup_key=sent_event_key(message_id), occurred_at=sent_at)
    return True


def mark_held(session: Session, message_id: int, reason: str, now: datetime, retry_after: float) -> None:
    """Put a claimed message back untried until ``now + retry_after``: a limit held
    it (rate, warming cap, no provider open), so the claim's attempt is returned and
    waiting can never use up its attempts."""
    until = now + timedelta(seconds=retry_after)
    session.execute(
        update(MESSAGES).where(_owned(message_id)).values(
            status="deferred", retry_at=until, claimed_until=until, error=reason[:2000],
            attempts=_COLUMNS.attempts - 1, updated_at=now),
    )


def mark_failed(session: Session, message_id: int, error: str, now: datetime, provider: str | None = None) -> None:
    session.execute(
        update(MESSAGES).where(_COLUMNS.id == message_id, _COLUMNS.status.in_(("sending", "queued", "deferred"))).values(
            status="failed", error=error[:2000], claimed_until=None, retry_at=None, provider=provider, updated_at=now),
    )


def mark_suppressed(session: Session, message_id: int, reason: str, now: datetime) -> None:
    session.execute(
        update(MESSAGES).where(_owned(message_id)).values(
            status="suppressed", error=reason, claimed_until=None, retry_at=None, updated_at=now),
    )
