"""Segment filters: validated (audience.segment_grammar), then compiled to ONE
``SELECT subscribers.id`` for one account, with no Python loop over subscribers.

Each leaf becomes a condition on the ``subscribers`` row: a JSON test of its
attributes or tags (audience.json_sql, spelled per backend when compiled), a
column comparison, or a correlated ``EXISTS`` on events, scores, enrollments or
topic subscriptions; ``all``/``any``/``not`` become AND/OR/NOT. Every condition
is a plain true or false, never NULL, so ``not`` is the exact complement.

Only ``active`` subscribers are members unless the filter has a ``status`` field
leaf somewhere, which then decides alone (docs/segments.md).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, and_, exists, false, func, literal, not_, or_, select, true

from audience import json_sql
from audience.errors import InvalidFilterError
from audience.segment_grammar import check_filter, names_status
from models import Enrollment, Event, Subscriber
from models.ml import SubscriberScore
from models.topic import Topic, TopicSubscription

RUNNING = ("active", "paused")


def validate_filter(filter: Any) -> dict[str, Any]:
    """The filter in normal form; InvalidFilterError names every bad node by its
    path inside the request (``filter.all.2.op``)."""
    node, errors = check_filter(filter)
    if errors or node is None:
        raise InvalidFilterError(errors or {"filter": ["Invalid filter."]})
    return node


def member_ids(account_id: int, filter: dict[str, Any], now: datetime) -> Select[Any]:
    """``SELECT subscribers.id`` of the account's subscribers matching ``filter``
    (validated here again, so a stored filter from an older grammar fails loudly),
    as of ``now`` for the leaves counting days back."""
    node = validate_filter(filter)
    conditions = [Subscriber.account_id == account_id, _condition(node, account_id, now)]
    if not names_status(node):
        conditions.append(Subscriber.status == "active")
    return select(Subscriber.id).where(*conditions)


def count_query(account_id: int, filter: dict[str, Any], now: datetime) -> Select[Any]:
    """``SELECT count(*)`` of the members (one scan, no rows to the client)."""
    return select(func.count()).select_from(member_ids(account_id, filter, now).subquery())


def _condition(node: dict[str, Any], account_id: int, now: datetime) -> ColumnElement[bool]:
    if "all" in node:
        children = [_condition(child, account_id, now) for child in node["all"]]
        return and_(true(), *children) if children else true()
    if "any" in node:
        return or_(false(), *[_condition(child, account_id, now) for child in node["any"]])
    if "not" in node:
        return not_(_condition(node["not"], account_id, now))
    kind = next(k for k in _LEAVES if k in node)
    return _LEAVES[kind](node, account_id, now)


# -- leaves -------------------------------------------------------------------------------


def _attribute(node: dict[str, Any], _account_id: int, _now: datetime) -> ColumnElement[bool]:
    key, op, value = node["attribute"], node["op"], node.get("value")
    if op == "exists":
        return json_sql.attribute_exists(key)
    if op == "eq":
        return json_sql.attribute_equals(key, value)
    if op == "ne":
        return not_(json_sql.attribute_equals(key, value))
    if op == "in":
        return or_(*[json_sql.attribute_equals(key, v) for v in value])
    if op == "contains":
        if isinstance(value, str):
            return or_(json_sql.attribute_list_has(key, value), json_sql.attribute_has_substring(key, value))
        return json_sql.attribute_list_has(key, value)
    return json_sql.attribute_compare(key, op, value)


def _tag(node: dict[str, Any], _account_id: int, _now: datetime) -> ColumnElement[bool]:
    return json_sql.has_tag(node["tag"])


def _events(name: str, now: datetime, within_days: int | None) -> Select[Any]:
    """The subscriber's events named ``name``, up to ``now`` and back ``within_days``:
    a range on ix_events_subscriber_name (subscriber_id, name, occurred_at).
    Events carry their subscriber's account, so the subscriber condition alone
    keeps other tenants out."""
    query = select(Event.id).where(Event.subscriber_id == Subscriber.id, Event.name == name,
                                   Event.occurred_at <= now)
    if within_days is not None:
        query = query.where(Event.occurred_at > now - timedelta(days=within_days))
    return query


def _event(node: dict[str, Any], _account_id: int, now: datetime) -> ColumnElement[bool]:
    events = _events(node["event"], now, node.get("within_days"))
    count = node.get("count_gte", 1)
    if count == 1:
        return exists(events)
    # Count at most ``count`` rows per subscriber: a heavy clicker costs no more than the bar.
    found = select(func.count()).select_from(events.limit(count).correlate(Subscriber).subquery())
    return found.scalar_subquery() >= count


def _engaged(name: str) -> Callable[[dict[str, Any], int, datetime], ColumnElement[bool]]:
    def condition(node: dict[str, Any], _account_id: int, now: datetime) -> ColumnElement[bool]:
        return exists(_events(name, now, node[f"{name}_within_days"]))
    return condition


_SCORE_COLUMNS = {"churn_risk": SubscriberScore.churn_risk, "engagement": SubscriberScore.engagement,
                  "best_send_hour": SubscriberScore.best_send_hour}
_COMPARE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}


def _score(node: dict[str, Any], account_id: int, _now: datetime) -> ColumnElement[bool]:
    """A subscriber never scored (no row, or that score null) matches no comparison."""
    column = _SCORE_COLUMNS[node["score"]]
    return exists(select(SubscriberScore.id).where(
        SubscriberScore.subscriber_id == Subscriber.id, SubscriberScore.account_id == account_id,
        column.is_not(None), _COMPARE[node["op"]](column, literal(node["value"], Float()))))


def _field(node: dict[str, Any], _account_id: int, _now: datetime) -> ColumnElement[bool]:
    field, op, value = node["field"], node["op"], node.get("value")
    if field == "created_at":
        return _COMPARE[op](Subscriber.created_at, datetime.fromisoformat(value))
    if field == "email_domain":
        matches = [Subscriber.email.like("%@" + _like_escape(v), escape="\\") for v in
                   (value if op == "in" else [value])]
        condition = or_(*matches)
        return not_(condition) if op == "ne" else condition
    column = Subscriber.timezone if field == "timezone" else Subscriber.status
    if op == "exists":
        return column.is_not(None)
    if op == "in":
        return column.in_(value)
    if op == "ne":  # a subscriber without a time zone is not in the one named
        return or_(column.is_(None), column != value)
    return and_(column.is_not(None), column == value)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _sequence(node: dict[str, Any], account_id: int, _now: datetime) -> ColumnElement[bool]:
    """``in``: an active or paused enrollment in the sequence; ``completed``: any run
    completed. Another account's sequence id matches no one."""
    statuses = RUNNING if node["status"] == "in" else ("completed",)
    return exists(select(Enrollment.id).where(
        Enrollment.subscriber_id == Subscriber.id, Enrollment.account_id == account_id,
        Enrollment.sequence_id == node["sequence"], Enrollment.status.in_(statuses)))


def _topic(node: dict[str, Any], account_id: int, _now: datetime) -> ColumnElement[bool]:
    return exists(select(TopicSubscription.id).join(Topic, Topic.id == TopicSubscription.topic_id).where(
        TopicSubscription.subscriber_id == Subscriber.id, TopicSubscription.status == "subscribed",
        Topic.account_id == account_id, Topic.key == node["topic"]))


_LEAVES: dict[str, Callable[[dict[str, Any], int, datetime], ColumnElement[bool]]] = {
    "attribute": _attribute, "tag": _tag, "event": _event,
    "opened_within_days": _engaged("opened"), "clicked_within_days": _engaged("clicked"),
    "score": _score, "field": _field, "sequence": _sequence, "topic": _topic,
}
