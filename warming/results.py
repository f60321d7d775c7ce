"""Reading each plan day's results, and moving the ramp on them.

Results are read from what the platform already records, not counted on the send
path: messages the plan's provider sent that day (local to the plan), refused
for good (counted as bounces) or left deferred after a 4xx; bounces (hard) and
complaints that provider webhooks reported for those messages, however late they
came. ``refresh`` stores them on the plan's ``warming_days`` rows, where the API,
the metrics and the judgement read them.

``close_due_days`` is the daily step: every day of the plan that has ended (in the
plan's timezone) and was not judged yet is judged once, in order, so a beat that
ran late or twice changes nothing. ``pause_on_alarm`` is the frequent check: a
group whose running day already passes the pause thresholds stops at once rather
than at midnight.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Event, Message, Provider, WarmingAdjustment, WarmingDay, WarmingPlan
from models.bulk import insert_ignoring_conflicts
from warming.health import Traffic, judge
from warming.mailbox import GROUPS, group_of
from warming.plan import close_day, group_caps, plan_status
from warming.quota import active_plan
from warming.ramp import Adjustment, RampState
from warming.schedule import day_number


def day_bounds(row: WarmingPlan, day: int) -> tuple[datetime, datetime]:
    zone = active_plan(row).settings.zone
    local = row.start_date + timedelta(days=day - 1)
    return datetime.combine(local, time(0), zone), datetime.combine(local + timedelta(days=1), time(0), zone)


def today(row: WarmingPlan, now: datetime) -> int:
    return day_number(row.start_date, now.astimezone(active_plan(row).settings.zone).date())


def read_day(session: Session, row: WarmingPlan, day: int) -> dict[str, Traffic]:
    """Each group's traffic through the plan's provider on its ``day``."""
    name = session.scalar(select(Provider.name).where(Provider.id == row.provider_id))
    start, end = day_bounds(row, day)
    ours = (Message.account_id == row.account_id, Message.provider == name)
    sent = dict(session.execute(select(Message.id, Message.to_email).where(
        *ours, Message.sent_at >= start, Message.sent_at < end)).all())
    refused = dict(session.execute(select(Message.id, Message.to_email).where(
        *ours, Message.status == "failed", Message.updated_at >= start, Message.updated_at < end)).all())
    deferred = dict(session.execute(select(Message.id, Message.to_email).where(
        *ours, Message.status == "deferred", Message.updated_at >= start, Message.updated_at < end)).all())
    counts: dict[str, dict[str, int]] = {g: defaultdict(int) for g in GROUPS}
    for addresses, kind in ((sent, "sent"), (refused, "sent"), (refused, "bounced"), (deferred, "deferred")):
        for address in addresses.values():
            counts[group_of(address)][kind] += 1
    if sent:
        reported = session.execute(select(Event.message_id, Event.name, Event.properties).where(
            Event.message_id.in_(list(sent)), Event.name.in_(("bounced", "complained"))))
        seen: set[tuple[int, str]] = set()
        for message_id, event, properties in reported:
            if (event == "bounced" and (properties or {}).get("bounce_type") == "soft") or (message_id, event) in seen:
                continue  # a soft bounce is a deferral the provider retries; one count per message
            seen.add((message_id, event))
            counts[group_of(sent[message_id])][event] += 1
    return {g: Traffic(c["sent"], c["bounced"], c["complained"], c["deferred"]) for g, c in counts.items()}


def refresh(session: Session, row: WarmingPlan, day: int) -> dict[str, Traffic]:
    """Read the day's results and store them on its rows."""
    traffic = read_day(session, row, day)
    caps = group_caps(active_plan(row).settings, active_plan(row).states)
    insert_ignoring_conflicts(session, WarmingDay, [{
        "plan_id": row.id, "day": day, "grp": g, "cap": caps[g] or 0, "reserved": 0, "sent": 0, "bounced": 0,
        "complained": 0, "deferred": 0} for g in GROUPS], WarmingDay.id)
    for stored in session.scalars(select(WarmingDay).where(WarmingDay.plan_id == row.id, WarmingDay.day == day)):
        t = traffic[stored.grp]
        stored.sent, stored.bounced, stored.complained, stored.deferred = t.sent, t.bounced, t.complained, t.deferred
    return traffic


def _save(session: Session, row: WarmingPlan, states: dict[str, RampState], adjustments: dict[str, Adjustment],
          now: datetime) -> None:
    row.states = {g: {"level": s.level, "status": s.status} for g, s in states.items()}
    row.status = plan_status(active_plan(row).settings, states)
    row.updated_at = now
    session.add_all(WarmingAdjustment(plan_id=row.id, day=a.day, grp=g, action=a.action, from_level=a.from_level,
                                      to_level=a.to_level, reason=a.reason, created_at=now)
                    for g, a in adjustments.items())


def close_due_days(session: Session, plan_id: int, now: datetime) -> list[tuple[str, Adjustment]]:
    """Judge every ended, unjudged day of the plan, in order; returns the
    adjustments made, by group."""
    row = session.scalars(select(WarmingPlan).where(WarmingPlan.id == plan_id).with_for_update()).first()
    if row is None or row.status == "completed":
        return []  # a paused group stays paused through close_day; the others climb on
    made: list[tuple[str, Adjustment]] = []
    while row.closed_day < today(row, now) - 1:
        day = row.closed_day + 1
        plan = active_plan(row)
        states, adjustments = close_day(plan.settings, plan.states, refresh(session, row, day), day)
        _save(session, row, states, adjustments, now)
        row.closed_day = day
        made.extend(adjustments.items())
        if row.status == "completed":
            break
    return made


def pause_on_alarm(session: Session, plan_id: int, now: datetime) -> list[str]:
    """Refresh the running day and pause, at once, every group past its pause
    thresholds (with enough traffic to judge); returns the groups paused."""
    row = session.scalars(select(WarmingPlan).where(WarmingPlan.id == plan_id).with_for_update()).first()
    if row is None or row.status == "completed" or today(row, now) < 1:
        return []
    day = today(row, now)
    plan = active_plan(row)
    traffic = refresh(session, row, day)
    states = {g: plan.states.get(g, RampState()) for g in GROUPS}
    adjustments: dict[str, Adjustment] = {}
    for group in plan.settings.warmed_groups():
        state = states[group]
        verdict = judge(traffic[group], plan.settings.thresholds)
        if verdict.action == "pause" and state.status not in ("paused", "completed"):
            states[group] = RampState(state.level, "paused")
            adjustments[group] = Adjustment(day, state.level, state.level, "pause", verdict.reason + " (during the day)")
    if adjustments:
        _save(session, row, states, adjustments, now)
    return sorted(adjustments)
