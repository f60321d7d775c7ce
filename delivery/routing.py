"""Choosing providers for one message, and failing over between them.

Order: providers whose ``domains`` name the recipient's domain first (per-domain
rules such as gmail.com -> provider B), then providers without domain rules, then
the remaining domain-ruled ones as a last resort. Within a group, lower
``priority`` first; equal priorities share traffic by ``weight``, drawn
deterministically from the message key so a retry tries the same order.

A provider is skipped while its circuit is open (until the cool-down has passed,
then one trial is allowed: half-open), while a 429's Retry-After holds, and while
its send-rate limit is booked beyond a short wait (delivery.pacing). A transient
error moves on to the next provider; a permanent one (this recipient is bad)
stops: another provider would refuse the same mailbox. So does an error that
leaves the message in doubt (UnconfirmedDeliveryError: it was handed over whole
and the answer was lost), which may mean it was taken. A message that no provider
could even be tried for because of rate limits is held (HeldError), not failed.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

from core.errors import ProviderBusyError
from delivery.errors import DeliveryError, HeldError, TransientDeliveryError

log = logging.getLogger(__name__)

CIRCUIT_THRESHOLD = 5  # consecutive transient failures that open a circuit
CIRCUIT_COOLDOWN = timedelta(seconds=60)
LIMIT_UNCHECKED_WAIT = 30.0  # seconds a message waits when its rate or warming limit could not be checked


class Transport(Protocol):
    name: str

    def send(self, message: EmailMessage, sender: str, recipient: str) -> str: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Route:
    """A provider as the router sees it for one batch (``provider_id`` None is the
    default SMTP provider from the environment)."""

    provider_id: int | None
    name: str
    kind: str
    config: dict[str, Any] = field(repr=False, hash=False, compare=False, default_factory=dict)
    priority: int = 100
    weight: int = 1
    domains: tuple[str, ...] = ()
    circuit_state: str = "closed"
    circuit_opened_at: datetime | None = None
    paused_until: datetime | None = None
    max_per_second: float | None = None


@dataclass(frozen=True)
class Try:
    provider_id: int | None
    provider: str
    error: DeliveryError | None


def usable(route: Route, now: datetime) -> bool:
    if route.paused_until is not None and now < route.paused_until:
        return False
    if route.circuit_state == "open" and route.circuit_opened_at is not None:
        return now - route.circuit_opened_at >= CIRCUIT_COOLDOWN
    return True


def circuit_as_seen(state: str, opened_at: datetime | None, now: datetime) -> str:
    """The state an operator should see: an open circuit whose cool-down has passed
    is ``half_open`` (traffic is being tried again), though the row still says
    ``open`` until a success closes it or a failure restarts the cool-down."""
    if state == "open" and opened_at is not None and now - opened_at >= CIRCUIT_COOLDOWN:
        return "half_open"
    return state


def _draw(key: str, route: Route) -> float:
    digest = hashlib.sha256(f"{key}:{route.provider_id}:{route.name}".encode()).digest()
    u = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)
    return u ** (1.0 / max(route.weight, 1))  # weighted order (Efraimidis-Spirakis)


def order(routes: list[Route], recipient: str, key: str) -> list[Route]:
    if len(routes) < 2:  # nothing to rank: spares each email of the usual one-provider account a hash
        return list(routes)
    domain = recipient.rsplit("@", 1)[-1].lower()

    def rank(route: Route) -> tuple[int, int, float]:
        group = 0 if domain in route.domains else (1 if not route.domains else 2)
        return group, route.priority, -_draw(key, route)

    return sorted(routes, key=rank)


def next_opening(routes: list[Route], now: datetime) -> float:
    """Seconds until some provider may be tried again (for the retry of a message
    that found every circuit open)."""
    waits = []
    for r in routes:
        if r.paused_until is not None and r.paused_until > now:
            waits.append((r.paused_until - now).total_seconds())
        elif r.circuit_state == "open" and r.circuit_opened_at is not None:
            waits.append((r.circuit_opened_at + CIRCUIT_COOLDOWN - now).total_seconds())
    return max(min(waits), 1.0) if waits else 60.0


@dataclass(frozen=True)
class Upcoming:
    """The message a batch will send after the current one, so that a transport
    that can prepare for it (SMTP sends its envelope ahead) is told."""

    routes: list[Route]
    message: EmailMessage
    sender: str
    recipient: str
    key: str


class Gate(Protocol):
    """A limit consulted before each try (delivery.pacing's rate limits, warming's
    caps): returns to allow it, raises ProviderBusyError to refuse it."""

    def admit(self, route: Route, recipient: str) -> None: ...

    def close(self) -> None: ...


class Failover:
    """Sends each message through the first provider that takes it, reusing one
    open transport per provider for the whole batch."""

    def __init__(self, build: Callable[[Route], Transport], now: datetime, gates: Sequence[Gate] = ()) -> None:
        self._build = build
        self._now = now
        self._gates = tuple(gates)
        self._open: dict[Route, Transport] = {}
        self._failures: dict[Route, int] = {}
        # Retry-After answers seen in this batch, before they reach the provider rows.
        self._paused: dict[Route, datetime] = {}

    def _transport(self, route: Route) -> Transport:
        if route not in self._open:
            self._open[route] = self._build(route)
        return self._open[route]

    def _skipped(self, route: Route) -> bool:
        # Within a batch, a provider failing again and again is dropped without
        # waiting for the recorded circuit to open; a half-open one (its circuit
        # open, the cool-down over) gets one trial, not a threshold's worth.
        allowed = 1 if route.circuit_state == "open" else CIRCUIT_THRESHOLD
        return (self._paused.get(route, self._now) > self._now
                or self._failures.get(route, 0) >= allowed)

    def _candidates(self, routes: list[Route], recipient: str, key: str) -> list[Route]:
        return [r for r in order(routes, recipient, key) if usable(r, self._now) and not self._skipped(r)]

    def _tell(self, transport: Transport, route: Route, upcoming: Upcoming | None) -> None:
        """Tell a transport that can use it which message it will most likely be
        given next: the upcoming one, when its first choice is this same route."""
        expect = getattr(transport, "expect", None)
        if expect is None:
            return
        if upcoming is not None and self._candidates(upcoming.routes, upcoming.recipient, upcoming.key)[:1] == [route]:
            expect((upcoming.message, upcoming.sender, upcoming.recipient))
        else:
            expect(None)

    def send(self, routes: list[Route], message: EmailMessage, sender: str, recipient: str,
             key: str, upcoming: Upcoming | None = None) -> Iterator[tuple[Try, str | None]]:
        """Yield each try and, for the one that succeeded, the provider's message id.
        Stops after a success or a permanent error. ``upcoming``: the message
        the batch sends next, if any (see ``_tell``)."""
        if not routes:
            yield Try(None, "none", HeldError(
                "no email provider configured: set SMTP_HOST or add one at /api/v1/providers", retry_after=300)), None
            return
        candidates = self._candidates(routes, recipient, key)
        if not candidates:
            seen = [replace(r, paused_until=self._paused[r]) if r in self._paused else r for r in routes]
            wait = next_opening(seen, self._now)
            yield Try(None, "none", HeldError("no provider available: circuits open or paused",
                                              retry_after=wait)), None
            return
        busy: list[float] = []
        for route in candidates:
            try:
                for gate in self._gates:
                    gate.admit(route, recipient)
            except ProviderBusyError as exc:
                busy.append(exc.retry_after)
                if exc.stop:
                    yield Try(None, "none", HeldError(str(exc), retry_after=max(exc.retry_after, 1.0))), None
                    return
                continue
            except Exception as exc:  # noqa: BLE001 - a limit that cannot be checked (its write failed)
                # holds this message untried instead of sinking the rest of the batch,
                # which would wait out its lease and come back marked in doubt.
                log.warning("a sending limit could not be checked", extra={"provider": route.name,
                                                                           "error": type(exc).__name__})
                yield Try(None, "none", HeldError(f"a sending limit could not be checked: {type(exc).__name__}",
                                                  retry_after=LIMIT_UNCHECKED_WAIT)), None
                return
            try:
                transport = self._transport(route)
                self._tell(transport, route, upcoming)
                provider_id = transport.send(message, sender, recipient)
            except DeliveryError as exc:
                yield Try(route.provider_id, route.name, exc), None
                if exc.permanent:
                    return
                if not exc.throttled:  # a provider slowing us down is healthy: its pause is enough
                    self._failures[route] = self._failures.get(route, 0) + 1
                if exc.retry_after is not None:
                    self._paused[route] = self._now + timedelta(seconds=exc.retry_after)
                if exc.in_doubt:
                    return  # the provider may have taken it: another one now could deliver it twice
                continue
            except Exception as exc:  # a provider bug must not stop the batch
                yield Try(route.provider_id, route.name, TransientDeliveryError(f"{type(exc).__name__}: {exc}")), None
                self._failures[route] = self._failures.get(route, 0) + 1
                continue
            self._failures[route] = 0
            yield Try(route.provider_id, route.name, None), provider_id
            return
        if busy and len(busy) == len(candidates):
            yield Try(None, "none", HeldError("every provider is at its send-rate limit",
                                              retry_after=max(min(busy), 1.0))), None

    def close(self) -> None:
        for gate in self._gates:
            gate.close()
        for transport in self._open.values():
            try:
                transport.close()
            except Exception:  # closing is best effort
                pass
        self._open.clear()
