"""The suppression list as the account manages it: listing, adding by hand, removing.

A suppressed address is never sent to (``delivery.sender`` checks at send time).
Unsubscribes, hard bounces and complaints put addresses here on their own
(``delivery.unsubscribe``); these functions are the operator's side of it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, or_, select
from sqlalchemy.orm import Session

from audience.fields import address_key
from core.address_hash import address_hash, erasure_key
from delivery.unsubscribe import end_enrollments, suppress_address
from models import Subscriber, Suppression

# What an operator may record by hand: "manual", or a reason carried over from
# another platform's list when migrating.
MANUAL_REASONS = ("manual", "unsubscribed", "bounced", "complained")

# Erased addresses are listed by their keyed hash only (core.address_hash; audience.erasure).
_ERASED = select(Suppression.account_id, Suppression.email_hash).where(
    Suppression.email_hash.in_(bindparam("hashes", expanding=True)))


def erased_among(connection: Connection, addresses: set[str], secret_key: str) -> set[tuple[int, str]]:
    """(account, address) for each of ``addresses`` (in normal form, audience.fields)
    an erasure left suppressed by its hash: what a check of the suppression list by
    address must add (the sender's, in ``sender.prepare``)."""
    key = erasure_key(secret_key)
    by_hash = {address_hash(key, address): address for address in addresses}
    return {(a, by_hash[h]) for a, h in connection.execute(_ERASED, {"hashes": list(by_hash)})}


def suppressions_query(account_id: int, reason: str | None = None, email: str | None = None,
                       secret_key: str | None = None) -> Select[Any]:
    """The account's suppressions, newest first, optionally by reason or exact address
    (in any spelling: ``ADA@xn--bcher-kva.de`` finds ``ada@bücher.de``; with
    ``secret_key``, an erased address's entry too, by its hash)."""
    statement = select(Suppression).where(Suppression.account_id == account_id)
    if reason is not None:
        statement = statement.where(Suppression.reason == reason)
    if email is not None:
        key = address_key(email)
        match = Suppression.email == key
        if secret_key is not None:
            match = or_(match, Suppression.email_hash == address_hash(erasure_key(secret_key), key))
        statement = statement.where(match)
    return statement.order_by(Suppression.id.desc())


def add_suppression(session: Session, account_id: int, email: str, reason: str, now: datetime) -> tuple[Suppression, bool]:
    """Suppress ``email``, in its normal form (audience.fields.normalise_email, which
    the API's schema applies), and end its subscriber's running enrollments;
    returns the row and whether it is new. Adding an address that is already listed
    keeps its original reason and date."""
    created = suppress_address(session, account_id, email, reason, now)  # ON CONFLICT DO NOTHING: a race adds one row
    row = session.scalars(select(Suppression).where(Suppression.account_id == account_id,
                                                    Suppression.email == email)).one()
    subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.account_id == account_id,
                                                               Subscriber.email == email))
    if subscriber_id is not None:
        # Also when already listed: an enrollment started since must not keep running.
        end_enrollments(session, subscriber_id, "suppressed", now)
    return row, created


def remove_suppression(session: Session, account_id: int, suppression_id: int) -> bool:
    """Take an address off the list; False when the account has no such entry.

    This only lets sends happen again to a subscriber who is still ``active``. It
    does not resubscribe anyone: an unsubscribed (or bounced) subscriber keeps that
    status, and the sender refuses them on it, so consent is never restored by an
    operator deleting a row. Enrollments that were ended stay ended.
    """
    result = session.execute(delete(Suppression).where(Suppression.id == suppression_id,
                                                       Suppression.account_id == account_id))
    return bool(result.rowcount)
