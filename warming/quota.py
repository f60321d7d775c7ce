"""Every send through a warming provider takes a slot of its plan's cap first.

The cap is counted in the database: a ``warming_days`` row per plan, day and
mailbox-provider group, whose ``reserved`` only moves by a compare-and-set UPDATE
that cannot pass the allowance. Many send workers racing, a Redis restart or a
crashed worker can therefore never push a plan over its cap; a worker that dies
holding slots only leaves them unused (erring on the low side).

Slots are reserved in small batches (``CHUNK``) and a batch gives back what it did
not use when it ends, so a busy send pool costs one UPDATE per few messages.

The allowance at any moment is the group's cap spread over the plan's sending
hours (warming.spread): mail leaves at an even pace through the day rather than in
a burst at midnight. A message over it is held until the next slot opens, or for
a spent day until the next day's window opens. Held messages of recently engaged
subscribers (an open or click in the last 30 days) come back first, the others
up to an hour later, so each day's first sends go to the people most likely to
open them and the new IP's reputation starts with good signals.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from analytics.events import ENGAGEMENT
from core.errors import ProviderBusyError
from models import Event, Message, WarmingDay, WarmingPlan
from models.bulk import add_rows_ignoring_conflicts
from warming.mailbox import group_of
from warming.plan import PlanSettings, group_caps
from warming.ramp import RampState
from warming.schedule import day_number
from warming.spread import allowance, next_send_at

CHUNK = 10
ENGAGED_SPREAD = timedelta(minutes=10)
OTHERS_DELAY = timedelta(minutes=10)
OTHERS_SPREAD = timedelta(minutes=50)


@dataclass(frozen=True)
class ActivePlan:
    """A plan row parsed once: its settings, each group's state, and each group's
    cap at that state (worked out here, not per message)."""

    id: int
    start_date: date
    settings: PlanSettings
    states: Mapping[str, RampState]
    allow_overflow: bool
    caps: Mapping[str, int | None]


@dataclass(frozen=True)
class Slot:
    """Where a group stands at a moment: its day, its cap, and its allowance so far."""

    day: int
    group: str
    cap: int | None  # None: the group finished warming
    allowance: int | None


def load_plans(session: Session, provider_ids: set[int]) -> dict[int, ActivePlan]:
    """The warming plans of these providers that still limit them (not completed), by provider id."""
    plans: dict[int, ActivePlan] = {}
    if not provider_ids:
        return plans
    for row in session.scalars(select(WarmingPlan).where(WarmingPlan.provider_id.in_(provider_ids),
                                                         WarmingPlan.status != "completed")):
        plans[row.provider_id] = active_plan(row)
    return plans


def active_plan(row: WarmingPlan) -> ActivePlan:
    settings = PlanSettings.from_dict(row.settings)
    states = {g: RampState(**s) for g, s in (row.states or {}).items()}
    return ActivePlan(row.id, row.start_date, settings, states, row.allow_overflow, group_caps(settings, states))


def local_day(plan: ActivePlan, now: datetime) -> int:
    """The plan's day number at ``now``, in the plan's timezone (1 = start date)."""
    return day_number(plan.start_date, now.astimezone(plan.settings.zone).date())


def slot_at(plan: ActivePlan, group: str, now: datetime) -> Slot:
    local = now.astimezone(plan.settings.zone)
    day = day_number(plan.start_date, local.date())
    if day < 1:
        return Slot(day, group, 0, 0)  # not started: the provider sends nothing yet
    cap = plan.caps[group]
    if cap is None:
        return Slot(day, group, None, None)
    return Slot(day, group, cap, allowance(cap, local.time(), plan.settings.sending_hours))


def reserve(session: Session, plan_id: int, slot: Slot, count: int) -> int:
    """Take up to ``count`` slots of the group's allowance; returns how many were taken."""
    assert slot.cap is not None and slot.allowance is not None
    where = (WarmingDay.plan_id == plan_id, WarmingDay.day == slot.day, WarmingDay.grp == slot.group)
    while True:
        reserved = session.scalar(select(WarmingDay.reserved).where(*where))
        if reserved is None:  # the group's first reservation of the day: its row, then read again
            add_rows_ignoring_conflicts(session, WarmingDay.__table__,
                                        [day_row(plan_id, slot.day, slot.group, slot.cap)])
            continue
        grant = min(count, slot.allowance - reserved)
        if grant <= 0:
            return 0
        moved = session.execute(update(WarmingDay).where(*where, WarmingDay.reserved == reserved)
                                .values(reserved=reserved + grant, cap=slot.cap),
                                execution_options={"synchronize_session": False})
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            return grant


def day_row(plan_id: int, day: int, group: str, cap: int) -> dict[str, Any]:
    """A fresh ``warming_days`` row, inserted ignoring conflicts by whoever needs it first."""
    return {"plan_id": plan_id, "day": day, "grp": group, "cap": cap, "reserved": 0, "sent": 0, "bounced": 0,
            "complained": 0, "deferred": 0}


def release(session: Session, plan_id: int, day: int, group: str, count: int) -> None:
    """Give back slots a batch reserved and did not use."""
    session.execute(update(WarmingDay).where(WarmingDay.plan_id == plan_id, WarmingDay.day == day,
                                             WarmingDay.grp == group)
                    .values(reserved=WarmingDay.reserved - count), execution_options={"synchronize_session": False})


def opening(plan: ActivePlan, slot: Slot, now: datetime) -> datetime:
    """When the group may send again: its next slot today, else tomorrow's window."""
    zone = plan.settings.zone
    local = now.astimezone(zone)
    start_hour = plan.settings.sending_hours[0]
    if slot.day < 1:
        return datetime.combine(plan.start_date, time(start_hour), zone)
    if slot.cap and slot.allowance is not None and slot.allowance < slot.cap:
        at = next_send_at(slot.cap, slot.allowance, plan.settings.sending_hours)
        if at is not None:
            return max(datetime.combine(local.date(), at, zone), now)
    return datetime.combine(local.date() + timedelta(days=1), time(start_hour), zone)


@dataclass
class WarmingGate:
    """The Failover gate for warming providers, for one send batch. ``run`` runs a
    function in a transaction of its own (reservations must be seen at once)."""

    plans: Mapping[int, ActivePlan]
    clock: Callable[[], datetime]
    run: Callable[[Callable[[Session], Any]], Any]
    engaged: set[str] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)
    _held: dict[tuple[int, int, str], int] = field(default_factory=dict)
    # The allowance at which a group's last reservation came back empty: asking again
    # before a new slot opens would cost a transaction per held message for nothing.
    _spent_at: dict[tuple[int, int, str], int] = field(default_factory=dict)

    def admit(self, route: Any, recipient: str) -> None:
        plan = self.plans.get(route.provider_id) if route.provider_id is not None else None
        if plan is None:
            return
        now = self.clock()
        slot = slot_at(plan, group_of(recipient), now)
        if slot.cap is None:
            return
        key = (plan.id, slot.day, slot.group)
        if self._held.get(key, 0) == 0 and slot.allowance and slot.allowance > self._spent_at.get(key, 0):
            self._held[key] = self.run(lambda s: reserve(s, plan.id, slot, CHUNK))
            if self._held[key] == 0:
                self._spent_at[key] = slot.allowance
        if self._held.get(key, 0) > 0:
            self._held[key] -= 1
            return
        wait = (opening(plan, slot, now) - now).total_seconds() + self._stagger(recipient)
        raise ProviderBusyError(wait, f"warming cap of {route.name} reached for {slot.group} on day {slot.day}",
                                stop=not plan.allow_overflow)

    def _stagger(self, recipient: str) -> float:
        if recipient.lower() in self.engaged:
            return self.rng.uniform(0, ENGAGED_SPREAD.total_seconds())
        return OTHERS_DELAY.total_seconds() + self.rng.uniform(0, OTHERS_SPREAD.total_seconds())

    def close(self) -> None:
        unused = {key: n for key, n in self._held.items() if n > 0}
        self._held.clear()
        if unused:
            self.run(lambda s: [release(s, plan_id, day, group, n) for (plan_id, day, group), n in unused.items()])


def engaged_recipients(session: Session, message_ids: list[int], now: datetime,
                       window: timedelta = timedelta(days=30)) -> set[str]:
    """Recipients among these messages who opened or clicked in the last ``window``."""
    if not message_ids:
        return set()
    rows = session.execute(select(Message.to_email).join(Event, Event.subscriber_id == Message.subscriber_id).where(
        Message.id.in_(message_ids), Event.name.in_(ENGAGEMENT), Event.occurred_at >= now - window)
        .distinct())
    return {email.lower() for (email,) in rows}
