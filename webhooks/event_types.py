"""The event types a subscription may ask for, and which recorded event is which.

An event subscription speaks its own names (``message.opened``), mapped here from
the one vocabulary events are recorded in (analytics.events). Any other recorded
name is the account's own; it is a ``conversion`` when it is the goal event of
one of the account's sequences (a sequence's ``settings.goal.event``).
"""
from __future__ import annotations

# Recorded name -> subscription event type.
FROM_RECORDED = {
    "sent": "message.sent",
    "delivered": "message.delivered",
    "deferred": "message.deferred",
    "rejected": "message.failed",
    "opened": "message.opened",
    "clicked": "message.clicked",
    "bounced": "message.bounced",
    "complained": "message.complained",
    "unsubscribed": "subscriber.unsubscribed",
}
CONVERSION = "conversion"
# Not a recorded event: read from the engine's step transitions (webhooks.event_feed).
COMPLETED = "enrollment.completed"
EVENT_TYPES = tuple(sorted({*FROM_RECORDED.values(), CONVERSION, COMPLETED}))


def type_of(name: str, goals: frozenset[str]) -> str | None:
    """The subscription event type of a recorded event named ``name``; None when
    no subscription can ask for it."""
    if name in FROM_RECORDED:
        return FROM_RECORDED[name]
    return CONVERSION if name in goals else None
