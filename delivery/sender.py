"""Sending a batch of outbox messages in three phases, so no row lock is ever held
across network I/O:

1. ``prepare`` (one transaction): claim the rows, check suppression and the
   subscriber's status, render each email with its tracking links.
2. ``deliver`` (no transaction): hand each message to the account's providers in
   failover order (delivery.routing), reusing one connection per provider for the
   whole batch, yielding each outcome as it comes.
3. ``record`` (right after each send, while the next one goes out): write the
   outcome with a conditional UPDATE. The send worker's threads share these
   transactions (delivery.group_commit): one commit carries every outcome that
   arrived while the previous one ran, and a thread waits for its last outcome's
   commit before it sends the message after next.

A crash between a provider's acceptance and that record leaves the row
``sending``; when its lease runs out the tick dispatches it again, marked in
doubt. That window is the one place a duplicate can come from. Recording as it
goes keeps it to two messages per sending thread, for about one commit's time,
rather than a batch's I/O. Where the account's providers report events back to us, a
message in doubt waits (``hold_in_doubt``) for an event carrying its key, which
reconciles the row to ``sent`` (inbound.store); only without one is it resent.
Over plain SMTP nothing reports back, so it is resent at once. The Message-ID is
derived from the outbox key, so a duplicate can be recognised downstream. A send
whose answer was lost after the whole message went out (UnconfirmedDeliveryError)
is in the same doubt without any crash: it is deferred marked in doubt, not failed
over, and waits the same way at its retry.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select
from sqlalchemy.orm import Session

from analytics.events import record_event, record_message_event
from audience.fields import address_key
from audience.topics import members_of
from content.compliance import add_unsubscribe_footer, is_transactional
from content.render import TemplateRenderError, render_email, subscriber_context
from delivery import confirmation, outbox
from delivery.circuits import record_tries
from delivery.dkim import DkimKey, account_key, sign_message
from delivery.errors import DeliveryError, HeldError, TransientDeliveryError, UnconfirmedDeliveryError
from delivery.routing import Failover, Route, Try, Upcoming
from delivery.suppressions import erased_among
from delivery.mime import Envelope, MessageBuildError, build_message
from delivery.pacing import MAX_WAIT_SECONDS
from delivery.providers import WEBHOOK_FIELDS
from delivery.providers.http import DEFAULT_TIMEOUT as HTTP_TIMEOUT
from delivery.smtp import SmtpConfig
from delivery.tracking import Tracker
from delivery.unsubscribe import bounce_by_message
from models import Account, Broadcast, Sequence, Step, Subscriber, Suppression, Template
from models.base import utcnow


log = logging.getLogger(__name__)


@dataclass
class Outgoing:
    message_id: int
    account_id: int
    subscriber_id: int
    attempts: int
    key: str
    sender: str
    recipient: str
    email: EmailMessage
    lease_until: datetime
    in_doubt_since: datetime | None = None


@dataclass
class Outcome:
    message_id: int
    account_id: int
    subscriber_id: int
    attempts: int
    provider: str
    provider_message_id: str | None = None
    error: DeliveryError | None = None
    tries: list[Try] = field(default_factory=list)
    at: datetime = field(default_factory=utcnow)  # when it happened, on the batch's (injectable) clock
    claim: datetime | None = None  # the claim's lease: the record lands only while it still holds the row


@dataclass(frozen=True)
class SenderIdentity:
    """Fallback From when an account has none (FROM_EMAIL / FROM_NAME), and the
    platform's DKIM key (DKIM_*) when one is configured."""

    email: str | None
    name: str | None
    dkim: DkimKey | None = None


def _content(session: Session, account_id: int, email: dict[str, Any], variant: str | None) -> tuple[str, str | None, str | None]:
    """Subject and bodies for a step's config (or a broadcast's): its template,
    overridden by its own fields, overridden by the chosen variant's."""
    config = dict(email)
    if config.get("template_id"):
        template = session.get(Template, config["template_id"])
        if template is not None and template.account_id == account_id:
            config = {"subject": template.subject, "html": template.html, "text": template.text, **{
                k: v for k, v in config.items() if k in ("subject", "html", "text") and v}}
    for option in config.get("variants") or []:
        if option.get("name") == variant:
            config.update({k: v for k, v in option.items() if k in ("subject", "html", "text") and v})
    return config.get("subject") or "", config.get("html"), config.get("text")


# What sending reads of each row a batch shares, as plain rows: a subscriber as
# rendering sees it (content.render.subscriber_context), a step's content, a
# sequence's settings, an account's sender details.
SUBSCRIBER_COLUMNS = (Subscriber.id, Subscriber.email, Subscriber.first_name, Subscriber.last_name, Subscriber.timezone,
                      Subscriber.attributes, Subscriber.tags, Subscriber.status)
STEP_COLUMNS = (Step.id, Step.sequence_id, Step.config)
SEQUENCE_COLUMNS = (Sequence.id, Sequence.settings)
# A broadcast's content and whether it may still go (a cancelled one sends nothing more).
BROADCAST_COLUMNS = (Broadcast.id, Broadcast.account_id, Broadcast.status, Broadcast.topic, Broadcast.subject,
                     Broadcast.html, Broadcast.text, Broadcast.template_id, Broadcast.variants)
ACCOUNT_COLUMNS = (Account.id, Account.from_email, Account.from_name, Account.postal_address,
                   Account.dkim_selector, Account.dkim_domain, Account.dkim_private_key)


@lru_cache(maxsize=8)
def _select_by_id(columns: tuple[Any, ...]) -> Any:
    # Built once per shape: building a select with IN cost more than running it.
    return select(*columns).where(columns[0].in_(bindparam("ids", expanding=True)))


def _by_id(connection: Connection, columns: tuple[Any, ...], ids: set[Any]) -> dict[int, Row[Any]]:
    return {row.id: row for row in connection.execute(_select_by_id(columns), {"ids": list(ids)})}


_SUPPRESSED = select(Suppression.account_id, Suppression.email).where(
    Suppression.email.in_(bindparam("emails", expanding=True)))


def prepare(session: Session, ids: list[int], now: datetime, tracker: Tracker,
            fallback: SenderIdentity, lease: timedelta = outbox.SEND_LEASE,
            retry_for: timedelta = outbox.RETRY_FOR, owner: str | None = None) -> list[Outgoing]:
    """Claim (for ``owner``, the worker's id: outbox.claim_for_send) and render; rows
    that must not be sent are settled here (among them messages deferred for longer
    than ``retry_for``, which expire).

    What the messages of a batch share (steps, sequences, accounts, a step's
    content) is loaded once per batch; messages come back from the claim itself
    and subscribers as plain rows: per-object ORM work, not the queries, was
    most of this function's time."""
    messages = outbox.claim_for_send(session, ids, now, lease, owner)
    if not messages:
        return []
    connection = session.connection()  # plain rows throughout: the ORM's per-statement cost was most of prepare
    subscribers = _by_id(connection, SUBSCRIBER_COLUMNS, {m.subscriber_id for m in messages})
    # Compared in normal form (audience.fields): a row an older version stored in
    # another spelling (a punycode domain) still stops or is stopped by its address.
    recipients = {m.to_email: address_key(m.to_email) for m in messages}
    suppressed = {(a, address_key(e)) for a, e in connection.execute(
        _SUPPRESSED, {"emails": list(recipients.keys() | set(recipients.values()))})}
    erased = erased_among(connection, set(recipients.values()), tracker.secret_key)
    suppressed |= erased
    steps = _by_id(connection, STEP_COLUMNS, {m.step_id for m in messages})
    sequences = _by_id(connection, SEQUENCE_COLUMNS, {s.sequence_id for s in steps.values()})
    accounts = _by_id(connection, ACCOUNT_COLUMNS, {m.account_id for m in messages})
    # Only a batch holding broadcast messages reads broadcasts: the sequences' path pays one set.
    broadcast_ids = {m.broadcast_id for m in messages if m.broadcast_id is not None}
    broadcasts = _by_id(connection, BROADCAST_COLUMNS, broadcast_ids) if broadcast_ids else {}
    # An account's own key (signing for its domain is what makes From its domain pass
    # DMARC alignment), else the platform's, else none.
    signing = {account_id: account_key(row) or fallback.dkim for account_id, row in accounts.items()}
    contents: dict[tuple[int, int, str | None], tuple[str, str | None, str | None]] = {}
    confirmations = confirmation.confirmation_contents(
        session, [m.id for m in messages if m.step_id is None and m.broadcast_id is None])
    topic_members = _topic_members(session, messages, steps, sequences, broadcasts)
    outgoing: list[Outgoing] = []
    for message in messages:
        subscriber = subscribers.get(message.subscriber_id)
        if message.crashes >= outbox.MAX_CRASHES:
            outbox.mark_failed(session, message.id, f"abandoned: its worker died {message.crashes} times sending it", now)
            continue
        if message.deferred_since is not None and now - message.deferred_since >= retry_for:
            outbox.mark_failed(session, message.id, f"expired: no provider took it within {_hours(retry_for)} of its "
                                                    f"first failed try; the last error: {message.error}", now)
            continue
        if message.id in confirmations:
            if (message.account_id, recipients[message.to_email]) in erased:  # erased stays suppressed, even from a form
                outbox.mark_suppressed(session, message.id, "address on the suppression list", now)
                continue
            built = _confirmation_email(session, message, confirmations[message.id], subscriber,
                                        accounts.get(message.account_id), tracker, fallback, signing, now)
            if built is not None:
                outgoing.append(Outgoing(message.id, message.account_id, message.subscriber_id, message.attempts,
                                         message.idempotency_key, built[1], message.to_email, built[0],
                                         now + lease, message.in_doubt_since))
            continue
        if subscriber is None or subscriber.status != "active":
            outbox.mark_suppressed(session, message.id, f"subscriber {subscriber.status if subscriber else 'deleted'}", now)
            continue
        if (message.account_id, recipients[message.to_email]) in suppressed:
            outbox.mark_suppressed(session, message.id, "address on the suppression list", now)
            continue
        broadcast = broadcasts.get(message.broadcast_id) if message.broadcast_id is not None else None
        step = steps.get(message.step_id) if message.step_id else None
        if broadcast is not None and broadcast.status == "cancelled":
            outbox.mark_suppressed(session, message.id, "broadcast cancelled", now)
            continue
        if step is None and broadcast is None:
            outbox.mark_failed(session, message.id, "the step this email belonged to was removed", now)
            continue
        sequence = sequences.get(step.sequence_id) if step is not None else None
        topic = _topic_of(message, steps, sequences, broadcasts)
        if topic and message.subscriber_id not in topic_members.get((message.account_id, topic), ()):
            outbox.mark_suppressed(session, message.id, f"subscriber not in the topic {topic!r}", now)
            continue
        account = accounts.get(message.account_id)
        from_email = (account.from_email if account else None) or fallback.email
        if not from_email:
            outbox.mark_failed(session, message.id, "no sender address: set the account's from_email or FROM_EMAIL", now)
            continue
        unsubscribe_url = tracker.unsubscribe_url(message.account_id, message.id)
        try:
            key = (message.account_id, step.id if step else -message.broadcast_id, message.variant)
            if key not in contents:
                contents[key] = _content(session, message.account_id, step.config if step else _broadcast_email(broadcast),
                                         message.variant)
            subject, html, text = contents[key]
            rendered = render_email(subject, html, text, subscriber_context(subscriber, {"unsubscribe_url": unsubscribe_url}))
            # A broadcast is marketing mail: always the footer and List-Unsubscribe.
            transactional = step is not None and is_transactional(sequence.settings if sequence else None)
            if not transactional:
                # Before the tracking rewrite, which leaves links to the unsubscribe page alone.
                rendered = add_unsubscribe_footer(rendered, unsubscribe_url, account.postal_address if account else None)
            envelope = Envelope(
                from_email=from_email, from_name=(account.from_name if account else None) or fallback.name,
                to_email=message.to_email, subject=rendered.subject,
                html=tracker.rewrite_html(rendered.html, message.account_id, message.id) if rendered.html else None,
                text=rendered.text, unsubscribe_url=unsubscribe_url,
                unsubscribe_mailto=tracker.unsubscribe_mailto(message.account_id, message.id, from_email),
                message_key=message.idempotency_key,
                transactional=transactional,
            )
            email = build_message(envelope, now)
            dkim_key = signing.get(message.account_id, fallback.dkim)
            if dkim_key is not None:
                sign_message(email, dkim_key)
        except (TemplateRenderError, MessageBuildError) as exc:
            outbox.mark_failed(session, message.id, f"cannot render: {exc}", now)
            continue
        except Exception as exc:  # noqa: BLE001 - any other failure of one email must not sink its batch
            # (a lone surrogate the template produced fails the encoding, say): it
            # would roll back the whole claim, and the sweep would hand the same
            # batch, attempts uncounted, to a worker again and again.
            log.warning("email cannot be built", extra={"message_id": message.id, "error": type(exc).__name__})
            outbox.mark_failed(session, message.id, f"cannot build this email: {type(exc).__name__}: {exc}"[:500], now)
            continue
        outgoing.append(Outgoing(message.id, message.account_id, message.subscriber_id, message.attempts,
                                 message.idempotency_key,
                                 from_email, message.to_email, email, now + lease, message.in_doubt_since))
    return outgoing


def _topic_of(message: Row[Any], steps: dict[int, Row[Any]], sequences: dict[int, Row[Any]],
              broadcasts: dict[int, Row[Any]]) -> str | None:
    """The topic a message was sent for: its sequence's ``settings.topic`` or its
    broadcast's audience topic (a reader who left it since must not get it)."""
    if message.broadcast_id is not None:
        broadcast = broadcasts.get(message.broadcast_id)
        return broadcast.topic if broadcast is not None else None
    step = steps.get(message.step_id) if message.step_id else None
    sequence = sequences.get(step.sequence_id) if step is not None else None
    return (sequence.settings or {}).get("topic") if sequence is not None else None


def _topic_members(session: Session, messages: list[Row[Any]], steps: dict[int, Row[Any]],
                   sequences: dict[int, Row[Any]], broadcasts: dict[int, Row[Any]]) -> dict[tuple[int, str], set[int]]:
    """(account, topic key) -> who is still in it, for the batch's messages from
    sequences or broadcasts that target a topic: one query per topic, none for the usual batch."""
    asked: dict[tuple[int, str], set[int]] = {}
    for message in messages:
        topic = _topic_of(message, steps, sequences, broadcasts)
        if topic:
            asked.setdefault((message.account_id, topic), set()).add(message.subscriber_id)
    return {(account_id, topic): members_of(session, account_id, topic, ids)
            for (account_id, topic), ids in asked.items()}


def _confirmation_email(session: Session, message: Row[Any], meta: dict[str, Any], subscriber: Row[Any] | None,
                        account: Row[Any] | None, tracker: Tracker, fallback: SenderIdentity,
                        signing: dict[int, DkimKey | None], now: datetime) -> tuple[EmailMessage, str] | None:
    """A double opt-in confirmation built (delivery.confirmation) and its sender, or
    None once its row is settled: refused, or unbuildable."""
    refused = confirmation.refusal(session, message.account_id, message.to_email, subscriber)
    if refused is not None:
        outbox.mark_suppressed(session, message.id, refused, now)
        return None
    from_email = (account.from_email if account else None) or fallback.email
    if not from_email:
        outbox.mark_failed(session, message.id, "no sender address: set the account's from_email or FROM_EMAIL", now)
        return None
    try:
        email = build_message(confirmation.envelope(
            meta, message, from_email, (account.from_name if account else None) or fallback.name,
            tracker.unsubscribe_url(message.account_id, message.id),
            tracker.unsubscribe_mailto(message.account_id, message.id, from_email)), now)
    except MessageBuildError as exc:
        outbox.mark_failed(session, message.id, f"cannot build this email: {exc}"[:500], now)
        return None
    dkim_key = signing.get(message.account_id, fallback.dkim)
    if dkim_key is not None:
        sign_message(email, dkim_key)
    return email, from_email


def _broadcast_email(broadcast: Row[Any]) -> dict[str, Any]:
    """A broadcast's content in an email step's config shape, for ``_content``."""
    return {"subject": broadcast.subject, "html": broadcast.html, "text": broadcast.text,
            "template_id": broadcast.template_id, "variants": broadcast.variants or []}


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} hours" if hours != 1 else "1 hour"


def reports_events(route: Route, platform_webhooks: dict[str, dict[str, str]]) -> bool:
    """Whether the provider's events can reach us: its webhook can be verified,
    with every key its inbound parser needs (delivery.providers.WEBHOOK_FIELDS; a
    kind with none, SMTP, reports nothing) set on the provider row or, for the
    single-tenant URL, in the environment."""
    keys = WEBHOOK_FIELDS.get(route.kind)
    if not keys:
        return False
    platform = platform_webhooks.get(route.kind, {})
    return all(route.config.get(key) or platform.get(key) for key in keys)


def hold_in_doubt(session: Session, outgoing: list[Outgoing], routes: dict[int, list[Route]], now: datetime,
                  grace: timedelta, platform_webhooks: dict[str, dict[str, str]]) -> list[Outgoing]:
    """Hold back messages a dead worker may already have handed to a provider that
    reports events, until ``grace`` after the doubt arose, so such an event can
    reconcile them; returns the ones to send now."""
    ready = []
    for item in outgoing:
        since = item.in_doubt_since
        waiting = since is not None and now < since + grace and any(
            reports_events(r, platform_webhooks) for r in routes.get(item.account_id, []))
        if waiting:
            outbox.mark_held(session, item.message_id, "its worker stopped mid-send: waiting for the provider's "
                             "events before sending again", now, (since + grace - now).total_seconds())
        else:
            ready.append(item)
    return ready


SMTP_TIMEOUT = SmtpConfig.timeout


def send_budget(routes: list[Route], cap: timedelta) -> timedelta:
    """The longest sending one message through ``routes`` may take: each provider's
    timeout (twice over SMTP, whose envelope and content each wait for an answer)
    plus the rate limiter's longest wait, at most ``cap``."""
    seconds = MAX_WAIT_SECONDS
    for route in routes:
        timeout = route.config.get("timeout") or (SMTP_TIMEOUT if route.kind == "smtp" else HTTP_TIMEOUT)
        seconds += float(timeout) * (2 if route.kind == "smtp" else 1)
    return min(timedelta(seconds=seconds), cap)


def deliver(outgoing: list[Outgoing], failover: Failover, routes: dict[int, list[Route]],
            clock: Callable[[], datetime] = utcnow, lease: timedelta = outbox.SEND_LEASE) -> Iterator[Outcome]:
    """Send each message through its account's providers, yielding its outcome at
    once so the caller records it as the next one goes out; one failure never stops
    the batch.

    A message is sent only while its claim will outlast the send: once less of
    its lease is left than sending could take (``send_budget``, at most half the
    lease), the sweep could hand it to another worker mid-send, and both would
    send it. Such a message is put back untried (held, at no cost in attempts) for
    the next batch."""
    budgets = {account_id: send_budget(account_routes, lease / 2) for account_id, account_routes in routes.items()}
    for index, item in enumerate(outgoing):
        if clock() + budgets.get(item.account_id, timedelta(0)) >= item.lease_until:
            yield Outcome(item.message_id, item.account_id, item.subscriber_id, item.attempts, "none",
                          error=HeldError("its claim ran short before it could be sent", retry_after=1.0),
                          at=clock(), claim=item.lease_until)
            continue
        tries: list[Try] = []
        accepted_id: str | None = None
        after = outgoing[index + 1] if index + 1 < len(outgoing) else None
        upcoming = None if after is None else Upcoming(routes.get(after.account_id, []), after.email, after.sender,
                                                       after.recipient, after.key)
        for attempt, provider_message_id in failover.send(routes.get(item.account_id, []), item.email, item.sender,
                                                          item.recipient, item.key, upcoming):
            tries.append(attempt)
            accepted_id = provider_message_id
        last = tries[-1] if tries else Try(None, "none", TransientDeliveryError("no provider configured"))
        if last.error is None:
            yield Outcome(item.message_id, item.account_id, item.subscriber_id, item.attempts, last.provider,
                          provider_message_id=accepted_id, tries=tries, at=clock(), claim=item.lease_until)
            continue
        errors = [t.error for t in tries if t.error is not None]
        hints = [e.retry_after for e in errors if e.retry_after is not None]
        summary = "; ".join(f"{t.provider}: {t.error}" for t in tries)
        error = last.error
        if any(e.throttled for e in errors) and all(e.throttled or isinstance(e, HeldError) for e in errors):
            # Every provider tried asked us to slow down or was held by a limit
            # (a warming cap): the message did nothing wrong, so it waits like a
            # held one and keeps all its attempts.
            error = HeldError(f"throttled: {summary}", retry_after=max(min(hints) if hints else 60.0, 1.0))
        elif not error.permanent and len(errors) > 1:
            kind = UnconfirmedDeliveryError if error.in_doubt else TransientDeliveryError
            error = kind(summary, retry_after=min(hints) if hints else None)
        yield Outcome(item.message_id, item.account_id, item.subscriber_id, item.attempts, last.provider,
                      error=error, tries=tries, at=clock(), claim=item.lease_until)


def record(session: Session, outcomes: list[Outcome]) -> list[str]:
    """Write each outcome at its own time; returns the resulting status of each
    (``superseded`` when the claim no longer held the row: see outbox._owned).

    Acceptances, the common case, are written together, rows and ``sent`` events
    in one statement (outbox.mark_sent); a refusal or a deferral is rare and
    written on its own."""
    statuses: list[str] = []
    accepted: list[outbox.Accepted] = []
    record_tries(session, [(t, o.at) for o in outcomes for t in o.tries])
    for outcome in outcomes:
        now, claim = outcome.at, outcome.claim
        if outcome.error is None:
            accepted.append(outbox.Accepted(outcome.message_id, outcome.account_id, outcome.subscriber_id,
                                            outcome.provider, outcome.provider_message_id or "", now, claim))
            status = "sent"
        elif isinstance(outcome.error, HeldError):
            held = outbox.mark_held(session, outcome.message_id, str(outcome.error), now,
                                    outcome.error.retry_after or 60.0, claim)
            status = "held" if held else outbox.SUPERSEDED
        elif outcome.error.permanent:
            if outbox.mark_failed(session, outcome.message_id, str(outcome.error), now, outcome.provider, claim):
                if outcome.error.suppresses:  # the mailbox does not exist: never try this address again
                    bounce_by_message(session, outcome.message_id, str(outcome.error), now)
                else:  # this message was refused (its size, its content); the address stays
                    record_message_event(session, outcome.message_id, "rejected", now,
                                         properties={"error": str(outcome.error)[:500]}, source="smtp")
                status = "failed"
            else:
                status = outbox.SUPERSEDED
        else:
            status = outbox.mark_deferred(session, outcome.message_id, outcome.attempts, str(outcome.error), now,
                                          outcome.error.retry_after, outcome.provider, in_doubt=outcome.error.in_doubt,
                                          claim=claim)
            if status == "deferred":  # one event a try, in the vocabulary providers' deferrals use too
                record_event(session, account_id=outcome.account_id, subscriber_id=outcome.subscriber_id,
                             name="deferred", now=now, message_id=outcome.message_id, source="platform",
                             dedup_key=f"deferred:{outcome.message_id}:{outcome.attempts}",
                             properties={"error": str(outcome.error)[:500], "provider": outcome.provider})
        statuses.append(status)
    recorded = outbox.mark_sent(session, accepted)
    return [outbox.SUPERSEDED if status == "sent" and outcome.message_id not in recorded else status
            for status, outcome in zip(statuses, outcomes, strict=True)]
