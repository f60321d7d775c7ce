"""Four send worker processes racing over one warming plan: the cap is counted in
PostgreSQL, so however the batches interleave, the plan never sends more than its
cap, nothing is sent twice and every message is either sent or held."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from models import Message, WarmingDay, db
from tasks.sending import send_messages
from tests.support import factories
from tests.support.processes import Proc, platform_env, running, worker_argv
from tests.support.sending import account_of, queue_emails
from tests.support.smtp import SmtpServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e
CAP = 37


def whole_day_zone() -> str:
    """A timezone where it is now between 01:00 and 23:00, so a plan with sending
    hours 00-01 allows its whole cap for the rest of the test."""
    for name in ("UTC", "Etc/GMT+6", "Etc/GMT-6", "Etc/GMT+12", "Etc/GMT-12"):
        if 1 <= datetime.now(ZoneInfo(name)).hour <= 22:
            return name
    raise AssertionError("unreachable: the zones above cover every hour")


def warm(account_id: int, port: int) -> int:
    zone = whole_day_zone()
    return factories.warming_plan(account_id, port, datetime.now(ZoneInfo(zone)).date(), start_volume=CAP,
                                  shares={"gmail": 0, "yahoo": 0, "microsoft": 0, "other": 1},
                                  sending_hours=[0, 1], timezone=zone)


def settled(total: int) -> dict[str, int]:
    def counts() -> dict[str, int]:
        with db.session_scope() as s:
            return dict(s.execute(select(Message.status, func.count()).group_by(Message.status)).all())

    def done() -> dict[str, int] | None:
        seen = counts()
        return seen if seen.get("sent", 0) + seen.get("deferred", 0) == total else None

    return wait_for(done, 90, f"all {total} messages sent or held", interval=0.2, detail=lambda: str(counts()))


@pytest.mark.parametrize("run", range(2))
def test_four_send_worker_processes_never_pass_a_plans_cap(tmp_path: Path, run: int):
    ids = queue_emails(200)
    with SmtpServer() as smtp:
        plan = warm(account_of(ids), smtp.port)
        # The plan's provider is the account's own, on loopback: allowed as an operator would.
        env = platform_env(ESEQ_WEBHOOK_ALLOW_PRIVATE="true")
        workers = [Proc(f"send{i}", worker_argv(f"send{i}-{run}", queues="send", pool="prefork", concurrency=1),
                        env, tmp_path) for i in range(4)]
        with running(workers):
            for start in range(0, len(ids), 10):
                send_messages.apply_async(args=[ids[start:start + 10]])
            counts = settled(len(ids))
        recipients = [r for got in smtp.handler.received for r in got.recipients]
    assert 0 < counts["sent"] <= CAP
    assert len(recipients) == counts["sent"] == len(set(recipients))
    with db.session_scope() as s:
        reserved = s.scalar(select(func.sum(WarmingDay.reserved)).where(WarmingDay.plan_id == plan))
        held = list(s.scalars(select(Message.attempts).where(Message.status == "deferred")))
    assert reserved == counts["sent"], "slots a batch did not use were given back"
    assert set(held) == {0}, "held messages used no attempt"
