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
from collections.abc import Mapping
from dataclasses import asdict, replace
from datetime import datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import Event, Message, Provider, WarmingAdjustment, WarmingDay, WarmingPlan
from models.bulk import add_rows_ignoring_conflicts
from warming.health import Traffic, judge
from warming.mailbox import GROUPS, group_of
from warming.plan import PlanSettings, close_day, group_caps, plan_status
from warming.quota import ActivePlan, active_plan, day_row, local_day
from warming.ramp import Adjustment, RampState, pause


def day_bounds(plan: ActivePlan, day: int) -> tuple[datetime, datetime]:
    zone = plan.settings.zone
    local = plan.start_date + timedelta(days=day - 1)
    return datetime.combine(local, time(0), zone), datetime.combine(local + timedelta(days=1), time(0), zone)


def read_day(session: Session, row: WarmingPlan, plan: ActivePlan, day: int) -> dict[str, Traffic]:
    """Each group's traffic through the plan's provider on its ``day``."""
    name = session.scalar(select(Provider.name).where(Provider.id == row.provider_id))
    start, end = day_bounds(plan, day)
    sent_that_day = (Message.sent_at >= start) & (Message.sent_at < end)
    touched_that_day = (Message.updated_at >= start) & (Message.updated_at < end)
    rows = session.execute(select(Message.id, Message.to_email, Message.status, Message.sent_at).where(
        Message.account_id == row.account_id, Message.provider == name,
        or_(sent_that_day, touched_that_day & Message.status.in_(("failed", "deferred"))))).all()
    counts: dict[str, dict[str, int]] = {g: defaultdict(int) for g in GROUPS}
    sent: dict[int, str] = {}
    for message_id, address, status, sent_at in rows:
        group = counts[group_of(address)]
        if sent_at is not None and start <= sent_at < end:
            sent[message_id] = address
            group["sent"] += 1
        elif status == "failed":  # refused for good at send time: a bounce
            group["sent"] += 1
            group["bounced"] += 1
        elif status == "deferred":
            group["deferred"] += 1
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


def refresh(session: Session, row: WarmingPlan, plan: ActivePlan, day: int) -> dict[str, Traffic]:
    """Read the day's results and store them on its rows."""
    traffic = read_day(session, row, plan, day)
    add_rows_ignoring_conflicts(session, WarmingDay.__table__,
                                [day_row(row.id, day, g, plan.caps[g] or 0) for g in GROUPS])
    for stored in session.scalars(select(WarmingDay).where(WarmingDay.plan_id == row.id, WarmingDay.day == day)):
        t = traffic[stored.grp]
        stored.sent, stored.bounced, stored.complained, stored.deferred = t.sent, t.bounced, t.complained, t.deferred
    return traffic


def save_states(session: Session, row: WarmingPlan, settings: PlanSettings, states: Mapping[str, RampState],
                adjustments: Mapping[str, Adjustment], now: datetime) -> None:
    """Store the groups' new states, the plan's status that follows from them, and
    each adjustment with its reason: the one writer of a plan's ramp."""
    row.states = {g: asdict(s) for g, s in states.items()}
    row.status = plan_status(settings, states)
    row.updated_at = now
    session.add_all(WarmingAdjustment(plan_id=row.id, day=a.day, grp=g, action=a.action, from_level=a.from_level,
                                      to_level=a.to_level, reason=a.reason, created_at=now)
                    for g, a in adjustments.items())


def _locked(session: Session, plan_id: int) -> WarmingPlan | None:
    return session.scalars(select(WarmingPlan).where(WarmingPlan.id == plan_id).with_for_update()).first()


def close_due_days(session: Session, plan_id: int, now: datetime) -> list[tuple[str, Adjustment]]:
    """Judge every ended, unjudged day of the plan, in order; returns the
    adjustments made, by group."""
    row = _locked(session, plan_id)
    if row is None or row.status == "completed":
        return []  # a paused group stays paused through close_day; the others climb on
    plan = active_plan(row)
    states: Mapping[str, RampState] = plan.states
    made: list[tuple[str, Adjustment]] = []
    while row.closed_day < local_day(plan, now) - 1:
        day = row.closed_day + 1
        current = replace(plan, states=states, caps=group_caps(plan.settings, states))
        states, adjustments = close_day(plan.settings, states, refresh(session, row, current, day), day)
        save_states(session, row, plan.settings, states, adjustments, now)
        row.closed_day = day
        made.extend(adjustments.items())
        if row.status == "completed":
            break
    return made


def pause_on_alarm(session: Session, plan_id: int, now: datetime) -> list[str]:
    """Refresh the running day and pause, at once, every group past its pause
    thresholds (with enough traffic to judge); returns the groups paused."""
    row = _locked(session, plan_id)
    if row is None or row.status == "completed":
        return []
    plan = active_plan(row)
    day = local_day(plan, now)
    if day < 1:
        return []
    traffic = refresh(session, row, plan, day)
    states = {g: plan.states.get(g, RampState()) for g in GROUPS}
    adjustments: dict[str, Adjustment] = {}
    for group in plan.settings.warmed_groups():
        verdict = judge(traffic[group], plan.settings.thresholds)
        if verdict.action == "pause":
            states[group], adjustment = pause(states[group], day, verdict.reason + " (during the day)")
            if adjustment is not None:
                adjustments[group] = adjustment
    if adjustments:
        save_states(session, row, plan.settings, states, adjustments, now)
    return sorted(adjustments)
