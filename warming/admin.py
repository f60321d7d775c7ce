"""Warming plans as the API manages them: created for one of the account's
providers, paused and resumed by an operator, and shown with the day-by-day
schedule, today's figures per group and every adjustment made with its reason."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Provider, WarmingAdjustment, WarmingDay, WarmingPlan
from warming.errors import WarmingError
from warming.mailbox import GROUPS
from warming.plan import PlanSettings, total_cap
from warming.plot import DayFigures, render_svg
from warming.quota import active_plan, local_day, slot_at
from warming.ramp import Adjustment, RampState, pause, resume
from warming.results import save_states


class PlanNotFoundError(LookupError):
    pass


class PlanConflictError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def list_plans(account_id: int) -> Select[Any]:
    return select(WarmingPlan).where(WarmingPlan.account_id == account_id).order_by(WarmingPlan.id)


def get_plan(session: Session, account_id: int, plan_id: int) -> WarmingPlan:
    row = session.scalar(select(WarmingPlan).where(WarmingPlan.id == plan_id, WarmingPlan.account_id == account_id))
    if row is None:
        raise PlanNotFoundError(plan_id)
    return row


def delete_plan(session: Session, account_id: int, plan_id: int) -> None:
    """Stop warming: the provider sends without a cap from then on. Never commits."""
    session.delete(get_plan(session, account_id, plan_id))
    session.flush()


def create_plan(session: Session, account_id: int, data: dict[str, Any], now: datetime) -> WarmingPlan:
    provider = session.scalar(select(Provider).where(Provider.id == data["provider_id"],
                                                     Provider.account_id == account_id))
    if provider is None:
        raise WarmingError("provider_id", "No such provider in this account.")
    settings = PlanSettings.from_dict({k: v for k, v in data.items() if k not in ("provider_id", "start_date",
                                                                                  "allow_overflow")})
    start = data.get("start_date") or now.astimezone(settings.zone).date()
    row = WarmingPlan(account_id=account_id, provider_id=provider.id, start_date=start, settings=settings.as_dict(),
                      states={g: {"level": 1, "status": "warming"} for g in GROUPS}, status="warming",
                      allow_overflow=bool(data.get("allow_overflow", False)), closed_day=0, created_at=now,
                      updated_at=now)
    # The one-plan-per-provider rule is the table's: a second plan, even one racing
    # this request, is refused by it (a check before the insert could not see the race).
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        if session.scalar(select(WarmingPlan.id).where(WarmingPlan.provider_id == provider.id)) is None:
            raise
        raise PlanConflictError("provider_id", "This provider already has a warming plan.") from None
    return row


def update_plan(session: Session, account_id: int, plan_id: int, data: dict[str, Any], now: datetime) -> WarmingPlan:
    """Thresholds, overflow, and an operator's pause or resume. A resumed group
    restarts a level lower (warming.ramp.resume); days spent paused are not judged."""
    row = get_plan(session, account_id, plan_id)
    plan = active_plan(row)
    if "thresholds" in data:
        row.settings = PlanSettings.from_dict({**row.settings, "thresholds": data["thresholds"]}).as_dict()
    if "allow_overflow" in data:
        row.allow_overflow = bool(data["allow_overflow"])
    wanted = data.get("status")
    if wanted in ("paused", "warming"):
        day = max(local_day(plan, now), 1)
        states = {g: plan.states.get(g, RampState()) for g in GROUPS}
        adjustments: dict[str, Adjustment] = {}
        for group in plan.settings.warmed_groups():
            if wanted == "paused":
                states[group], adjustment = pause(states[group], day, "paused by an operator")
            else:
                states[group], adjustment = resume(states[group], day)
            if adjustment is not None:
                adjustments[group] = adjustment
        save_states(session, row, plan.settings, states, adjustments, now)
        if wanted == "warming":
            row.closed_day = max(row.closed_day, day - 1)
    row.updated_at = now
    session.flush()
    return row


def _history(volumes: list[int], by_day: dict[int, list[WarmingDay]]) -> list[DayFigures]:
    figures = []
    for number in range(1, len(volumes) + 1):
        rows = by_day.get(number)
        if not rows:
            figures.append(DayFigures(number, volumes[number - 1]))
            continue
        sent = sum(r.sent for r in rows)
        figures.append(DayFigures(number, volumes[number - 1], actual=sent,
                                  bounce_rate=sum(r.bounced for r in rows) / sent if sent else None,
                                  complaint_rate=sum(r.complained for r in rows) / sent if sent else None))
    return figures


def _days(session: Session, plan_ids: list[int]) -> dict[int, dict[int, list[WarmingDay]]]:
    """Each plan's day rows by day number, for every plan in one query."""
    by_plan: dict[int, dict[int, list[WarmingDay]]] = {plan_id: {} for plan_id in plan_ids}
    for day in session.scalars(select(WarmingDay).where(WarmingDay.plan_id.in_(plan_ids))
                               .order_by(WarmingDay.plan_id, WarmingDay.day)):
        by_plan[day.plan_id].setdefault(day.day, []).append(day)
    return by_plan


def _adjustments(session: Session, plan_ids: list[int]) -> dict[int, list[WarmingAdjustment]]:
    by_plan: dict[int, list[WarmingAdjustment]] = {plan_id: [] for plan_id in plan_ids}
    for adjustment in session.scalars(select(WarmingAdjustment).where(WarmingAdjustment.plan_id.in_(plan_ids))
                                      .order_by(WarmingAdjustment.id)):
        by_plan[adjustment.plan_id].append(adjustment)
    return by_plan


def describe(session: Session, row: WarmingPlan, now: datetime) -> dict[str, Any]:
    """Everything GET shows for a plan."""
    return describe_all(session, [row], now)[0]


def describe_all(session: Session, rows: list[WarmingPlan], now: datetime) -> list[dict[str, Any]]:
    """``describe`` for each plan, with two queries for all of them rather than two a plan."""
    ids = [row.id for row in rows]
    days, adjustments = _days(session, ids), _adjustments(session, ids)
    return [_described(row, now, days[row.id], adjustments[row.id]) for row in rows]


def _described(row: WarmingPlan, now: datetime, by_day: dict[int, list[WarmingDay]],
               adjustments: list[WarmingAdjustment]) -> dict[str, Any]:
    plan = active_plan(row)
    day = local_day(plan, now)
    stored = {d.grp: d for d in by_day.get(day, [])}
    groups = {}
    for g in GROUPS:
        state = plan.states.get(g, RampState())
        slot = slot_at(plan, g, now)
        groups[g] = {"level": state.level, "status": state.status, "cap": slot.cap, "allowance_now": slot.allowance,
                     "reserved": stored[g].reserved if g in stored else 0,
                     "used": stored[g].sent if g in stored else 0}
    return {
        "id": row.id, "provider_id": row.provider_id, "start_date": row.start_date, "status": row.status,
        "allow_overflow": row.allow_overflow, "settings": plan.settings.as_dict(), "day": day,
        "today": {"cap": total_cap(plan.caps) if day >= 1 else 0, "used": sum(v["used"] for v in groups.values()),
                  "reserved": sum(v["reserved"] for v in groups.values()), "groups": groups},
        "schedule": [{"day": i + 1, "volume": v} for i, v in enumerate(plan.settings.volumes)],
        "history": [{"day": f.day, "planned": f.planned, "actual": f.actual, "bounce_rate": f.bounce_rate,
                     "complaint_rate": f.complaint_rate}
                    for f in _history(plan.settings.volumes, by_day) if f.actual is not None],
        "adjustments": [{"day": a.day, "group": a.grp, "action": a.action, "from_level": a.from_level,
                         "to_level": a.to_level, "reason": a.reason, "at": a.created_at} for a in adjustments],
        "created_at": row.created_at,
    }


def plot(session: Session, row: WarmingPlan) -> str:
    plan = active_plan(row)
    history = _history(plan.settings.volumes, _days(session, [row.id])[row.id])
    return render_svg(history, title=f"Warming plan {row.id}",
                      thresholds=plan.settings.thresholds)
