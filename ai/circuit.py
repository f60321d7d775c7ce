"""A circuit breaker on the AI endpoint: after ``threshold`` consecutive failures
(429s, 5xx, timeouts, connection errors, answers that are not chat completions;
never a 4xx refusal, which proves the server is up) it opens for ``cool_off``
seconds, during which calls fail at once instead of holding an ``ai`` worker
thread on a server that is down; then one probe goes through (half-open), and
its success closes the circuit, its failure opens it again.

Each ``ai`` worker process has its own breaker (``circuit_for`` keeps one per
base URL for the process), shared by its threads under a lock. That is enough:
the breaker's job is to stop this process's threads from queueing on a dead
server, and every process learns that within ``threshold`` calls of its own; a
shared breaker (in Redis or PostgreSQL) would add a round trip to every call and
a new way to fail, to save each of a handful of processes a few failed calls.
A draft that meets an open circuit is retried later by its task, not lost.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
DEFAULT_THRESHOLD = 5
DEFAULT_COOL_OFF = 30.0


class Circuit:
    """Thread-safe; ``clock`` is monotonic seconds (injected by tests)."""

    def __init__(self, *, threshold: int = DEFAULT_THRESHOLD, cool_off: float = DEFAULT_COOL_OFF,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if threshold < 1 or cool_off <= 0:
            raise ValueError("a circuit needs a threshold of 1 or more and a positive cool-off")
        self.threshold = threshold
        self.cool_off = cool_off
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def failures(self) -> int:
        with self._lock:
            return self._failures

    def allow(self) -> float | None:
        """None: go ahead (closed, or this call is the half-open probe). Otherwise
        the seconds to wait before the circuit may let a call through."""
        with self._lock:
            now = self._clock()
            if self._state == CLOSED:
                return None
            if self._state == OPEN:
                remaining = self._opened_at + self.cool_off - now
                if remaining > 0:
                    return remaining
                self._state = HALF_OPEN
                self._probe_started = now
                return None
            # Half-open with a probe out. A probe that never reports (its thread
            # died) must not keep the circuit shut for good: after a cool-off,
            # another call becomes the probe.
            assert self._probe_started is not None
            remaining = self._probe_started + self.cool_off - now
            if remaining > 0:
                return remaining
            self._probe_started = now
            return None

    def succeeded(self) -> None:
        """The server answered: close the circuit and forget past failures."""
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._probe_started = None

    def failed(self) -> None:
        """The server did not answer usefully; open at the threshold, or at once
        when the half-open probe failed."""
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.threshold:
                self._state = OPEN
                self._opened_at = self._clock()
                self._probe_started = None


_circuits: dict[str, Circuit] = {}
_circuits_lock = threading.Lock()


def circuit_for(base_url: str) -> Circuit:
    """This process's breaker for one AI endpoint, made on first use."""
    key = base_url.rstrip("/")
    with _circuits_lock:
        circuit = _circuits.get(key)
        if circuit is None:
            circuit = _circuits[key] = Circuit()
        return circuit
