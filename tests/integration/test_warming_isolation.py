"""One warming plan that cannot be judged does not stop beat's run over the others
(other accounts' plans included)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from models import WarmingPlan, db
from tasks.warming import advance_plans, read_results
from tests.support import factories

ONLY_OTHER = {"gmail": 0, "yahoo": 0, "microsoft": 0, "other": 1}


def two_days_in(account_name: str) -> int:
    plan = factories.warming_plan(factories.account(account_name), 2525, datetime.now(timezone.utc).date(),
                                  shares=ONLY_OTHER)
    with db.session_scope() as s:
        s.get(WarmingPlan, plan).start_date = datetime.now(timezone.utc).date() - timedelta(days=2)
    return plan


def closed_day(plan: int) -> int:
    with db.session_scope() as s:
        return s.get(WarmingPlan, plan).closed_day


def test_a_plan_whose_settings_cannot_be_read_is_skipped_and_the_next_plan_is_judged():
    bad, good = two_days_in("Bad"), two_days_in("Good")
    # Settings as a later version wrote them (a key this one does not know): reading them raises.
    with db.session_scope() as s:
        s.execute(update(WarmingPlan).where(WarmingPlan.id == bad)
                  .values(settings={**s.get(WarmingPlan, bad).settings, "retired_knob": 1}))

    advance_plans.apply(throw=True)
    read_results.apply(throw=True)

    assert closed_day(good) == 2
    assert closed_day(bad) == 0
