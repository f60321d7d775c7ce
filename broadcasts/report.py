"""What GET /broadcasts/{id} shows of a broadcast's sending: counts per variant,
from its messages (their status) and the events recorded for them, both through
the partial index of broadcast messages."""
from __future__ import annotations


from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from models import Broadcast, Event, Message

EVENT_COUNTS = ("delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
STATUS_COUNTS = {"queued": "queued", "deferred": "queued", "sending": "queued", "sent": "sent", "failed": "failed",
                 "suppressed": "suppressed"}
HELD = "held"  # the rest of a subject test's audience, before the winner is known


def counts(session: Session, broadcast: Broadcast) -> dict[str, dict[str, int]]:
    """``{variant name (or "default", or "held"): {queued, sent, failed, suppressed, delivered, ...}}``."""
    def label(variant: str | None) -> str:
        if variant is not None:
            return variant
        return HELD if broadcast.status == "testing" else "default"

    out: dict[str, dict[str, int]] = {}

    def row(name: str) -> dict[str, int]:
        return out.setdefault(name, {k: 0 for k in ("queued", "sent", "failed", "suppressed", *EVENT_COUNTS)})

    for variant in [v["name"] for v in broadcast.variants or []]:
        row(variant)
    of_broadcast = Message.broadcast_id == broadcast.id
    for variant, status, n in session.execute(select(Message.variant, Message.status, func.count())
                                              .where(of_broadcast).group_by(Message.variant, Message.status)):
        row(label(variant))[STATUS_COUNTS.get(status, status)] += int(n)
    for variant, name, n in session.execute(
            select(Message.variant, Event.name, func.count(distinct(Event.message_id)))
            .join(Event, Event.message_id == Message.id)
            .where(of_broadcast, Event.account_id == broadcast.account_id, Event.name.in_(EVENT_COUNTS))
            .group_by(Message.variant, Event.name)):
        row(label(variant))[name] += int(n)
    return out
