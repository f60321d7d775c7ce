"""Send-rate pacing without I/O: the GCRA step, a batch's pacer on a virtual clock,
and failover around a provider whose rate is booked."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

import pytest

from core.errors import ProviderBusyError
from delivery.errors import HeldError
from delivery.pacing import Pacer, reserve_run
from delivery.routing import Failover, Route

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)


class VirtualTime:
    def __init__(self) -> None:
        self.now = T0
        self.slept = 0.0

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += timedelta(seconds=seconds)


class SharedLimiter:
    """The provider row's tat, as reserve_sends keeps it, in memory."""

    def __init__(self) -> None:
        self.tat: dict[int, datetime | None] = {}
        self.calls = 0

    def reserve(self, provider_id: int, count: int, per_second: float, now: datetime, max_wait: float) -> datetime:
        self.calls += 1
        start, self.tat[provider_id] = reserve_run(self.tat.get(provider_id), count, per_second, now, max_wait)
        return start


def test_the_gcra_step_books_a_run_after_the_last_one_and_refuses_beyond_the_wait():
    start, tat = reserve_run(None, 5, 10.0, T0, 2.0)
    assert (start, tat) == (T0, T0 + timedelta(seconds=0.5))
    start, tat = reserve_run(tat, 5, 10.0, T0, 2.0)
    assert start == T0 + timedelta(seconds=0.5)
    with pytest.raises(ProviderBusyError) as busy:
        reserve_run(T0 + timedelta(seconds=5), 1, 10.0, T0, 2.0)
    assert busy.value.retry_after == pytest.approx(3.0)
    # An idle provider's old tat does not bank a burst.
    assert reserve_run(T0 - timedelta(hours=1), 1, 10.0, T0, 2.0)[0] == T0


def test_a_pacer_spaces_its_sends_at_the_rate_and_books_in_chunks():
    time, limiter = VirtualTime(), SharedLimiter()
    pacer = Pacer(limiter.reserve, time.clock, time.sleep)
    moments = []
    for _ in range(100):
        pacer.acquire(1, 200.0)
        moments.append(time.now)
    gaps = {round((b - a).total_seconds(), 6) for a, b in zip(moments, moments[1:])}
    assert gaps == {0.005}
    assert limiter.calls == 10  # 200/s x 50 ms = 10 slots a booking


def test_two_pacers_sharing_a_provider_never_take_the_same_slot():
    time, limiter = VirtualTime(), SharedLimiter()
    a, b = Pacer(limiter.reserve, time.clock, time.sleep), Pacer(limiter.reserve, time.clock, time.sleep)
    moments = []
    for _ in range(40):
        for pacer in (a, b):
            pacer.acquire(7, 10.0)
            moments.append(time.now)
    assert len(set(moments)) == 80
    assert time.now - T0 >= timedelta(seconds=7.9)  # 80 sends at 10/s


def test_failover_skips_a_booked_provider_and_holds_when_every_one_is_booked():
    time, limiter = VirtualTime(), SharedLimiter()
    limiter.tat[1] = T0 + timedelta(seconds=30)
    sent: list[str] = []

    class Transport:
        def __init__(self, name: str) -> None:
            self.name = name

        def send(self, message: EmailMessage, sender: str, recipient: str) -> str:
            sent.append(self.name)
            return f"<{self.name}>"

        def close(self) -> None:
            pass

    limited = Route(provider_id=1, name="limited", kind="smtp", priority=1, max_per_second=1.0)
    backup = Route(provider_id=2, name="backup", kind="smtp", priority=2)
    failover = Failover(lambda r: Transport(r.name), T0, [Pacer(limiter.reserve, time.clock, time.sleep)])
    [(attempt, _)] = list(failover.send([limited, backup], EmailMessage(), "s@x", "a@x", "k"))
    assert attempt.provider == "backup" and sent == ["backup"]
    [(held, _)] = list(failover.send([limited], EmailMessage(), "s@x", "a@x", "k2"))
    assert isinstance(held.error, HeldError) and held.provider_id is None
    assert held.error.retry_after == pytest.approx(28.0)
    assert sent == ["backup"]
