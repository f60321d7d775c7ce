"""IP warming on the real send path: real PostgreSQL, real SMTP servers on
loopback, the send task's own batch function, time injected.

Every send through a warming provider takes a slot of the plan's cap from
``warming_days`` first; messages over it are held to the next day without using
an attempt; the day's results (real sends, real 550 refusals) move the ramp.
"""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from delivery.outbox import claim_for_dispatch
from models import Message, Provider, WarmingAdjustment, WarmingDay, WarmingPlan, db
from tests.support import factories
from tests.support.sending import account_of, queue_emails, send_in_process, statuses
from tests.support.smtp import SmtpServer
from warming.results import close_due_days

# The providers these tests add listen on loopback: the operator allows private targets.
pytestmark = pytest.mark.usefixtures("private_providers_allowed")

DAY1 = date(2026, 3, 2)
ONLY_OTHER = {"gmail": 0, "yahoo": 0, "microsoft": 0, "other": 1}  # the tests' recipients are @example.test


def evening(day: int) -> datetime:
    """20:30 UTC on the plan's ``day``: past the 08-20 sending window, so the whole cap is allowed."""
    return datetime.combine(DAY1 + timedelta(days=day - 1), datetime.min.time(), timezone.utc) + timedelta(hours=20.5)


def warm(account_id: int, port: int, **settings: object) -> int:
    return factories.warming_plan(account_id, port, DAY1, **{"shares": ONLY_OTHER, **settings})



def due_at(moment: datetime) -> list[int]:
    with db.session_scope() as s:
        return claim_for_dispatch(s, moment, 10_000)


def close_days(plan_id: int, moment: datetime) -> None:
    with db.session_scope() as s:
        close_due_days(s, plan_id, moment)


def plan_level(plan_id: int) -> tuple[int, str]:
    with db.session_scope() as s:
        state = s.get(WarmingPlan, plan_id).states["other"]
        return state["level"], state["status"]


def test_day_one_sends_exactly_the_cap_and_day_two_the_next_tranche_nothing_twice_nothing_lost():
    ids = queue_emails(200)
    with SmtpServer() as server:
        plan = warm(account_of(ids), server.port)
        assert send_in_process(ids, at=evening(1)) == {"sent": 50, "held": 150}
        assert len(server.handler.received) == 50
        with db.session_scope() as s:
            held = list(s.scalars(select(Message).where(Message.status == "deferred")))
        assert len(held) == 150 and {m.attempts for m in held} == {0}
        assert min(m.retry_at for m in held) >= evening(2) - timedelta(hours=12.5)  # day 2, 08:00

        close_days(plan, evening(2) - timedelta(hours=20))  # day 2, 00:30: day 1 judged
        assert plan_level(plan) == (2, "warming")
        again = due_at(evening(2))
        assert sorted(again) == sorted(m.id for m in held)
        assert send_in_process(again, at=evening(2)) == {"sent": 58, "held": 92}

        recipients = [r.recipients[0] for r in server.handler.received]
        assert len(recipients) == 108 == len(set(recipients))
    assert statuses() == {"sent": 108, "deferred": 92}
    with db.session_scope() as s:
        days = {(d.day, d.grp): d.reserved for d in s.scalars(select(WarmingDay))}
    assert days[(1, "other")] == 50 and days[(2, "other")] == 58


@pytest.mark.parametrize("run", range(5))
def test_four_send_workers_racing_on_one_plan_never_pass_the_cap(run):
    ids = queue_emails(160)
    with SmtpServer() as server:
        plan = warm(account_of(ids), server.port, start_volume=37, target_volume=3000)
        results: list[dict[str, int]] = []
        parts = [ids[i::4] for i in range(4)]
        threads = [threading.Thread(target=lambda p=p: results.append(send_in_process(p, at=evening(1))))
                   for p in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent = sum(r.get("sent", 0) for r in results)
        # Each worker had more messages than a reservation chunk, so none gave slots back unused.
        assert len(server.handler.received) == sent == 37
        assert sent + sum(r.get("held", 0) for r in results) == 160, "every message sent or held, none lost"
    with db.session_scope() as s:
        day = s.scalar(select(WarmingDay).where(WarmingDay.plan_id == plan, WarmingDay.day == 1))
        assert day.reserved == sent, "slots a batch did not use were given back"
        assert s.scalar(select(func.count()).select_from(Message).where(Message.status == "sent")) == sent


def run_day(plan: int, day: int, ids: list[int], server: SmtpServer, refused: int) -> dict[str, int]:
    """Send ``ids`` on ``day`` with the first ``refused`` of them answered 550, then judge the day."""
    with db.session_scope() as s:
        addresses = [s.get(Message, i).to_email for i in ids[:refused]]
    for address in addresses:
        server.handler.refuse[address] = "550 5.1.1 No such user"
    counts = send_in_process(ids, at=evening(day))
    close_days(plan, evening(day + 1) - timedelta(hours=20))
    return counts


def test_a_bounce_spike_holds_a_higher_one_steps_back_and_recovery_resumes_the_climb():
    ids = queue_emails(88 * 3 + 76)
    with SmtpServer() as server:
        plan = warm(account_of(ids), server.port, thresholds={"min_sample": 20})
        with db.session_scope() as s:
            row = s.get(WarmingPlan, plan)
            row.states, row.closed_day = {**row.states, "other": {"level": 5, "status": "warming"}}, 4
        day5, day6, day7, day8 = ids[:88], ids[88:176], ids[176:252], ids[252:]

        assert run_day(plan, 5, day5, server, refused=7) == {"sent": 81, "failed": 7}  # 8.0%: over 5%
        assert plan_level(plan) == (5, "held")
        assert run_day(plan, 6, day6, server, refused=12) == {"sent": 76, "failed": 12}  # 13.6%: over 10%
        assert plan_level(plan) == (4, "held")
        assert run_day(plan, 7, day7, server, refused=0) == {"sent": 76}  # day 4's volume, all clean
        assert plan_level(plan) == (5, "warming")
        assert send_in_process(day8, at=evening(8)) == {"sent": 88}

    with db.session_scope() as s:
        history = [(a.day, a.action, a.from_level, a.to_level) for a in
                   s.scalars(select(WarmingAdjustment).order_by(WarmingAdjustment.id))]
        reasons = list(s.scalars(select(WarmingAdjustment.reason).order_by(WarmingAdjustment.id)))
    assert history == [(5, "hold", 5, 5), (6, "step_back", 5, 4), (7, "resume", 4, 5)]
    assert "bounce rate 8.0%" in reasons[0] and "bounce rate 13.6%" in reasons[1]


def test_over_the_cap_nothing_goes_to_another_provider_unless_the_plan_allows_overflow():
    ids = queue_emails(20)
    with SmtpServer() as warming, SmtpServer() as other:
        plan = warm(account_of(ids), warming.port, start_volume=5)
        with db.session_scope() as s:
            s.add(Provider(account_id=account_of(ids), name="old-ip", kind="smtp", priority=2,
                           config={"host": "127.0.0.1", "port": other.port, "timeout": 5}))
        assert send_in_process(ids[:10], at=evening(1)) == {"sent": 5, "held": 5}
        assert (len(warming.handler.received), len(other.handler.received)) == (5, 0)
        with db.session_scope() as s:
            s.get(WarmingPlan, plan).allow_overflow = True
        assert send_in_process(ids[10:], at=evening(1)) == {"sent": 10}
        assert (len(warming.handler.received), len(other.handler.received)) == (5, 10)


def test_the_day_is_spread_over_the_sending_hours_not_sent_at_once():
    ids = queue_emails(60)
    with SmtpServer() as server:
        warm(account_of(ids), server.port)  # 50 on day 1 over 08:00-20:00
        two_pm = evening(1) - timedelta(hours=6.5)
        assert send_in_process(ids, at=two_pm) == {"sent": 26, "held": 34}  # half the window gone: 25 slots + the open one
        with db.session_scope() as s:
            soonest = s.scalar(select(func.min(Message.retry_at)).where(Message.status == "deferred"))
        assert two_pm < soonest < two_pm + timedelta(hours=1, minutes=1)


def test_engaged_subscribers_take_the_first_slots():
    from models import Event

    ids = queue_emails(12)
    with db.session_scope() as s:
        engaged = [s.get(Message, i) for i in ids[-3:]]
        s.add_all(Event(account_id=m.account_id, subscriber_id=m.subscriber_id, name="opened",
                        occurred_at=evening(1) - timedelta(days=3)) for m in engaged)
        wanted = sorted(m.to_email for m in engaged)
    with SmtpServer() as server:
        warm(account_of(ids), server.port, start_volume=3)
        assert send_in_process(ids, at=evening(1)) == {"sent": 3, "held": 9}
        assert sorted(r.recipients[0] for r in server.handler.received) == wanted


def test_a_group_past_its_pause_thresholds_stops_during_the_day():
    from warming.results import pause_on_alarm

    ids = queue_emails(40)
    with SmtpServer() as server:
        plan = warm(account_of(ids), server.port, thresholds={"min_sample": 20})
        with db.session_scope() as s:
            addresses = [s.get(Message, i).to_email for i in ids[:6]]
        for address in addresses:
            server.handler.refuse[address] = "550 5.1.1 No such user"
        early_evening = evening(1) - timedelta(minutes=25)
        assert send_in_process(ids[:25], at=early_evening) == {"sent": 19, "failed": 6}  # 24% bounced: past 20%
        with db.session_scope() as s:
            assert pause_on_alarm(s, plan, early_evening) == ["other"]
        assert plan_level(plan) == (1, "paused")
        assert send_in_process(ids[25:], at=evening(1)) == {"held": 15}


def test_beats_task_on_a_real_worker_judges_each_ended_day_once(worker):
    from tasks.warming import advance_plans
    from tests.support.waiting import wait_for

    account = factories.account()
    plan = warm(account, 2525)
    with db.session_scope() as s:
        s.get(WarmingPlan, plan).start_date = datetime.now(timezone.utc).date() - timedelta(days=2)

    def closed() -> int:
        with db.session_scope() as s:
            return s.get(WarmingPlan, plan).closed_day

    advance_plans.delay()
    wait_for(lambda: closed() == 2, what="days 1 and 2 to be judged")
    advance_plans.apply()  # a second beat run, or a late one, judges nothing again
    with db.session_scope() as s:
        history = [(a.day, a.action) for a in s.scalars(select(WarmingAdjustment).order_by(WarmingAdjustment.id))]
    assert history == [(1, "hold"), (2, "hold")]  # nothing was sent: no reputation earned, no climb
    assert plan_level(plan) == (1, "held")


def test_held_mail_of_engaged_subscribers_comes_back_first_after_the_opening():
    from models import Event

    ids = queue_emails(6)
    with db.session_scope() as s:
        engaged = [s.get(Message, i) for i in ids[:3]]
        s.add_all(Event(account_id=m.account_id, subscriber_id=m.subscriber_id, name="clicked",
                        occurred_at=evening(1) - timedelta(days=1)) for m in engaged)
        engaged_ids = {m.id for m in engaged}
    with SmtpServer() as server:
        warm(account_of(ids), server.port, start_volume=1)
        assert send_in_process(ids, at=evening(1)) == {"sent": 1, "held": 5}
    opening = evening(2) - timedelta(hours=12.5)  # day 2, 08:00
    with db.session_scope() as s:
        held = {m.id: m.retry_at for m in s.scalars(select(Message).where(Message.status == "deferred"))}
    assert all(opening <= at <= opening + timedelta(minutes=10) for i, at in held.items() if i in engaged_ids)
    assert all(opening + timedelta(minutes=10) <= at <= opening + timedelta(hours=1)
               for i, at in held.items() if i not in engaged_ids)
    assert len([i for i in held if i in engaged_ids]) == 2
