"""Pruning the rollups' "first of this metric for this message" pairs: the pairs
of messages older than the horizon go, the young ones' stay, and a later event of
either kind of message counts in totals without counting a second unique."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from analytics.firsts import first_young_message, prune_firsts
from analytics.rollups import FIRSTS_DAYS, fold_chunk
from models import Event, Message, RollupFirst, SequenceRollup, db
from models.base import utcnow
from tests.support import factories
from tests.support.engine import run_due

STEP = {"type": "email", "subject": "Hi", "text": "x"}


def _fold_all(account_id: int) -> None:
    while True:
        with db.session_scope() as s:
            if fold_chunk(s, account_id, utcnow()).caught_up:
                return


def _opened(account_id: int) -> tuple[int, int]:
    with db.session_scope() as s:
        uniques, total = s.execute(select(func.sum(SequenceRollup.uniques), func.sum(SequenceRollup.total)).where(
            SequenceRollup.account_id == account_id, SequenceRollup.metric == "opened")).one()
        return int(uniques), int(total)


def _open_each(account_id: int, messages: list[tuple[int, int]], tag: str) -> None:
    with db.session_scope() as s:
        s.add_all(Event(account_id=account_id, subscriber_id=sub, message_id=mid, name="opened",
                        dedup_key=f"opened:{mid}:{tag}") for mid, sub in messages)


def test_pairs_of_messages_past_the_horizon_are_dropped_and_their_later_opens_count_no_second_opener():
    account = factories.account()
    sequence = factories.sequence(account, [STEP])
    now = utcnow()
    factories.enroll(account, sequence, factories.subscribers(account, 10), now)
    ids = sorted(run_due(now))
    with db.session_scope() as s:
        messages = s.execute(select(Message.id, Message.subscriber_id).where(Message.id.in_(ids))
                             .order_by(Message.id)).all()
    _open_each(account, messages, "first")
    _fold_all(account)
    assert _opened(account) == (10, 10)
    old, young = messages[:4], messages[4:]
    with db.session_scope() as s:
        s.execute(update(Message).where(Message.id.in_([m for m, _ in old]))
                  .values(created_at=now - timedelta(days=FIRSTS_DAYS + 2)))
        below = first_young_message(s, now)
    assert below == young[0][0]
    with db.session_scope() as s:
        assert prune_firsts(s, below, limit=3) == 3
    with db.session_scope() as s:
        assert prune_firsts(s, below, limit=3) == 1
        assert prune_firsts(s, below) == 0
        kept = set(s.scalars(select(RollupFirst.message_id).where(RollupFirst.metric == "opened")))
    assert kept == {m for m, _ in young}

    _open_each(account, messages, "again")
    _fold_all(account)
    assert _opened(account) == (10, 20), "ten more opens, no new opener: the old by age, the young by their pairs"


def test_a_first_open_of_a_message_past_the_horizon_counts_only_as_an_open():
    account = factories.account()
    sequence = factories.sequence(account, [STEP])
    now = utcnow()
    factories.enroll(account, sequence, factories.subscribers(account, 2), now)
    ids = sorted(run_due(now))
    with db.session_scope() as s:
        messages = s.execute(select(Message.id, Message.subscriber_id).where(Message.id.in_(ids))
                             .order_by(Message.id)).all()
        s.execute(update(Message).where(Message.id == messages[0][0])
                  .values(created_at=now - timedelta(days=FIRSTS_DAYS + 1)))
    _open_each(account, messages, "first")
    _fold_all(account)
    assert _opened(account) == (1, 2)


def test_with_no_old_messages_nothing_is_pruned_and_the_task_says_so():
    from tasks.analytics import prune_rollup_firsts  # noqa: PLC0415

    account = factories.account()
    factories.enroll(account, factories.sequence(account, [STEP]), factories.subscribers(account, 3), utcnow())
    ids = run_due(utcnow())
    with db.session_scope() as s:
        assert first_young_message(s, utcnow()) == min(ids)
    assert prune_rollup_firsts() == 0
