"""One send batch from start to end, as the send task runs it: claim and render in
one transaction (delivery.sender.prepare), hold what must wait (a message in doubt,
a provider being warmed past today's share), send the rest through each account's
providers in failover order, and record each outcome while the next one is sent.

The caller passes ``start_recording``, which hands an outcome to the send worker's
group commit (delivery.group_commit) and returns at once; before a thread sends
the message after next, its last outcome but one is committed, so at most two of
its messages at a time can be taken by a provider and not yet recorded.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.netguard import host_check
from delivery import dev_mailbox
from delivery.circuits import load_routes, reserve_sends
from delivery.dkim import DkimKey
from delivery.group_commit import Recording
from delivery.pacing import Pacer
from delivery.providers import build_transport as build_provider_transport
from delivery.routing import Failover, Gate, Route, Transport
from delivery.sender import Outcome, Outgoing, SenderIdentity, deliver, hold_in_doubt, prepare, record
from delivery.tracking import Tracker
from models.base import utcnow
from models import db
from models.db import session_scope
from settings import Settings
from warming.quota import WarmingGate, engaged_recipients, load_plans


def default_route(s: Settings) -> Route | None:
    """The SMTP provider from the environment (SMTP_HOST...), for accounts with no
    providers of their own: on `make run`'s bare default the development catcher
    (delivery.dev_mailbox); None when neither is configured."""
    if not s.smtp_host:
        return dev_mailbox.route(s.dev_smtp_port) if s.dev_smtp_port else None
    return Route(provider_id=None, name="smtp", kind="smtp", config={
        "host": s.smtp_host, "port": s.smtp_port, "username": s.smtp_username, "password": s.smtp_password,
        "use_tls": s.smtp_use_tls, "use_ssl": s.smtp_port == 465})


def sender_identity(s: Settings) -> SenderIdentity:
    """FROM_EMAIL/FROM_NAME and the platform's DKIM key, as configured."""
    dkim = None
    if s.dkim_selector and s.dkim_domain and s.dkim_private_key:
        dkim = DkimKey(s.dkim_selector, s.dkim_domain, s.dkim_private_key)
    return SenderIdentity(s.from_email, s.from_name, dkim)


def build_transport(route: Route, allow_private: bool = False) -> Transport:
    """An account's provider has the SSRF guard check each connection it makes
    (ESEQ_WEBHOOK_ALLOW_PRIVATE lets it reach private addresses); the
    environment's (provider_id None) is the operator's own and is trusted."""
    check = None if route.provider_id is None else host_check(allow_private)
    return build_provider_transport(route.kind, route.config, route.name, check)  # type: ignore[no-any-return]


def send_batch(message_ids: list[int], s: Settings,
               start_recording: Callable[[Outcome], Recording[Outcome, str]],
               clock: Callable[[], datetime] = utcnow, owner: str | None = None) -> dict[str, int]:
    """Send what is still sendable among ``message_ids``; returns counts by
    resulting status (``held`` for messages put back before any attempt), once
    every outcome is committed. ``clock`` lets tests move time; ``owner`` is the
    worker's id its claims carry (core.liveness)."""
    now = clock()
    lease = timedelta(seconds=s.lease_seconds)
    with session_scope() as session:
        outgoing = prepare(session, message_ids, now, Tracker(s.secret_key, s.public_base_url, s.unsubscribe_domain),
                           sender_identity(s),
                           lease=lease, retry_for=timedelta(hours=s.retry_hours), owner=owner)
        routes = load_routes(session, {o.account_id for o in outgoing}, default_route(s)) if outgoing else {}
        ready = hold_in_doubt(session, outgoing, routes, now, timedelta(seconds=s.reconcile_seconds),
                              s.provider_webhooks)
        clock_running = _moving(now)
        warming = warming_gate(session, ready, routes, clock_running)
    held = len(outgoing) - len(ready)
    counts: dict[str, int] = {"held": held} if held else {}
    if warming is not None:  # the most engaged go first, so they take the day's early slots
        ready.sort(key=lambda o: o.recipient.lower() not in warming.engaged)
    gates: list[Gate] = [warming] if warming is not None else []
    failover = Failover(lambda route: build_transport(route, s.webhook_allow_private), now,
                        gates + [Pacer(reserve_sends_now, clock_running)])
    recordings: deque[Recording[Outcome, str]] = deque()
    in_flight = RECORDS_IN_FLIGHT if s.send_while_recording else 0

    def tally(recording: Recording[Outcome, str]) -> None:
        status = recording.result()
        counts[status] = counts.get(status, 0) + 1

    try:
        for outcome in deliver(ready, failover, routes, clock=clock, lease=lease):
            recordings.append(start_recording(outcome))
            while len(recordings) > in_flight:
                tally(recordings.popleft())
    finally:
        failover.close()
    while recordings:
        tally(recordings.popleft())
    return counts


def run_in_transaction(work: Callable[[Session], Any]) -> Any:
    """``work`` in a transaction of its own, committed on return: what recording
    outcomes, booking rate slots and the warming gate's reservations each need."""
    with session_scope() as session:
        return work(session)


# Outcomes a send thread may have on their way to the database while it sends the
# next message: one, so the commit overlaps the next send. A worker killed
# mid-batch may thus leave two messages per thread taken by the provider and not
# recorded (docs/architecture.md, "the one duplicate window"); ESEQ_SEND_WHILE_RECORDING=false
# makes it none, and the window one message a thread.
RECORDS_IN_FLIGHT = 1

# Waits between tries of a group's record when the database drops out (seconds):
# about half a minute in all, as long as PostgreSQL takes to restart or fail over,
# and far inside a claim's lease (ESEQ_LEASE_SECONDS, 300 s by default).
RECORD_RETRY_WAITS = (0.2, 1.0, 3.0, 8.0, 15.0)


def record_outcomes(outcomes: list[Outcome]) -> list[str]:
    """A group of outcomes in one transaction (the group commit's writer).

    A database blip is tried again: until these outcomes are recorded the
    messages stay ``sending``, and after their lease one the provider took
    would be sent again. Trying again is safe because every write checks its
    claim: after a commit whose answer was lost, the retry changes nothing."""
    for wait in RECORD_RETRY_WAITS:
        try:
            return _record(outcomes)
        except OperationalError:
            time.sleep(wait)
    return _record(outcomes)


def _record(outcomes: list[Outcome]) -> list[str]:
    """The usual group, every message taken at the first try, is written in one
    round trip: on PostgreSQL its acceptances and their events are one statement
    (outbox.mark_sent), and the providers' success stamps that may precede it
    are idempotent, so neither needs a transaction around it. Anything else
    (a refusal, a failover, a deferral) is written in one transaction."""
    if _accepted_first_time(outcomes) and db.get_engine().dialect.name == "postgresql":
        with db.autocommit_scope() as session:
            return record(session, outcomes)
    return run_in_transaction(lambda session: record(session, outcomes))  # type: ignore[no-any-return]


def _accepted_first_time(outcomes: list[Outcome]) -> bool:
    return all(o.error is None and all(t.error is None for t in o.tries) for o in outcomes)


def warming_gate(session: Session, outgoing: list[Outgoing], routes: dict[int, list[Route]],
                 clock: Callable[[], datetime]) -> WarmingGate | None:
    """The batch's warming gate, when any of its providers is being warmed."""
    provider_ids = {r.provider_id for o in outgoing for r in routes.get(o.account_id, []) if r.provider_id}
    plans = load_plans(session, provider_ids)
    if not plans:
        return None
    engaged = engaged_recipients(session, [o.message_id for o in outgoing], clock())
    return WarmingGate(plans, clock, run_in_transaction, engaged)


def _moving(start: datetime) -> Callable[[], datetime]:
    """The batch's clock as it runs: the (possibly injected) start plus real time
    elapsed, so rate limits pace real sends whatever time a test sets."""
    t0 = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - t0)


def reserve_sends_now(provider_id: int, count: int, per_second: float, now: datetime, max_wait: float) -> datetime:
    """Book rate slots in a transaction of their own, so other workers see them at once."""
    return run_in_transaction(lambda s: reserve_sends(s, provider_id, count, per_second, now, max_wait))  # type: ignore[no-any-return]
