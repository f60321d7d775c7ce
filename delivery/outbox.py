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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, case, func, or_, text, update
from sqlalchemy.orm import Session

from analytics.events import record_event
from core.backoff import backoff
from core.redispatch import OutboxRedispatch
from models import Message
from models.message import UNSETTLED
from models.bulk import id_array

SEND_LEASE = timedelta(minutes=5)
# What recording an outcome reports when the claim no longer held its row: the
# lease ran out and the sweep gave the message to another worker, whose record
# stands.
SUPERSEDED = "superseded"
DISPATCH_LEASE = timedelta(seconds=60)
# A message whose worker died holding it this many times is failed, so one poison
# message cannot take a worker down forever.
MAX_CRASHES = 8
# How long a message is retried after its first transient failure before it
# expires (ESEQ_RETRY_HOURS): as long as an outage of a provider, or of all of
# them, can reasonably last; a plain count of tries would drop mail within the
# first hour of one.
RETRY_FOR = timedelta(hours=72)

# The send path's statements are written against the table (Core): the ORM's
# per-call update machinery cost more than the statements themselves.
MESSAGES = Message.__table__
_COLUMNS = MESSAGES.c


# What sending a claimed message needs of its row, returned by the claim itself.
CLAIMED_COLUMNS = ("id", "account_id", "subscriber_id", "step_id", "variant", "attempts", "to_email",
                   "idempotency_key", "in_doubt_since", "crashes", "deferred_since", "error", "broadcast_id")


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
                claimed_by=bindparam("owner", type_=c.claimed_by.type),
                attempts=c.attempts + 1, updated_at=now,
                in_doubt_since=case((c.status == "sending", now), else_=c.in_doubt_since),
                crashes=case((c.status == "sending", c.crashes + 1), else_=c.crashes))
        .returning(*(c[name] for name in CLAIMED_COLUMNS))
    )


# Built once: building the expression (IN, CASE, bound values) cost more than running it.
_CLAIM_FOR_SEND = _claim_statement()


def claim_for_send(session: Session, ids: list[int], now: datetime, lease: timedelta = SEND_LEASE,
                   owner: str | None = None) -> list[Row[Any]]:
    """Mark the sendable ones among ``ids`` as ``sending``; return the rows we own
    (``CLAIMED_COLUMNS``, by id), read in the same round trip as the claim.
    ``owner``: the claiming worker's id (core.liveness); its rows are released as
    soon as it stops beating (``release_dead_claims``). Without one they wait for
    the lease."""
    rows = session.connection().execute(_CLAIM_FOR_SEND, {"ids": ids, "now": now, "lease_until": now + lease,
                                                          "owner": owner})
    return sorted(rows.all(), key=lambda row: row.id)


# A row found ``sending`` by the sweep lost its worker mid-send: the provider may
# have taken it, so it is marked in doubt (see sender.hold_in_doubt).
_REDISPATCH = OutboxRedispatch(
    "messages", "in_doubt_since = CASE WHEN status = 'sending' THEN :now ELSE in_doubt_since END,\n"
    "        crashes = CASE WHEN status = 'sending' THEN crashes + 1 ELSE crashes END",
    unsettled="NOT settled")


def release_dead_claims(session: Session, owner: str, now: datetime) -> int:
    """End the leases of ``sending`` rows claimed by ``owner``, a worker that stopped
    beating, as if they had run out just now: the sweep that follows
    (``claim_for_dispatch``) marks them in doubt, counts the crash and dispatches
    them again, exactly as for an expired lease. Moving ``claimed_until`` also
    means a late outcome of that worker, were it only paused, no longer lands
    (``_owned``). Found through ix_messages_unsettled (``NOT settled``); returns
    how many were released."""
    c = _COLUMNS
    return int(session.execute(
        update(MESSAGES).where(UNSETTLED, c.status == "sending", c.claimed_by == owner)
        .values(claimed_until=now - _JUST_EXPIRED)).rowcount)  # type: ignore[attr-defined]


def release_dispatch_leases(session: Session, now: datetime) -> int:
    """The broker lost its tasks (tasks.broker.broker_was_emptied): every queued or
    due deferred row's "dispatched, do not dispatch again before" ends now, so the
    sweep that follows dispatches it again instead of a lease later. A row whose
    task survived after all gets a second task, which its claim turns away."""
    c = _COLUMNS
    return int(session.execute(
        update(MESSAGES).where(UNSETTLED, c.status.in_(("queued", "deferred")),
                               or_(c.retry_at.is_(None), c.retry_at <= now), c.claimed_until > now)
        .values(claimed_until=now - _JUST_EXPIRED)).rowcount)  # type: ignore[attr-defined]


# How far before ``now`` a released lease is set, so a sweep at the same instant takes it.
_JUST_EXPIRED = timedelta(milliseconds=1)


def claim_for_dispatch(session: Session, now: datetime, limit: int, lease: timedelta = DISPATCH_LEASE) -> list[int]:
    """Messages that need a send task: deferred ones now due, queued ones whose task
    was lost (Redis restarted), and sending ones whose worker died."""
    return _REDISPATCH.claim(session, now, limit, lease)


def _owned(message_id: int, claim: datetime | None = None):  # type: ignore[no-untyped-def]
    """The row while this worker's claim holds it. ``claim`` is the lease the claim
    set (``claimed_until``): once a lease runs out the sweep may hand the row to
    another worker, whose claim sets another, so a late outcome of the first
    cannot land on the second's row. Without it (inside the claim's own
    transaction), any ``sending`` row."""
    owned = and_(_COLUMNS.id == message_id, _COLUMNS.status == "sending")
    return owned if claim is None else and_(owned, _COLUMNS.claimed_until == claim)


@dataclass(frozen=True)
class Accepted:
    """A provider took a message: what its row and its ``sent`` event record."""

    message_id: int
    account_id: int
    subscriber_id: int
    provider: str
    provider_message_id: str
    at: datetime
    claim: datetime | None = None  # the claim's lease (see _owned)


# PostgreSQL: the rows marked and their events in one statement (one round trip, and
# atomic without a transaction of its own), only for rows still ``sending``: a row
# another worker's outcome reached first keeps that outcome and gets no event. The
# ids are given again as an array so the planner looks them up by key (see
# models.bulk.id_array).
# A ``sent`` event carries no dedup key: it is written only with its row's move to
# ``sent``, which happens once (here or in reconcile_sent), so a replay adds none.
# A key cost every email a second row (in event_keys, by the events' trigger) and ON
# CONFLICT's speculative insertion: about 20 us of the database's time an email
# (bench/send_pipeline.py, alternated; docs/benchmarks.md).
_MARK_SENT_PG = text("""
    WITH v AS (SELECT * FROM json_to_recordset(CAST(:rows AS json))
               AS v(id integer, provider varchar, provider_message_id varchar, at timestamptz, claim timestamptz)),
    sent AS (
        UPDATE messages SET status = 'sent', provider = v.provider, provider_message_id = v.provider_message_id,
            sent_at = v.at, updated_at = v.at, error = NULL, claimed_until = NULL, retry_at = NULL
        FROM v WHERE messages.id = ANY(CAST(:ids AS bigint[])) AND messages.id = v.id AND messages.status = 'sending'
            AND (v.claim IS NULL OR messages.claimed_until = v.claim)
        RETURNING messages.id, messages.account_id, messages.subscriber_id, v.at),
    events AS (
        INSERT INTO events (account_id, subscriber_id, message_id, name, source, properties, occurred_at, created_at)
        SELECT account_id, subscriber_id, id, 'sent', 'platform', '{}', at, at FROM sent)
    SELECT id FROM sent""")


def mark_sent(session: Session, accepted: list[Accepted]) -> set[int]:
    """Record the providers' acceptances, each with its ``sent`` event (written
    only as its row moves to ``sent``, so a replay adds none), for the rows we
    still own; returns their ids."""
    if not accepted:
        return set()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        rows = [{"id": a.message_id, "provider": a.provider, "provider_message_id": a.provider_message_id,
                 "at": a.at.isoformat(), "claim": a.claim.isoformat() if a.claim else None} for a in accepted]
        return set(connection.execute(_MARK_SENT_PG, {"rows": json.dumps(rows),
                                                      "ids": id_array([a.message_id for a in accepted])}).scalars())
    recorded = set()
    for a in accepted:  # the embedded SQLite default: one row at a time is plenty
        owned = connection.execute(update(MESSAGES).where(_owned(a.message_id, a.claim)).values(
            status="sent", provider=a.provider, provider_message_id=a.provider_message_id, sent_at=a.at,
            updated_at=a.at, error=None, claimed_until=None, retry_at=None)).rowcount
        if owned:
            recorded.add(a.message_id)
            record_event(session, account_id=a.account_id, subscriber_id=a.subscriber_id, name="sent", now=a.at,
                         message_id=a.message_id, source="platform")
    return recorded


def mark_deferred(session: Session, message_id: int, attempts: int, error: str, now: datetime,
                  retry_after: float | None = None, provider: str | None = None, in_doubt: bool = False,
                  claim: datetime | None = None) -> str:
    """Defer for a retry after backoff (``attempts`` tries so far). Returns the new
    status ("superseded" when ``claim`` no longer holds the row). ``in_doubt``:
    the provider may have taken it (its answer was lost), so the retry first waits
    for its events (sender.hold_in_doubt). A deferred message is never failed here:
    it expires when claimed ``RETRY_FOR`` after its first deferral (sender.prepare)."""
    delay = backoff(attempts)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    moved = session.execute(
        update(MESSAGES).where(_owned(message_id, claim)).values(
            status="deferred", retry_at=now + delay, error=error[:2000], claimed_until=now + delay,
            provider=provider, updated_at=now, deferred_since=func.coalesce(_COLUMNS.deferred_since, now),
            **({"in_doubt_since": now} if in_doubt else {})),
    ).rowcount  # type: ignore[attr-defined]
    return "deferred" if moved else SUPERSEDED


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
                 occurred_at=sent_at)
    return True


def mark_held(session: Session, message_id: int, reason: str, now: datetime, retry_after: float,
              claim: datetime | None = None) -> bool:
    """Put a claimed message back untried until ``now + retry_after``: a limit held
    it (rate, warming cap, no provider open), so the claim's attempt is returned and
    waiting can never use up its attempts."""
    until = now + timedelta(seconds=retry_after)
    return bool(session.execute(
        update(MESSAGES).where(_owned(message_id, claim)).values(
            status="deferred", retry_at=until, claimed_until=until, error=reason[:2000],
            attempts=_COLUMNS.attempts - 1, updated_at=now),
    ).rowcount)  # type: ignore[attr-defined]


def mark_failed(session: Session, message_id: int, error: str, now: datetime, provider: str | None = None,
                claim: datetime | None = None) -> bool:
    """Fail the message: the row ``claim`` holds, or without one any row not yet settled."""
    where = (_owned(message_id, claim) if claim is not None
             else and_(_COLUMNS.id == message_id, _COLUMNS.status.in_(("sending", "queued", "deferred"))))
    return bool(session.execute(update(MESSAGES).where(where).values(
        status="failed", error=error[:2000], claimed_until=None, retry_at=None, provider=provider, updated_at=now),
    ).rowcount)  # type: ignore[attr-defined]


def mark_suppressed(session: Session, message_id: int, reason: str, now: datetime) -> None:
    session.execute(
        update(MESSAGES).where(_owned(message_id)).values(
            status="suppressed", error=reason, claimed_until=None, retry_at=None, updated_at=now),
    )
