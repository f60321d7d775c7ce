"""A sequence's email results by step and variant: how many of its messages were
sent, delivered, opened, clicked, bounced, complained about and unsubscribed from.

Read from the events of the sequence's messages, whatever their source (our
tracking, providers' webhooks, SMTP replies), each message counted once per name:
a second open of the same email is not a second opener, a provider's retried
webhook is one delivery. Computed when asked, on the index of events by message;
a rollup can replace the query without changing what it answers.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from models import Event, Message, Sequence

COUNTED = ("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")


def step_counts(session: Session, sequence: Sequence) -> list[dict[str, Any]]:
    """One row per email step and variant, in step order: the variants the step
    defines, then any its messages carry that it no longer defines."""
    rows = session.execute(
        select(Message.step_id, Message.variant, Event.name, func.count(distinct(Event.message_id)))
        .join(Event, Event.message_id == Message.id)
        .where(Message.sequence_id == sequence.id, Message.account_id == sequence.account_id,
               Event.name.in_(COUNTED))
        .group_by(Message.step_id, Message.variant, Event.name))
    counts: dict[tuple[int | None, str | None], dict[str, int]] = defaultdict(dict)
    for step_id, variant, name, n in rows:
        counts[(step_id, variant or None)][name] = int(n)
    result = []
    for step in sorted(sequence.steps, key=lambda s: s.position):
        if step.type != "email":
            continue
        defined = [v.get("name") for v in step.config.get("variants") or []] or [None]
        seen = sorted({variant for (step_id, variant) in counts if step_id == step.id} - set(defined),
                      key=lambda v: (v is not None, v or ""))
        for variant in defined + seen:
            found = counts.get((step.id, variant), {})
            result.append({"step_id": step.id, "position": step.position, "variant": variant,
                           **{name: found.get(name, 0) for name in COUNTED}})
    return result
