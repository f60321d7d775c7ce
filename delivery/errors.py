"""Delivery failures sorted the way failover needs them: try again later (transient)
or never for this recipient (permanent)."""
from __future__ import annotations

from core.reasons import printable


class DeliveryError(Exception):
    """A provider did not accept a message."""

    permanent = False
    in_doubt = False
    throttled = False  # the provider asks us to slow down: it is healthy, the message is not at fault
    suppresses = False  # the address itself is bad: suppress it (a hard bounce)

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        # A provider's own words are quoted here and recorded with a whole group of
        # outcomes: a NUL in them must not make the group's transaction fail.
        super().__init__(printable(message, None))
        self.retry_after = retry_after


class TransientDeliveryError(DeliveryError):
    """Connection refused, timeout, 4xx: the same message may succeed later."""


class ThrottledError(TransientDeliveryError):
    """The provider is rate-limiting us (429, SES throttling): it is healthy and
    the message did nothing wrong, so this counts against no circuit, pauses the
    provider until ``retry_after``, and a message every provider throttled is held
    without using one of its attempts (delivery.sender.deliver)."""

    throttled = True


class UnconfirmedDeliveryError(TransientDeliveryError):
    """The whole message reached the provider (the SMTP final dot, the HTTP request
    body) and then its answer was lost: a timeout, a reset, a garbled reply. The
    provider may have taken it, so sending it again at once, or through another
    provider, could deliver it twice: failover stops, and the message is deferred
    in doubt (delivery.sender.hold_in_doubt: reconciled by the provider's events
    where it reports them, sent again at its retry otherwise)."""

    in_doubt = True


class PermanentDeliveryError(DeliveryError):
    """The recipient is refused (unknown mailbox, 5xx): retrying cannot help."""

    permanent = True
    suppresses = True


class RejectedMessageError(PermanentDeliveryError):
    """This message is refused for good (its content, its size), not the address:
    the message fails, and the recipient stays on the list for the next one."""

    suppresses = False


class HeldError(TransientDeliveryError):
    """Not attempted: a limit (a provider's send rate, a warming cap) holds the
    message until ``retry_after``. It is not a failure, so it costs the message no
    attempt and counts against no provider's circuit."""
