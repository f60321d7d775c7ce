"""Errors raised in one domain package and understood in another: a field's value
the API answers 422 for (audience, sequencing, warming), and a send limit that
holds a provider (warming's cap refusing through delivery.routing's gates)."""
from __future__ import annotations


class InvalidFieldError(ValueError):
    """One field's value is unusable; ``field`` names it (``tags.2``, ``attributes.plan``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ProviderBusyError(Exception):
    """A limit refuses this provider for now (delivery.routing's gates): its rate is
    booked beyond the wait a batch accepts, or its warming cap is spent. ``stop``
    forbids failing over to another provider (a warming plan's overflow stays with
    the warming provider)."""

    def __init__(self, retry_after: float, reason: str | None = None, stop: bool = False) -> None:
        super().__init__(reason or f"send rate limit: next free slot in {retry_after:.1f} s")
        self.retry_after = retry_after
        self.stop = stop
