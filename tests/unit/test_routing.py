"""Provider order and failover, with fake transports (no I/O)."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

from delivery.errors import PermanentDeliveryError, TransientDeliveryError
from delivery.routing import CIRCUIT_COOLDOWN, CIRCUIT_THRESHOLD, Failover, Route, Upcoming, order, usable

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class FakeTransport:
    def __init__(self, name: str, outcomes: list[Exception | None]) -> None:
        self.name = name
        self.outcomes = outcomes
        self.sent: list[str] = []
        self.closed = False

    def send(self, message: EmailMessage, sender: str, recipient: str) -> str:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.sent.append(recipient)
        return f"<{self.name}-{len(self.sent)}>"

    def close(self) -> None:
        self.closed = True


def route(pid: int, **kw) -> Route:  # type: ignore[no-untyped-def]
    return Route(provider_id=pid, name=f"p{pid}", kind="smtp", **kw)


def test_per_domain_rules_come_first_then_priority():
    routes = [route(1, priority=10), route(2, priority=5), route(3, priority=50, domains=("gmail.com",))]
    assert [r.provider_id for r in order(routes, "a@gmail.com", "k")] == [3, 2, 1]
    assert [r.provider_id for r in order(routes, "a@yahoo.com", "k")] == [2, 1, 3]


def test_equal_priorities_share_traffic_by_weight_and_a_key_always_gets_the_same_order():
    routes = [route(1, weight=3), route(2, weight=1)]
    firsts = Counter(order(routes, "a@x.test", f"key{i}")[0].provider_id for i in range(4000))
    assert 2700 <= firsts[1] <= 3300
    assert order(routes, "a@x.test", "same") == order(routes, "a@x.test", "same")


def test_an_open_circuit_is_skipped_until_the_cooldown_then_tried_again():
    opened = route(1, circuit_state="open", circuit_opened_at=NOW)
    assert not usable(opened, NOW + CIRCUIT_COOLDOWN - timedelta(seconds=1))
    assert usable(opened, NOW + CIRCUIT_COOLDOWN)
    assert not usable(route(2, paused_until=NOW + timedelta(seconds=5)), NOW)


def test_a_transient_error_fails_over_and_a_permanent_one_stops():
    primary = FakeTransport("p1", [TransientDeliveryError("down"), PermanentDeliveryError("550 no such user")])
    secondary = FakeTransport("p2", [])
    transports = {1: primary, 2: secondary}
    failover = Failover(lambda r: transports[r.provider_id], NOW)
    routes = [route(1, priority=1), route(2, priority=2)]

    first = list(failover.send(routes, EmailMessage(), "s@x.test", "a@x.test", "k1"))
    assert [(t.provider, t.error is None, pid) for t, pid in first] == [("p1", False, None), ("p2", True, "<p2-1>")]
    second = list(failover.send(routes, EmailMessage(), "s@x.test", "b@x.test", "k2"))
    assert [(t.provider, bool(t.error and t.error.permanent)) for t, _ in second] == [("p1", True)]
    assert secondary.sent == ["a@x.test"]
    failover.close()
    assert primary.closed and secondary.closed


def test_a_provider_failing_repeatedly_is_dropped_for_the_rest_of_the_batch():
    broken = FakeTransport("p1", [TransientDeliveryError("down")] * 100)
    backup = FakeTransport("p2", [])
    failover = Failover(lambda r: {1: broken, 2: backup}[r.provider_id], NOW)
    routes = [route(1, priority=1), route(2, priority=2)]
    for i in range(20):
        list(failover.send(routes, EmailMessage(), "s@x.test", f"u{i}@x.test", f"k{i}"))
    assert len(backup.sent) == 20
    assert len(broken.outcomes) == 100 - CIRCUIT_THRESHOLD


def test_a_retry_after_pauses_the_provider_within_the_batch():
    limited = FakeTransport("p1", [TransientDeliveryError("429", retry_after=30)])
    backup = FakeTransport("p2", [])
    failover = Failover(lambda r: {1: limited, 2: backup}[r.provider_id], NOW)
    routes = [route(1, priority=1), route(2, priority=2)]
    for i in range(3):
        list(failover.send(routes, EmailMessage(), "s@x.test", f"u{i}@x.test", f"k{i}"))
    assert limited.sent == [] and len(backup.sent) == 3


def test_with_every_circuit_open_the_message_waits_for_the_first_reopening():
    routes = [route(1, circuit_state="open", circuit_opened_at=NOW - timedelta(seconds=50))]
    [(attempt, _)] = list(Failover(lambda r: FakeTransport("x", []), NOW).send(routes, EmailMessage(), "s", "a@x", "k"))
    assert attempt.error is not None and not attempt.error.permanent
    assert attempt.error.retry_after == 10.0


def test_backoff_doubles_from_30_seconds_with_jitter_and_stops_at_six_hours():
    import random

    from core.backoff import backoff

    rng = random.Random(7)
    for attempts, base in ((1, 30), (2, 60), (3, 120), (10, 15_360), (11, 6 * 3600), (30, 6 * 3600)):
        waits = [backoff(attempts, rng).total_seconds() for _ in range(200)]
        assert base * 0.8 <= min(waits) and max(waits) <= base * 1.2
        assert max(waits) - min(waits) > base * 0.2, "jittered, so retries spread out"


class Expecting(FakeTransport):
    """A transport that can prepare for the next message (as SMTP sends its envelope ahead)."""

    def __init__(self, name: str, outcomes: list[Exception | None]) -> None:
        super().__init__(name, outcomes)
        self.told: list[str | None] = []  # what it was told before each send: the next recipient, or None

    def expect(self, upcoming: tuple[EmailMessage, str, str] | None) -> None:
        self.told.append(None if upcoming is None else upcoming[2])


def test_a_transport_is_told_of_the_next_message_only_when_it_is_that_message_s_first_choice():
    gmail = route(2, domains=("gmail.com",))
    routes = [route(1), gmail]
    transports = {1: Expecting("p1", []), 2: Expecting("p2", [])}
    failover = Failover(lambda r: transports[r.provider_id], NOW)

    def send(recipient: str, upcoming: str | None) -> None:
        after = None if upcoming is None else Upcoming(routes, EmailMessage(), "s@x.test", upcoming, upcoming)
        list(failover.send(routes, EmailMessage(), "s@x.test", recipient, recipient, after))

    send("a@x.test", "b@x.test")  # both through p1
    send("b@x.test", "c@gmail.com")  # the next one goes through p2
    send("c@gmail.com", None)  # the last of the batch
    assert (transports[1].told, transports[2].told) == (["b@x.test", None], [None])


def test_a_transport_whose_circuit_the_batch_dropped_is_not_told():
    # After repeated failures the batch skips p1, so the next message will not come to it.
    primary, backup = Expecting("p1", [TransientDeliveryError("down")] * CIRCUIT_THRESHOLD), Expecting("p2", [])
    routes = [route(1, priority=1), route(2, priority=2)]
    failover = Failover(lambda r: {1: primary, 2: backup}[r.provider_id], NOW)
    for i in range(CIRCUIT_THRESHOLD):
        list(failover.send(routes, EmailMessage(), "s@x.test", f"u{i}@x.test", f"k{i}",
                           Upcoming(routes, EmailMessage(), "s@x.test", f"u{i + 1}@x.test", f"k{i + 1}")))
    # Told before each of its failing sends (it was the first choice then), never after it was dropped.
    assert primary.told == [f"u{i + 1}@x.test" for i in range(CIRCUIT_THRESHOLD)]
    assert backup.told[-1] == f"u{CIRCUIT_THRESHOLD}@x.test" and len(primary.sent) == 0
