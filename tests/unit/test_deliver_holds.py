"""delivery.sender.deliver: a message that no provider refused for its own sake
(one throttled us, the next was held by its warming cap) is held, keeping its
attempts, rather than deferred as a failure."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

from core.errors import ProviderBusyError
from delivery.errors import HeldError, ThrottledError
from delivery.routing import Failover, Route
from delivery.sender import Outgoing, deliver

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)


class Throttling:
    name = "first"

    def send(self, message: EmailMessage, sender: str, recipient: str) -> str:
        raise ThrottledError("first rate limit (429)", retry_after=30.0)

    def close(self) -> None:
        pass


class WarmingCapSpent:
    """The warming gate's answer once the day's cap is used: no failover (stop)."""

    def admit(self, route: Route, recipient: str) -> None:
        if route.name == "warming":
            raise ProviderBusyError(120.0, "warming cap for today is used", stop=True)

    def close(self) -> None:
        pass


def test_throttled_then_held_by_a_warming_cap_is_held_not_deferred():
    routes = [Route(provider_id=1, name="first", kind="smtp", priority=1),
              Route(provider_id=2, name="warming", kind="smtp", priority=2)]
    failover = Failover(lambda route: Throttling(), T0, [WarmingCapSpent()])
    item = Outgoing(7, 1, 3, 1, "1:1:a", "s@x.test", "r@x.test", EmailMessage(), T0 + timedelta(minutes=5))
    [outcome] = deliver([item], failover, {1: routes}, clock=lambda: T0)
    assert [t.provider for t in outcome.tries] == ["first", "none"]
    assert isinstance(outcome.error, HeldError) and outcome.error.retry_after == 30.0
