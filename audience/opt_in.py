"""The public subscribe form and double opt-in.

An account's form (``/subscribe/<form_key>``) takes an address, a first name and
topics. What happens depends on the account's ``opt_in`` and on what the account
already knows of the address, but the answer to the person posting is always the
same, so the form never tells anyone whether an address is on the list:

- a new address, single opt-in, not on the suppression list: active at once, in
  the chosen topics (the caller fires the "subscriber created" trigger);
- a new address otherwise: a ``pending`` subscriber and a confirmation email;
- a known address (pending, active, unsubscribed): nothing changes now; a
  confirmation email is sent when there is something to confirm (not active yet,
  or topics they are not in). An unsubscribed or suppressed address is never
  reactivated without the reader's click;
- a bounced or complained address, or one suppressed for any reason but an
  unsubscribe: nothing at all (mailing it again would hurt the sender).

The confirmation email goes through the outbox like any other (a message with no
step; its content in ``meta``, built here, sent by delivery.confirmation). Its
link carries a token signed with SECRET_KEY (itsdangerous, as the tracking links,
with its own salt) naming the account, the subscriber, their address and the
topics, and expiring with ESEQ_OPT_IN_EXPIRY_HOURS: nothing about a pending
choice is stored but the subscriber row, which the beat job removes once that
time is up.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audience import fields as f
from audience.errors import AudienceError, InvalidSubscriberError
from audience.topics import join, subscriber_topics, topics_by_key
from core.address_hash import address_hash, erasure_key
from core.errors import InvalidFieldError
from models import Account, Message, Subscriber, Suppression, Topic

CONFIRMATION_KIND = "opt_in_confirmation"
# Subscribers in these statuses get nothing from the form: the address bounced, or
# its reader called our mail spam; mailing it again would hurt the sender.
NEVER_AGAIN = ("bounced", "complained")


def reachable_despite(suppression_reason: str | None) -> bool:
    """Whether a confirmation may go to an address suppressed for this reason (None:
    not suppressed). Only an unsubscribe can be undone, by the reader's own click;
    a bounce, a complaint or the operator's hand ("manual") cannot."""
    return suppression_reason is None or suppression_reason == "unsubscribed"
_SALT = "eseq-opt-in"


class FormNotFoundError(AudienceError):
    """No account has this form key."""


class ConfirmationError(AudienceError):
    """The confirmation link is not ours, has expired, or its subscriber is gone."""


@dataclass(frozen=True)
class Submission:
    """What was done with a form post. ``created_active``: a new subscriber made
    active at once (single opt-in), for the caller to fire the trigger.
    ``confirmation_id``: the confirmation message queued, for the caller to
    dispatch after commit."""

    created_active: int | None = None
    confirmation_id: int | None = None


def account_for_form(session: Session, form_key: str) -> Account:
    account = session.scalar(select(Account).where(Account.form_key == form_key)) if 0 < len(form_key) <= 32 else None
    if account is None:
        raise FormNotFoundError("No such form.")
    return account


def form_topics(session: Session, account_id: int) -> list[Topic]:
    """The topics a form offers: all the account's, by name."""
    return list(session.scalars(select(Topic).where(Topic.account_id == account_id).order_by(Topic.name, Topic.id)))


def clean_submission(session: Session, account_id: int, data: dict[str, Any]) -> tuple[str, str | None, list[int]]:
    """(address, first name, topic ids) from a form post; InvalidSubscriberError
    names every bad field (``email``, ``first_name``, ``topics.1``)."""
    errors: dict[str, list[str]] = {}
    email, first_name, topic_ids = "", None, []
    for name, clean in (("email", lambda: f.normalise_email(data.get("email"))),
                        ("first_name", lambda: f.clean_name(data.get("first_name") or None, "first_name")),
                        ("topics", lambda: list(topics_by_key(session, account_id, data.get("topics") or []).values()))):
        try:
            value = clean()
        except InvalidFieldError as exc:
            errors.setdefault(exc.field, []).append(exc.message)
            continue
        if name == "email":
            email = value
        elif name == "first_name":
            first_name = value
        else:
            topic_ids = value
    if errors:
        raise InvalidSubscriberError(errors)
    return email, first_name, topic_ids


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SALT)


def confirmation_token(secret_key: str, account_id: int, subscriber_id: int, email: str, topic_ids: list[int]) -> str:
    return str(_serializer(secret_key).dumps([account_id, subscriber_id, email, sorted(topic_ids)]))


def read_token(secret_key: str, token: str, max_age: timedelta, now: datetime) -> tuple[int, int, str, list[int]]:
    """The token's ``[account, subscriber, email, topics]``, or ConfirmationError
    when it is not ours or older than ``max_age`` at ``now``."""
    serializer = _serializer(secret_key)
    try:
        payload, signed_at = serializer.loads(token, return_timestamp=True)
    except SignatureExpired:
        raise ConfirmationError("This confirmation link has expired.") from None
    except BadSignature:
        raise ConfirmationError("This confirmation link is not valid.") from None
    if now - signed_at > max_age:
        raise ConfirmationError("This confirmation link has expired.")
    if (type(payload) is not list or len(payload) != 4 or not all(type(v) is int for v in payload[:2])
            or type(payload[2]) is not str or type(payload[3]) is not list
            or not all(type(v) is int for v in payload[3])):
        raise ConfirmationError("This confirmation link is not valid.")
    return payload[0], payload[1], payload[2], payload[3]


def _confirmation_content(account: Account, url: str) -> dict[str, str]:
    name = account.name
    subject = f"Please confirm your subscription to {name}"
    text = (f"Someone, we hope you, asked to receive email from {name} at this address.\n\n"
            f"To confirm, open this link:\n{url}\n\n"
            "If it was not you, ignore this email: without your confirmation you will not hear from us again.\n")
    html = (f"<p>Someone, we hope you, asked to receive email from {escape(name)} at this address.</p>"
            f'<p><a href="{escape(url)}">Confirm my subscription</a></p>'
            "<p>If it was not you, ignore this email: without your confirmation you will not hear from us again.</p>")
    return {"subject": subject, "text": text, "html": html}


def _queue_confirmation(session: Session, account: Account, subscriber: Subscriber, topic_ids: list[int],
                        secret_key: str, base_url: str, now: datetime) -> int:
    token = confirmation_token(secret_key, account.id, subscriber.id, subscriber.email, topic_ids)
    content = _confirmation_content(account, f"{base_url}/subscribe/confirm/{token}")
    message = Message(account_id=account.id, subscriber_id=subscriber.id, to_email=subscriber.email,
                      idempotency_key=f"opt-in:{subscriber.id}:{secrets.token_hex(8)}", status="queued",
                      subject=content["subject"][:998], meta={"kind": CONFIRMATION_KIND, **content},
                      created_at=now, updated_at=now)
    session.add(message)
    session.flush()
    return message.id


def _new_subscriber(session: Session, account_id: int, email: str, first_name: str | None, status: str,
                    now: datetime) -> Subscriber | None:
    """The new row, or None when a concurrent post inserted the address first (the
    unique key), inside a savepoint so the rest of the transaction stands."""
    subscriber = Subscriber(account_id=account_id, email=email, first_name=first_name, status=status,
                            attributes={}, tags=[], created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(subscriber)
    except IntegrityError:
        return None
    return subscriber


def submit(session: Session, account: Account, data: dict[str, Any], now: datetime, *, secret_key: str,
           base_url: str) -> Submission:
    """Act on a form post as the module's docstring says; ``base_url`` is where the
    confirmation link points (PUBLIC_BASE_URL)."""
    email, first_name, topic_ids = clean_submission(session, account.id, data)
    key = f.address_key(email)
    suppressed = session.scalar(select(Suppression.reason).where(Suppression.account_id == account.id,
                                                                 Suppression.email == key))
    # An erased address is on the list by its keyed hash only (core.address_hash), and
    # stays suppressed whatever the reason it was listed for: the form gets nothing.
    erased = session.scalar(select(Suppression.id).where(
        Suppression.account_id == account.id, Suppression.email_hash == address_hash(erasure_key(secret_key), key)))
    if erased is not None or not reachable_despite(suppressed):
        return Submission()
    subscriber = session.scalar(select(Subscriber).where(Subscriber.account_id == account.id,
                                                         Subscriber.email == email))
    if subscriber is None:
        active = account.opt_in == "single" and suppressed is None
        subscriber = _new_subscriber(session, account.id, email, first_name, "active" if active else "pending", now)
        if subscriber is None:  # a twin post made it a moment ago: answer as for a known address
            return Submission()
        if active:
            join(session, account.id, [subscriber.id], topic_ids, now, rejoin=False)
            return Submission(created_active=subscriber.id)
    elif subscriber.status in NEVER_AGAIN:
        return Submission()
    elif subscriber.status == "active":
        joined = {row["id"] for row in subscriber_topics(session, account.id, subscriber.id, status="subscribed")}
        if set(topic_ids) <= joined:
            return Submission()  # nothing to confirm: already in all of them
    return Submission(confirmation_id=_queue_confirmation(session, account, subscriber, topic_ids, secret_key,
                                                          base_url, now))


def confirm(session: Session, token: str, now: datetime, *, secret_key: str,
            max_age: timedelta) -> tuple[Subscriber, bool]:
    """Make the token's subscriber active and put them in its topics; returns the
    subscriber and whether they were pending (new, for the caller's trigger).
    Confirming twice changes nothing more. An address suppressed because it
    unsubscribed comes off the list: this click is the consent it lacked."""
    account_id, subscriber_id, email, topic_ids = read_token(secret_key, token, max_age, now)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.id == subscriber_id,
                                                         Subscriber.account_id == account_id))
    if subscriber is None or subscriber.email != email or subscriber.status in NEVER_AGAIN:
        raise ConfirmationError("This confirmation link is no longer valid.")
    was_pending = subscriber.status == "pending"
    if subscriber.status != "active":
        subscriber.status = "active"
        subscriber.updated_at = now
    session.execute(delete(Suppression).where(Suppression.account_id == account_id,
                                              Suppression.email == f.address_key(email),
                                              Suppression.reason == "unsubscribed"))
    existing = set(session.scalars(select(Topic.id).where(Topic.account_id == account_id, Topic.id.in_(topic_ids))))
    join(session, account_id, [subscriber.id], existing, now, rejoin=True)
    session.flush()
    return subscriber, was_pending


def expire_pending(session: Session, now: datetime, older_than: timedelta) -> int:
    """Delete the pending subscribers who did not confirm within ``older_than``
    (their confirmation messages go with them); returns how many."""
    result = session.execute(delete(Subscriber).where(Subscriber.status == "pending",
                                                      Subscriber.created_at < now - older_than)
                             .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
