"""A broadcast's subject test: after ``wait_seconds``, the winner among the
variants sent to the test share, by the experiments' decision rule
(analytics.experiments.decide: mSPRT, every pair compared, Bonferroni) on
``test.metric`` (distinct messages opened, or clicked, over messages sent).

A broadcast decides once, when its wait ends, not continuously; so the rule's
``min_per_variant`` guard against a lucky first batch is lowered to
``MIN_PER_VARIANT``. When the rule declares no winner (no difference, or too few
sends to tell), the first variant goes to the rest, and the stored decision says
which of the two it was.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from analytics.experiments import DEFAULTS, STATUS_NAMES, decide
from models import Broadcast, Event, Message

MIN_PER_VARIANT = 50


def test_counts(session: Session, broadcast: Broadcast, metric: str) -> dict[str, dict[str, int]]:
    """Per variant of the test share: messages sent, and those with ``metric``."""
    counts = {v["name"]: {"sent": 0, "successes": 0} for v in broadcast.variants or []}
    of_test = (Message.broadcast_id == broadcast.id, Message.variant.is_not(None))
    for variant, sent in session.execute(select(Message.variant, func.count()).where(
            *of_test, Message.status == "sent").group_by(Message.variant)):
        if variant in counts:
            counts[variant]["sent"] = int(sent)
    for variant, successes in session.execute(
            select(Message.variant, func.count(distinct(Event.message_id)))
            .join(Event, Event.message_id == Message.id)
            .where(*of_test, Event.name == metric, Event.account_id == broadcast.account_id)
            .group_by(Message.variant)):
        if variant in counts:
            counts[variant]["successes"] = min(int(successes), counts[variant]["sent"])
    return counts


def pick_winner(session: Session, broadcast: Broadcast) -> dict[str, Any]:
    """The decision: ``{"winner", "status": decided | no_difference | running,
    "metric", "counts"}``; ``running`` means too few sends to tell."""
    metric = (broadcast.test or {}).get("metric", "opened")
    counts = test_counts(session, broadcast, metric)
    names = list(counts)
    status, index = decide([counts[n]["sent"] for n in names], [counts[n]["successes"] for n in names],
                           confidence=DEFAULTS["confidence"], min_per_variant=MIN_PER_VARIANT)
    decided = int(index) >= 0
    return {"winner": names[int(index)] if decided else names[0], "status": STATUS_NAMES[int(status)],
            "chosen": "by the decision rule" if decided else "the first variant: no winner could be told apart",
            "metric": metric, "confidence": DEFAULTS["confidence"], "counts": counts}
