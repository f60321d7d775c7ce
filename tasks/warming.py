"""The warming ramp, driven by beat: each plan's ended days are judged and the
ramp moved (warming.results.close_due_days), and the running day is watched so a
group past its pause thresholds stops at once (warming.results.pause_on_alarm).
Both are safe to run twice or late: the plan row records the last day judged."""
from __future__ import annotations

import logging

from sqlalchemy import select

from models import WarmingPlan
from models.base import utcnow
from models.db import session_scope
from tasks.app import app
from warming.results import close_due_days, pause_on_alarm

log = logging.getLogger(__name__)


def _active_plan_ids() -> list[int]:
    with session_scope() as session:
        return list(session.scalars(select(WarmingPlan.id).where(WarmingPlan.status != "completed")))


def _alert(plan_id: int, group: str, reason: str) -> None:
    # ERROR reaches Sentry (its logging integration) as well as the logs: a paused
    # plan sends nothing until a person looks.
    log.error("warming plan %s paused for %s: %s", plan_id, group, reason)


@app.task(name="warming.advance_plans", ignore_result=True)
def advance_plans() -> None:
    """Move every plan past the days that ended in its own timezone."""
    for plan_id in _active_plan_ids():
        with session_scope() as session:
            made = close_due_days(session, plan_id, utcnow())
        for group, adjustment in made:
            if adjustment.action == "pause":
                _alert(plan_id, group, adjustment.reason)


@app.task(name="warming.read_results", ignore_result=True)
def read_results() -> None:
    """Refresh today's figures and pause any group past its pause thresholds."""
    for plan_id in _active_plan_ids():
        with session_scope() as session:
            paused = pause_on_alarm(session, plan_id, utcnow())
        for group in paused:
            _alert(plan_id, group, "rates past the pause thresholds during the day")
