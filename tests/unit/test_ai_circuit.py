"""The AI endpoint's circuit breaker: closed, open for a cool-off, one probe."""
from __future__ import annotations

import threading

import pytest

from ai.circuit import CLOSED, HALF_OPEN, OPEN, Circuit, circuit_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_it_stays_closed_below_the_threshold(clock):
    circuit = Circuit(threshold=3, cool_off=30, clock=clock)
    circuit.failed()
    circuit.failed()
    assert circuit.state == CLOSED and circuit.allow() is None


def test_a_success_resets_the_count_of_consecutive_failures(clock):
    circuit = Circuit(threshold=3, cool_off=30, clock=clock)
    circuit.failed()
    circuit.failed()
    circuit.succeeded()
    circuit.failed()
    circuit.failed()
    assert circuit.state == CLOSED


def test_it_opens_at_the_threshold_and_refuses_for_the_cool_off(clock):
    circuit = Circuit(threshold=3, cool_off=30, clock=clock)
    for _ in range(3):
        circuit.failed()
    assert circuit.state == OPEN
    assert circuit.allow() == 30
    clock.now += 29
    assert circuit.allow() == pytest.approx(1)


def test_after_the_cool_off_one_probe_goes_through_and_its_success_closes(clock):
    circuit = Circuit(threshold=1, cool_off=30, clock=clock)
    circuit.failed()
    clock.now += 30
    assert circuit.allow() is None
    assert circuit.state == HALF_OPEN
    assert circuit.allow() is not None  # only one probe at a time
    circuit.succeeded()
    assert circuit.state == CLOSED and circuit.allow() is None


def test_a_failed_probe_opens_it_for_another_cool_off(clock):
    circuit = Circuit(threshold=5, cool_off=30, clock=clock)
    for _ in range(5):
        circuit.failed()
    clock.now += 30
    assert circuit.allow() is None
    circuit.failed()  # one failure is enough when half-open
    assert circuit.state == OPEN
    assert circuit.allow() == 30


def test_a_probe_that_never_reports_does_not_shut_the_circuit_for_good(clock):
    circuit = Circuit(threshold=1, cool_off=30, clock=clock)
    circuit.failed()
    clock.now += 30
    assert circuit.allow() is None  # the probe's thread dies without a word
    clock.now += 30
    assert circuit.allow() is None  # another call becomes the probe


def test_threads_failing_together_open_it_exactly_once_and_let_one_probe_through(clock):
    circuit = Circuit(threshold=50, cool_off=30, clock=clock)
    threads = [threading.Thread(target=lambda: [circuit.failed() for _ in range(10)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert circuit.state == OPEN and circuit.failures == 80
    clock.now += 30
    granted: list[float | None] = []
    threads = [threading.Thread(target=lambda: granted.append(circuit.allow())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert granted.count(None) == 1


def test_each_endpoint_has_one_breaker_per_process():
    assert circuit_for("http://model.internal/v1") is circuit_for("http://model.internal/v1/")
    assert circuit_for("http://model.internal/v1") is not circuit_for("http://other.internal/v1")


def test_it_refuses_a_threshold_below_one():
    with pytest.raises(ValueError):
        Circuit(threshold=0)
