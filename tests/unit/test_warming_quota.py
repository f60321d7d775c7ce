"""The send path's warming gate over one batch, with the database's reservations faked:
it hands out reserved slots, refuses over the allowance, and does not ask the
database again for a spent group until a new slot opens."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from core.errors import ProviderBusyError
from delivery.routing import Route
from warming import quota
from warming.plan import PlanSettings, group_caps
from warming.quota import ActivePlan, WarmingGate

SETTINGS = PlanSettings(shares={"gmail": 0, "yahoo": 0, "microsoft": 0, "other": 1})  # day 1: 50 over 08-20
PLAN = ActivePlan(7, date(2026, 3, 2), SETTINGS, {}, False, group_caps(SETTINGS, {}))
ROUTE = Route(provider_id=3, name="new-ip", kind="smtp")
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)  # a third of the window gone: 17 slots begun


class FakeDays:
    """``reserve`` against one counter, as the warming_days row would answer it, and
    ``run`` counting the transactions the gate opens."""

    def __init__(self) -> None:
        self.reserved = 0
        self.calls = 0

    def run(self, work):
        self.calls += 1
        return work(None)

    def reserve(self, session, plan_id, slot, count):
        grant = max(0, min(count, slot.allowance - self.reserved))
        self.reserved += grant
        return grant


def admitted(gate: WarmingGate, n: int) -> int:
    sent = 0
    for i in range(n):
        try:
            gate.admit(ROUTE, f"user{i}@example.test")
            sent += 1
        except ProviderBusyError as exc:
            assert exc.stop, "without overflow, over-cap mail stays with the warming provider"
    return sent


def test_it_admits_the_allowance_and_asks_once_for_a_spent_group_until_a_slot_opens(monkeypatch):
    days, now = FakeDays(), [NOON]
    monkeypatch.setattr(quota, "reserve", days.reserve)
    gate = WarmingGate({3: PLAN}, lambda: now[0], days.run)
    assert admitted(gate, 40) == 17
    assert days.calls == 3  # 10, 7, then the one empty answer; the 23 held messages ask nothing
    now[0] = NOON + timedelta(minutes=15)  # a slot every 14.4 minutes: one more has begun
    assert admitted(gate, 5) == 1
    assert days.calls == 5
