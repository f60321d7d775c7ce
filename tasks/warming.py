"""The warming ramp, driven by beat: each plan's ended days are judged and the
ramp moved (warming.results.close_due_days), and the running day is watched so a
group past its pause thresholds stops at once (warming.results.pause_on_alarm).
Both are safe to run twice or late: the plan row records the last day judged."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from models import WarmingPlan
from models.base import utcnow
from models.db import session_scope
from tasks.app import app
from warming.results import close_due_days, pause_on_alarm

log = logging.getLogger(__name__)
T = TypeVar("T")


def _active_plan_ids() -> list[int]:
    with session_scope() as session:
        return list(session.scalars(select(WarmingPlan.id).where(WarmingPlan.status != "completed")))


def _alert(plan_id: int, group: str, reason: str) -> None:
    # ERROR reaches Sentry (its logging integration) as well as the logs: a paused
    # plan sends nothing until a person looks.
    log.error("warming plan %s paused for %s: %s", plan_id, group, reason)


def _each_plan(work: Callable[[Session, int], T]) -> Iterator[tuple[int, T]]:
    """``work`` on every plan not completed, each in its own transaction. A plan
    whose work raises is logged (ERROR, so Sentry sees it) and skipped: one plan
    that cannot be judged must not stop every plan after it, run after run."""
    for plan_id in _active_plan_ids():
        try:
            with session_scope() as session:
                done = work(session, plan_id)
        except OperationalError:
            raise  # the database, not the plan: the next beat run tries them all again
        except Exception:  # noqa: BLE001 - this plan alone
            log.exception("warming plan %s skipped: it cannot be judged", plan_id)
            continue
        yield plan_id, done


@app.task(name="warming.advance_plans", ignore_result=True)
def advance_plans() -> None:
    """Move every plan past the days that ended in its own timezone."""
    for plan_id, made in _each_plan(lambda session, plan_id: close_due_days(session, plan_id, utcnow())):
        for group, adjustment in made:
            if adjustment.action == "pause":
                _alert(plan_id, group, adjustment.reason)


@app.task(name="warming.read_results", ignore_result=True)
def read_results() -> None:
    """Refresh today's figures and pause any group past its pause thresholds."""
    for plan_id, paused in _each_plan(lambda session, plan_id: pause_on_alarm(session, plan_id, utcnow())):
        for group in paused:
            _alert(plan_id, group, "rates past the pause thresholds during the day")
