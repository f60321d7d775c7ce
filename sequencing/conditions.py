"""Judging a condition step against what is known about one enrollment.

The engine gathers the facts in bulk (events, tags, attributes) and these pure
functions decide; that keeps "why did this branch go that way" answerable in one file.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Facts:
    """What conditions may look at for one enrollment."""

    tags: list[str]
    attributes: dict[str, Any]
    # message ids of this enrollment's emails, by step position
    messages_by_step: dict[int, int]
    # event names seen per message id (opened, clicked, ...)
    message_events: dict[int, set[str]] = field(default_factory=dict)
    # custom events of the subscriber: name -> occurrence times
    events: dict[str, list[datetime]] = field(default_factory=dict)
    # the subscriber's learned scores (sequencing.best_time); empty when not scored
    scores: Mapping[str, Any] = field(default_factory=dict)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        return actual is not None
    if actual is None:
        return op == "ne"
    try:
        if op == "eq":
            return bool(actual == expected)
        if op == "ne":
            return bool(actual != expected)
        if op == "contains":
            return expected in actual if isinstance(actual, (list, str)) else False
        if op in ("gt", "gte", "lt", "lte"):
            a, b = float(actual), float(expected)
            return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
    except (TypeError, ValueError):
        return False
    return False


def message_step_for(condition: dict[str, Any], position: int, facts: Facts) -> int | None:
    """The email step a condition refers to: its ``step``, else the latest email before it."""
    if "step" in condition:
        return int(condition["step"])
    earlier = [p for p in facts.messages_by_step if p < position]
    return max(earlier) if earlier else None


def evaluate(condition: dict[str, Any], position: int, facts: Facts, now: datetime,
             since: datetime | None = None) -> bool:
    kind = condition.get("type")
    if kind in ("opened", "clicked"):
        step = message_step_for(condition, position, facts)
        message_id = facts.messages_by_step.get(step) if step is not None else None
        if message_id is None:
            return False
        seen = facts.message_events.get(message_id, set())
        # a click implies the email was opened, even when images were blocked
        return kind in seen or (kind == "opened" and "clicked" in seen)
    if kind == "has_tag":
        return condition.get("tag") in facts.tags
    if kind == "attribute":
        return _compare(condition.get("op", "eq"), facts.attributes.get(condition["name"]), condition.get("value"))
    if kind == "event":
        times = facts.events.get(condition["name"], [])
        within = condition.get("within_seconds")
        if since is not None:
            times = [t for t in times if t >= since]
        if within is not None:
            times = [t for t in times if (now - t).total_seconds() <= float(within)]
        return bool(times)
    if kind == "score":
        # No score yet (never scored, or scored before the subscriber existed): false.
        actual = facts.scores.get(condition["score"])
        return actual is not None and _compare(condition["op"], actual, condition["value"])
    return False
