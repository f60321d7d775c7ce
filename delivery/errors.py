"""Delivery failures sorted the way failover needs them: try again later (transient)
or never for this recipient (permanent)."""
from __future__ import annotations


class DeliveryError(Exception):
    """A provider did not accept a message."""

    permanent = False

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientDeliveryError(DeliveryError):
    """Connection refused, timeout, 4xx: the same message may succeed later."""


class PermanentDeliveryError(DeliveryError):
    """The recipient is refused (unknown mailbox, 5xx): retrying cannot help."""

    permanent = True


class HeldError(TransientDeliveryError):
    """Not attempted: a limit (a provider's send rate, a warming cap) holds the
    message until ``retry_after``. It is not a failure, so it costs the message no
    attempt and counts against no provider's circuit."""
