"""Erasing a subscriber: their rows, and every copy of their address elsewhere.

``delete_subscriber`` removes the person and, by cascade, their events, messages,
enrollments, scores and topic choices. What names them only in text is scrubbed
in the same transaction (audience.traces, and an import's per-row errors): a provider's raw event keeps its
provider id (so a replay is still recognised as a duplicate) but loses its
payload; a webhook step's call loses its payload and, if not yet made, is not
made; an event subscription's batch loses this person's events, and one left
empty and unsent is not sent. A suppression of the address is kept as its keyed
hash (core.address_hash) with no address, so the address stays suppressed when
it comes back; ``suppress`` also adds one when there was none (the person asked
never to be written to again).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from audience import traces
from audience.subscribers import delete_subscriber, get_subscriber
from core.address_hash import address_hash
from models import EventDelivery, InboundEvent, Job, Suppression, WebhookDelivery
from models.bulk import insert_ignoring_conflicts

ERASED = {"erased": True}
REASON = "erased"  # a suppression the erasure itself added
UNSENT = ("queued", "deferred", "sending")


def erase_subscriber(session: Session, account_id: int, subscriber_id: int, erasure_key: bytes, now: datetime,
                     suppress: bool) -> None:
    """Remove the subscriber and scrub every trace of them; SubscriberNotFoundError
    for another account's id. The caller commits."""
    person = get_subscriber(session, account_id, subscriber_id)
    address, hashed = person.email, address_hash(erasure_key, person.email)
    _scrub_inbound(session, account_id, person.id, address)
    _scrub_webhook_calls(session, account_id, person.id, address, now)
    _scrub_event_batches(session, account_id, person.id, address, now)
    _scrub_import_errors(session, account_id, address)
    _keep_suppressed_by_hash(session, account_id, address, hashed, now, suppress)
    delete_subscriber(session, account_id, subscriber_id)


def _scrub_inbound(session: Session, account_id: int, subscriber_id: int, address: str) -> None:
    ids = select(InboundEvent.id).where(traces.inbound_events(account_id, subscriber_id, address))
    session.execute(update(InboundEvent).where(InboundEvent.id.in_(ids))
                    .values(payload=ERASED, error=None, message_ref=None, message_key=None)
                    .execution_options(synchronize_session=False))


def _scrub_webhook_calls(session: Session, account_id: int, subscriber_id: int, address: str, now: datetime) -> None:
    for call in traces.find(session, WebhookDelivery, traces.webhook_deliveries(account_id, subscriber_id, address)):
        call.payload = ERASED
        call.url = _without(call.url, address)
        call.error = None
        if call.status in UNSENT:
            call.status, call.error, call.claimed_until = "failed", "erased before it was made", None


def _scrub_event_batches(session: Session, account_id: int, subscriber_id: int, address: str, now: datetime) -> None:
    for batch in traces.find(session, EventDelivery, traces.event_deliveries(account_id, address)):
        kept = [e for e in batch.payload.get("events", []) if e not in traces.events_of(batch.payload, subscriber_id)]
        batch.payload = {"events": kept}
        batch.event_count = len(kept)
        if not kept and batch.status in UNSENT:
            batch.status, batch.error, batch.claimed_until = "failed", "every event in it was erased", None


def _scrub_import_errors(session: Session, account_id: int, address: str) -> None:
    """An import's per-row errors may quote an address it refused."""
    for job in traces.find(session, Job, (Job.account_id == account_id) & traces.mentions(Job.errors, address)):
        job.errors = [_without(error, address) for error in job.errors]


def _keep_suppressed_by_hash(session: Session, account_id: int, address: str, hashed: str, now: datetime,
                             suppress: bool) -> None:
    listed = session.scalar(select(Suppression.reason).where(Suppression.account_id == account_id,
                                                             Suppression.email == address))
    session.execute(delete(Suppression).where(Suppression.account_id == account_id, Suppression.email == address))
    if listed is not None or suppress:
        insert_ignoring_conflicts(session, Suppression, [{"account_id": account_id, "email": None,
                                                          "email_hash": hashed, "reason": listed or REASON,
                                                          "created_at": now}], Suppression.id)


def _without(text: str, address: str) -> str:
    """``text`` with every spelling of ``address`` replaced (a call's URL may carry it)."""
    scrubbed = text
    for form in traces.spellings(address):
        start = scrubbed.lower().find(form)
        while start >= 0:
            scrubbed = scrubbed[:start] + "erased" + scrubbed[start + len(form):]
            start = scrubbed.lower().find(form)
    return scrubbed
