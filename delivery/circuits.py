"""Loading an account's providers as routes, and writing back what each try taught
us: the circuit breaker, Retry-After pauses and the send-rate limiter's state live
on the provider rows.

Each update is one conditional statement, so many send threads recording at once
never lose a count: failures are incremented in SQL, and the circuit opens in the
same statement that reaches the threshold.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, or_, select, update
from sqlalchemy.orm import Session

from delivery.pacing import reserve_run
from delivery.routing import CIRCUIT_THRESHOLD, Route, Try
from models import Provider

SUCCESS_STAMP = timedelta(seconds=1)


# Built once, and read as plain rows: a fresh ORM select of whole Provider objects
# cost each send batch 0.5-0.6 ms of CPU here, against 0.2-0.3 ms for this (most
# of it the round trip), even for an account with no providers of its own.
_ROUTE_COLUMNS = (Provider.account_id, Provider.id, Provider.name, Provider.kind, Provider.config, Provider.priority,
                  Provider.weight, Provider.domains, Provider.circuit_state, Provider.circuit_opened_at,
                  Provider.paused_until, Provider.max_per_second)
_ENABLED_PROVIDERS = select(*_ROUTE_COLUMNS).where(Provider.account_id.in_(bindparam("accounts", expanding=True)),
                                                  Provider.enabled.is_(True))


def load_routes(session: Session, account_ids: set[int], default: Route | None) -> dict[int, list[Route]]:
    """Each account's enabled providers; an account with none uses ``default``
    (the SMTP provider from the environment) when there is one."""
    routes: dict[int, list[Route]] = {a: [] for a in account_ids}
    for p in session.connection().execute(_ENABLED_PROVIDERS, {"accounts": list(account_ids)}):
        routes[p.account_id].append(Route(
            provider_id=p.id, name=p.name, kind=p.kind, config=dict(p.config or {}), priority=p.priority,
            weight=p.weight, domains=tuple(d.lower() for d in (p.domains or [])), circuit_state=p.circuit_state,
            circuit_opened_at=p.circuit_opened_at, paused_until=p.paused_until, max_per_second=p.max_per_second))
    if default is not None:
        for account_id, found in routes.items():
            if not found:
                routes[account_id] = [default]
    return routes


def record_tries(session: Session, tries: list[tuple[Try, datetime]]) -> None:
    """Write what each try (in the order they happened) says about its provider.
    A success right after another success of the same provider changes nothing,
    so a group of outcomes writes each healthy provider once, not once per email."""
    last_was_success: dict[int, bool] = {}
    for attempt, now in tries:
        if attempt.provider_id is None:
            continue
        row = Provider.id == attempt.provider_id
        if attempt.error is None:
            if last_was_success.get(attempt.provider_id):
                continue
            last_was_success[attempt.provider_id] = True
            # Every send worker's every success lands on this one row: write it only
            # when the circuit changes, and refresh last_success_at once a second,
            # so successes do not queue up behind each other's row lock.
            changed = or_(Provider.consecutive_failures != 0, Provider.circuit_state != "closed",
                          Provider.last_success_at.is_(None), Provider.last_success_at < now - SUCCESS_STAMP)
            session.execute(update(Provider).where(row, changed).values(
                consecutive_failures=0, circuit_state="closed", circuit_opened_at=None, last_success_at=now))
        elif attempt.error.permanent:
            continue  # the recipient was refused: the provider itself is healthy
        elif attempt.error.throttled:
            # Healthy, and asking us to slow down: paused, not counted towards its circuit.
            last_was_success[attempt.provider_id] = False
            session.execute(update(Provider).where(row).values(
                last_error=str(attempt.error)[:1000],
                paused_until=now + timedelta(seconds=attempt.error.retry_after or 0.0)))
        else:
            last_was_success[attempt.provider_id] = False
            failures = Provider.consecutive_failures + 1
            opens = failures >= CIRCUIT_THRESHOLD
            values = {
                "consecutive_failures": failures,
                "last_error": str(attempt.error)[:1000],
                "circuit_state": case((opens, "open"), else_=Provider.circuit_state),
                "circuit_opened_at": case((opens, now), else_=Provider.circuit_opened_at),
            }
            if attempt.error.retry_after is not None:
                values["paused_until"] = now + timedelta(seconds=attempt.error.retry_after)
            session.execute(update(Provider).where(row).values(**values))


def reserve_sends(session: Session, provider_id: int, count: int, per_second: float, now: datetime,
                  max_wait: float) -> datetime:
    """Book ``count`` consecutive slots of the provider's rate; returns when the
    first starts. A compare-and-set on ``rate_tat`` (retried when another worker
    moved it first) works the same on PostgreSQL and SQLite. Raises
    ProviderBusyError when the first free slot is beyond ``max_wait``."""
    while True:
        row = session.execute(select(Provider.rate_tat).where(Provider.id == provider_id)).first()
        if row is None:
            return now  # removed while the batch ran: nothing left to limit
        tat = row.rate_tat
        start, new_tat = reserve_run(tat, count, per_second, now, max_wait)
        unchanged = Provider.rate_tat.is_(None) if tat is None else Provider.rate_tat == tat
        moved = session.execute(update(Provider).where(Provider.id == provider_id, unchanged).values(rate_tat=new_tat),
                                execution_options={"synchronize_session": False})
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            return start
