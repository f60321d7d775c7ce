"""A small audience for segment tests: two accounts, one of each kind of fact a
filter leaf reads, and for every leaf the members worked out by hand.

The other account's subscriber matches nearly every leaf (same address, plan, tag,
events, score, topic key), so a query that forgets the account shows it at once.
Written through a plain Session, so the same rows serve PostgreSQL and SQLite.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from models import Enrollment, Event, Sequence, Subscriber
from models.ml import SubscriberScore
from models.topic import Topic, TopicSubscription

ANN, BOB, CY, DEE = "ann@example.com", "bob@example.org", "cy@example.com", "dee@sub.example.com"


def build(session: Session, account_id: int, other_account_id: int, now: datetime) -> dict[str, Any]:
    """Write the audience; returns the ids the expectations need."""
    def person(account: int, email: str, created_days: int, **fields: Any) -> Subscriber:
        row = Subscriber(account_id=account, email=email, created_at=now - timedelta(days=created_days),
                         **{"attributes": {}, "tags": [], **fields})
        session.add(row)
        return row

    ann = person(account_id, ANN, 100, timezone="Europe/Berlin", tags=["vip"],
                 attributes={"plan": "pro", "age": 30, "langs": ["en", "fr"], "note": "hello world", "beta": True})
    bob = person(account_id, BOB, 10, attributes={"plan": "free", "age": "31", "beta": False})
    cy = person(account_id, CY, 20, timezone="America/New_York", tags=["vip", "beta"],
                attributes={"plan": ["pro"], "age": 45.5})
    dee = person(account_id, DEE, 5, status="unsubscribed", tags=["vip"], attributes={"plan": "pro"})
    twin = person(other_account_id, ANN, 100, timezone="Europe/Berlin", tags=["vip"],
                  attributes={"plan": "pro", "age": 30, "langs": ["en", "fr"], "note": "hello world", "beta": True})
    seq = Sequence(account_id=account_id, name="S1", status="active", settings={})
    other_seq = Sequence(account_id=other_account_id, name="S1", status="active", settings={})
    session.add_all([seq, other_seq])
    session.flush()

    def events(who: Subscriber, name: str, *days_ago: float) -> None:
        session.add_all([Event(account_id=who.account_id, subscriber_id=who.id, name=name,
                               occurred_at=now - timedelta(days=d)) for d in days_ago])

    events(ann, "clicked", 5)
    events(ann, "purchase", 1, 2, 3)
    events(bob, "opened", 2)
    events(bob, "clicked", 40)
    events(bob, "purchase", 20)
    events(bob, "opened", -1)  # in the future of ``now``: counted by no leaf
    events(twin, "clicked", 1)
    events(twin, "opened", 1)
    events(twin, "purchase", 1, 1, 1, 1, 1)
    session.add_all([
        SubscriberScore(account_id=account_id, subscriber_id=ann.id, churn_risk=0.9, engagement=0.2,
                        best_send_hour=9, scored_at=now),
        SubscriberScore(account_id=account_id, subscriber_id=bob.id, churn_risk=0.1, engagement=None,
                        best_send_hour=None, scored_at=now),
        SubscriberScore(account_id=other_account_id, subscriber_id=twin.id, churn_risk=0.95, engagement=0.1,
                        best_send_hour=9, scored_at=now),
    ])

    def enrolled(who: Subscriber, sequence: Sequence, status: str) -> None:
        session.add(Enrollment(account_id=who.account_id, sequence_id=sequence.id, subscriber_id=who.id,
                               status=status, next_run_at=now, enrolled_at=now, state={}))

    enrolled(ann, seq, "active")
    enrolled(bob, seq, "completed")
    enrolled(twin, other_seq, "active")
    news = Topic(account_id=account_id, key="news", name="News")
    other_news = Topic(account_id=other_account_id, key="news", name="News")
    session.add_all([news, other_news])
    session.flush()
    session.add_all([
        TopicSubscription(account_id=account_id, topic_id=news.id, subscriber_id=ann.id, status="subscribed"),
        TopicSubscription(account_id=account_id, topic_id=news.id, subscriber_id=bob.id, status="left"),
        TopicSubscription(account_id=other_account_id, topic_id=other_news.id, subscriber_id=twin.id,
                          status="subscribed"),
    ])
    session.flush()
    return {"sequence": seq.id, "other_sequence": other_seq.id, "ids": {
        ANN: ann.id, BOB: bob.id, CY: cy.id, DEE: dee.id}, "twin": twin.id}


def cases(rows: dict[str, Any], now: datetime) -> list[tuple[dict[str, Any], set[str]]]:
    """(filter, the account's members by address) for every leaf kind and op."""
    seq = rows["sequence"]
    return [
        ({"attribute": "plan", "op": "eq", "value": "pro"}, {ANN}),  # cy's ["pro"] is a list, dee unsubscribed
        ({"attribute": "plan", "op": "ne", "value": "pro"}, {BOB, CY}),
        ({"attribute": "beta", "op": "eq", "value": True}, {ANN}),
        ({"attribute": "beta", "op": "eq", "value": False}, {BOB}),
        ({"attribute": "age", "op": "eq", "value": 30.0}, {ANN}),  # a number equals itself as float
        ({"attribute": "age", "op": "gt", "value": 30}, {CY}),  # bob's "31" is a string
        ({"attribute": "age", "op": "gte", "value": 30}, {ANN, CY}),
        ({"attribute": "age", "op": "lte", "value": 45.5}, {ANN, CY}),
        ({"attribute": "age", "op": "lt", "value": "4"}, {BOB}),  # strings compare as strings: "31" < "4"
        ({"attribute": "plan", "op": "in", "value": ["free", "gold"]}, {BOB}),
        ({"attribute": "langs", "op": "contains", "value": "fr"}, {ANN}),
        ({"attribute": "note", "op": "contains", "value": "o wor"}, {ANN}),
        ({"attribute": "plan", "op": "contains", "value": "pro"}, {ANN, CY}),  # a substring, a list item
        ({"attribute": "age", "op": "exists"}, {ANN, BOB, CY}),
        ({"attribute": "langs", "op": "exists"}, {ANN}),
        ({"tag": "vip"}, {ANN, CY}),
        ({"tag": "beta"}, {CY}),
        ({"event": "purchase"}, {ANN, BOB}),
        ({"event": "purchase", "count_gte": 3, "within_days": 10}, {ANN}),
        ({"event": "purchase", "count_gte": 4}, set()),
        ({"event": "purchase", "within_days": 15}, {ANN}),
        ({"opened_within_days": 7}, {BOB}),  # bob's future open does not count
        ({"clicked_within_days": 30}, {ANN}),
        ({"clicked_within_days": 60}, {ANN, BOB}),
        ({"score": "churn_risk", "op": "gt", "value": 0.5}, {ANN}),
        ({"score": "churn_risk", "op": "lte", "value": 0.5}, {BOB}),  # cy has no score: never matches
        ({"score": "engagement", "op": "lt", "value": 0.5}, {ANN}),  # bob's engagement is null
        ({"score": "engagement", "op": "ne", "value": 0.5}, {ANN}),
        ({"score": "best_send_hour", "op": "eq", "value": 9}, {ANN}),
        ({"field": "email_domain", "op": "eq", "value": "Example.com"}, {ANN, CY}),  # not sub.example.com
        ({"field": "email_domain", "op": "ne", "value": "example.com"}, {BOB}),
        ({"field": "email_domain", "op": "in", "value": ["example.org", "sub.example.com"]}, {BOB}),
        ({"field": "timezone", "op": "eq", "value": "Europe/Berlin"}, {ANN}),
        ({"field": "timezone", "op": "ne", "value": "Europe/Berlin"}, {BOB, CY}),
        ({"field": "timezone", "op": "exists"}, {ANN, CY}),
        ({"field": "status", "op": "eq", "value": "unsubscribed"}, {DEE}),
        ({"field": "status", "op": "in", "value": ["active", "unsubscribed"]}, {ANN, BOB, CY, DEE}),
        ({"field": "created_at", "op": "lt", "value": (now - timedelta(days=50)).isoformat()}, {ANN}),
        ({"field": "created_at", "op": "gte", "value": (now - timedelta(days=15)).isoformat()}, {BOB}),
        ({"sequence": seq, "status": "in"}, {ANN}),
        ({"sequence": seq, "status": "completed"}, {BOB}),
        ({"sequence": rows["other_sequence"], "status": "in"}, set()),  # another account's sequence
        ({"topic": "news"}, {ANN}),  # bob left it
        ({"not": {"tag": "vip"}}, {BOB}),
        ({"not": {"attribute": "age", "op": "gt", "value": 30}}, {ANN, BOB}),
        ({"any": [{"tag": "vip"}, {"opened_within_days": 7}]}, {ANN, BOB, CY}),
        ({"all": []}, {ANN, BOB, CY}),
        ({"all": [{"attribute": "plan", "op": "eq", "value": "pro"}, {"clicked_within_days": 30}, {"tag": "vip"}]},
         {ANN}),
        ({"all": [{"tag": "vip"}, {"not": {"event": "purchase", "count_gte": 2}}]}, {CY}),
    ]
