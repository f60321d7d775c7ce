"""A circuit past its cool-down is half-open: shown so, and given one trial per
batch rather than a threshold's worth of failures."""
from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from delivery.errors import TransientDeliveryError
from delivery.routing import CIRCUIT_COOLDOWN, Failover, circuit_as_seen
from tests.unit.test_routing import NOW, FakeTransport, route


def test_an_open_circuit_past_its_cooldown_is_shown_half_open():
    assert circuit_as_seen("open", NOW, NOW + CIRCUIT_COOLDOWN - timedelta(seconds=1)) == "open"
    assert circuit_as_seen("open", NOW, NOW + CIRCUIT_COOLDOWN) == "half_open"
    assert circuit_as_seen("closed", None, NOW) == "closed"


def test_a_half_open_provider_that_fails_its_trial_is_dropped_for_the_rest_of_the_batch():
    still_down = FakeTransport("p1", [TransientDeliveryError("down")] * 100)
    backup = FakeTransport("p2", [])
    failover = Failover(lambda r: {1: still_down, 2: backup}[r.provider_id], NOW + CIRCUIT_COOLDOWN)
    routes = [route(1, priority=1, circuit_state="open", circuit_opened_at=NOW), route(2, priority=2)]
    for i in range(10):
        list(failover.send(routes, EmailMessage(), "s@x.test", f"u{i}@x.test", f"k{i}"))
    assert len(still_down.outcomes) == 99, "one trial, not five"
    assert len(backup.sent) == 10


def test_a_half_open_provider_that_passes_its_trial_takes_the_batch_again():
    recovered = FakeTransport("p1", [])
    backup = FakeTransport("p2", [])
    failover = Failover(lambda r: {1: recovered, 2: backup}[r.provider_id], NOW + CIRCUIT_COOLDOWN)
    routes = [route(1, priority=1, circuit_state="open", circuit_opened_at=NOW), route(2, priority=2)]
    for i in range(5):
        list(failover.send(routes, EmailMessage(), "s@x.test", f"u{i}@x.test", f"k{i}"))
    assert len(recovered.sent) == 5 and backup.sent == []
