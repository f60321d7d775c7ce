"""Retention's pruning on real PostgreSQL (analytics.retention): old rows go, new
rows stay, other accounts are untouched, a batch is never more than its limit,
a second run finds nothing, and no event the rollups have not folded is lost;
whole months go as dropped partitions (analytics.event_partitions)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update

from analytics.event_partitions import (DEFAULT, create_partition, drop_partition, ensure_partitions, month_partitions,
                                        month_start, partition_for)
from analytics.events import record_event
from analytics.retention import in_turns, plan, run_step
from analytics.rollups import fold_chunk
from models import Account, Event, EventKey, InboundEvent, Message, RollupWatermark, db
from models.base import utcnow
from tests.support import factories


def _events(account: int, subscriber: int, at: datetime, count: int, tag: str) -> None:
    with db.session_scope() as s:
        for n in range(count):
            assert record_event(s, account_id=account, subscriber_id=subscriber, name="custom", now=at,
                                dedup_key=f"{tag}:{n}", occurred_at=at) is not None


def _fold(account: int, limit: int = 50_000) -> None:
    while True:
        with db.session_scope() as s:
            if fold_chunk(s, account, utcnow(), limit=limit).caught_up or limit < 50_000:
                return


def _prune(now: datetime, batch: int = 5_000) -> dict[str, int]:
    """A whole run, each batch its own transaction, as tasks.analytics.prune_retention runs it."""
    with db.session_scope() as s:
        steps = plan(s, now)
    pruned: dict[str, int] = {}
    for step in steps:
        while True:
            with db.session_scope() as s:
                done = run_step(s, step, batch)
            assert done <= batch
            pruned[step.kind] = pruned.get(step.kind, 0) + done
            if done < batch:
                break
    return pruned


def _retain(account: int, **days: int) -> None:
    with db.session_scope() as s:
        s.execute(update(Account).where(Account.id == account).values(
            **{f"retention_{kind}_days": value for kind, value in days.items()}))


def _count(model: type, *where: object) -> int:
    with db.session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)))


def _tags(account: int) -> dict[str, int]:
    with db.session_scope() as s:
        keys = s.scalars(select(Event.dedup_key).where(Event.account_id == account))
        tags: dict[str, int] = {}
        for key in keys:
            tags[key.split(":")[0]] = tags.get(key.split(":")[0], 0) + 1
        return tags


def test_old_events_go_new_ones_stay_and_other_accounts_keep_theirs():
    now = utcnow()
    alice, bob = factories.account("Alice"), factories.account("Bob")
    [ann], [ben] = factories.subscribers(alice, 1), factories.subscribers(bob, 1)
    _retain(alice, events=30)
    _events(alice, ann, now - timedelta(days=45), 7, "a-old")
    _events(alice, ann, now - timedelta(days=2), 3, "a-new")
    _events(bob, ben, now - timedelta(days=45), 4, "b-old")
    _fold(alice)
    _fold(bob)
    pruned = _prune(now, batch=3)
    assert pruned["events"] == 7 and pruned["event_keys"] == 7
    assert _tags(alice) == {"a-new": 3}
    assert _tags(bob) == {"b-old": 4}, "bob keeps 400 days"
    assert _count(EventKey, EventKey.account_id == alice) == 3
    assert _count(EventKey, EventKey.account_id == bob) == 4
    assert _prune(now, batch=3).get("events", 0) == 0, "a second run finds nothing left"


def test_events_the_rollups_have_not_folded_are_never_pruned():
    now = utcnow()
    alice = factories.account("Alice")
    [ann] = factories.subscribers(alice, 1)
    _retain(alice, events=30)
    _events(alice, ann, now - timedelta(days=90), 10, "old")
    _fold(alice, limit=4)  # the first four only
    with db.session_scope() as s:
        assert s.scalar(select(RollupWatermark.folded).where(RollupWatermark.account_id == alice)) == 4
    pruned = _prune(now)
    assert pruned["events"] == 4
    assert _tags(alice) == {"old": 6}
    assert pruned["event_keys"] == 0, "keys stay while an event that old is kept"
    assert _count(EventKey, EventKey.account_id == alice) == 10
    with db.session_scope() as s:
        again = record_event(s, account_id=alice, subscriber_id=ann, name="custom", now=now, dedup_key="old:9",
                             occurred_at=now - timedelta(days=90))
    assert again is None, "a replay of a kept event is still a duplicate"
    _fold(alice)
    pruned = _prune(now)
    assert pruned["events"] == 6 and pruned["event_keys"] == 10
    assert _tags(alice) == {}


def test_a_month_is_dropped_once_every_account_is_past_it_and_its_rows_go_in_batches_otherwise():
    now = utcnow()
    alice, bob = factories.account("Alice"), factories.account("Bob")
    [ann], [ben] = factories.subscribers(alice, 1), factories.subscribers(bob, 1)
    old, older = month_start(now.date(), -20), month_start(now.date(), -22)
    at = {month: partition_for(month).start + timedelta(days=3) for month in (old, older)}
    _events(alice, ann, at[older], 3, "a-older")
    _events(bob, ben, at[older], 2, "b-older")
    _events(alice, ann, at[old], 3, "a-old")
    _events(bob, ben, at[old], 2, "b-old")
    with db.session_scope() as s:
        assert s.execute(text(f"SELECT count(*) FROM {DEFAULT}")).scalar() == 10
        for month in (old, older):
            create_partition(s, partition_for(month))
    with db.session_scope() as s:
        assert s.execute(text(f"SELECT count(*) FROM {DEFAULT}")).scalar() == 0, "moved into their months"
        assert s.execute(text(f"SELECT count(*) FROM {partition_for(old).name}")).scalar() == 5
    _retain(bob, events=3650)  # bob keeps ten years: the months stay, alice's rows in them go
    _fold(alice)
    _fold(bob)
    pruned = _prune(now, batch=2)
    assert "drop_partition" not in pruned and pruned["events"] == 6
    assert _tags(alice) == {} and _tags(bob) == {"b-older": 2, "b-old": 2}
    _retain(bob, events=400)
    assert {partition_for(old).name, partition_for(older).name} <= _partitions()
    pruned = _prune(now)
    assert pruned["drop_partition"] == 2, "both months are past every account's retention"
    assert not {partition_for(old).name, partition_for(older).name} & _partitions()
    assert _tags(bob) == {}


def _partitions() -> set[str]:
    with db.session_scope() as s:
        return {p.name for p in month_partitions(s)}


def test_a_month_with_an_unfolded_event_is_not_dropped():
    now = utcnow()
    alice = factories.account("Alice")
    [ann] = factories.subscribers(alice, 1)
    month = month_start(now.date(), -20)
    _events(alice, ann, partition_for(month).start + timedelta(days=1), 3, "old")
    with db.session_scope() as s:
        create_partition(s, partition_for(month))
    _fold(alice, limit=2)
    pruned = _prune(now)
    assert "drop_partition" not in pruned and pruned["events"] == 2
    assert _tags(alice) == {"old": 1}
    _fold(alice)
    assert _prune(now)["drop_partition"] == 1


def test_the_coming_months_are_created_ahead_and_stray_rows_move_out_of_default():
    now = utcnow()
    alice = factories.account("Alice")
    [ann] = factories.subscribers(alice, 1)
    ahead = month_start(now.date(), 5)
    _events(alice, ann, partition_for(ahead).start + timedelta(hours=1), 2, "future")
    with db.session_scope() as s:
        created = ensure_partitions(s, now, ahead=5)
    try:
        assert partition_for(ahead).name in created
        with db.session_scope() as s:
            assert s.execute(text(f"SELECT count(*) FROM {partition_for(ahead).name}")).scalar() == 2
            assert s.execute(text(f"SELECT count(*) FROM {DEFAULT}")).scalar() == 0
            assert ensure_partitions(s, now, ahead=5) == [], "a second run finds them there"
    finally:
        with db.session_scope() as s:
            for name in created:
                if name != partition_for(month_start(now.date())).name:
                    s.execute(text(f"DROP TABLE IF EXISTS {name}"))


def test_a_dedup_key_is_unique_across_months():
    now = utcnow()
    alice = factories.account("Alice")
    [ann] = factories.subscribers(alice, 1)
    with db.session_scope() as s:
        assert record_event(s, account_id=alice, subscriber_id=ann, name="opened", now=now, dedup_key="opened:1",
                            occurred_at=now - timedelta(days=40)) is not None
    with db.session_scope() as s:
        assert record_event(s, account_id=alice, subscriber_id=ann, name="opened", now=now, dedup_key="opened:1") is None
    assert _count(Event, Event.account_id == alice) == 1


def _message(account: int, subscriber: int, key: str, created: datetime, status: str = "sent",
             meta: dict | None = None) -> int:
    with db.session_scope() as s:
        message = Message(account_id=account, subscriber_id=subscriber, idempotency_key=key, to_email="x@example.test",
                          subject="Hello", status=status, error="boom" if status == "failed" else None,
                          meta=meta or {"position": 0}, created_at=created)
        s.add(message)
        s.flush()
        return message.id


def test_message_bodies_are_cleared_past_retention_the_rows_stay():
    now = utcnow()
    alice, bob = factories.account("Alice"), factories.account("Bob")
    [ann], [ben] = factories.subscribers(alice, 1), factories.subscribers(bob, 1)
    _retain(bob, bodies=60)
    old = now - timedelta(days=40)
    confirmation = {"kind": "confirmation", "subject": "Confirm", "html": "<p>x</p>", "text": "x"}
    cleared = [_message(alice, ann, "a1", old), _message(alice, ann, "a2", old, meta=confirmation),
               _message(alice, ann, "a3", old, status="failed")]
    pending = _message(alice, ann, "a4", old, status="deferred")
    after_pending = _message(alice, ann, "a5", old)
    bobs = _message(bob, ben, "b1", old)
    young = _message(alice, ann, "a6", now - timedelta(days=2))
    pruned = _prune(now, batch=2)
    assert pruned["bodies"] == 3
    with db.session_scope() as s:
        rows = {m.id: m for m in s.scalars(select(Message))}
        for message_id in cleared:
            assert (rows[message_id].subject, rows[message_id].error) == (None, None)
        assert rows[cleared[1]].meta == {"kind": "confirmation"}
        assert rows[cleared[0]].meta == {"position": 0}
        for kept in (pending, after_pending, young):
            assert rows[kept].subject == "Hello", "unsettled, behind an unsettled one, or young"
        assert rows[bobs].subject == "Hello" and rows[bobs].error is None
    _retain(bob, bodies=30)
    with db.session_scope() as s:
        s.execute(update(Message).where(Message.id == pending).values(status="sent"))
    assert _prune(now)["bodies"] == 3, "the settled one, the one after it, and bob's"
    assert _prune(now).get("bodies", 0) == 0
    assert _count(Message) == 7


def test_processed_inbound_events_go_past_retention_pending_ones_stay():
    now = utcnow()
    alice, bob = factories.account("Alice"), factories.account("Bob")
    _retain(alice, inbound=7)
    rows = []
    with db.session_scope() as s:
        for account, status, days, ref in ((alice, "processed", 10, "a-old"), (alice, "unmatched", 10, "a-old2"),
                                           (alice, "pending", 10, "a-pending"), (alice, "processed", 1, "a-new"),
                                           (bob, "processed", 10, "b-old"), (None, "processed", 40, "env-old"),
                                           (None, "processed", 10, "env-new")):
            rows.append(InboundEvent(account_id=account, provider="sendgrid", provider_event_id=ref, status=status,
                                     received_at=now - timedelta(days=days), payload={}))
        s.add_all(rows)
    assert _prune(now, batch=1)["inbound"] == 3
    with db.session_scope() as s:
        kept = set(s.scalars(select(InboundEvent.provider_event_id)))
    assert kept == {"a-pending", "a-new", "b-old", "env-new"}


def _budgeted_run(now: datetime, rows: int, start: int = 0) -> dict[str, int]:
    """A run whose budget runs out once ``rows`` rows are pruned (a budget in rows
    rather than seconds, so that what each account got does not depend on the machine)."""
    with db.session_scope() as s:
        steps = plan(s, now)
    spent = {"rows": 0}

    def run_batch(step):
        with db.session_scope() as s:
            done = run_step(s, step, 2)
        spent["rows"] += done if step.kind == "bodies" else 0
        return done

    return in_turns(steps, run_batch, lambda: spent["rows"] >= rows, batch=2, start=start)


def _bodies_left(account: int) -> int:
    return _count(Message, Message.account_id == account, Message.subject.is_not(None))


def test_one_accounts_backlog_does_not_hold_the_others_back():
    now = utcnow()
    alice, bob = factories.account("Alice"), factories.account("Bob")
    [ann], [ben] = factories.subscribers(alice, 1), factories.subscribers(bob, 1)
    old = now - timedelta(days=40)
    for n in range(6):
        _message(alice, ann, f"a{n}", old)
    for n in range(2):
        _message(bob, ben, f"b{n}", old)
    assert _budgeted_run(now, rows=4)["bodies"] == 4
    assert _bodies_left(bob) == 0, "bob's turn came after one batch of alice's, not after all of hers"
    assert _bodies_left(alice) == 4
    assert _budgeted_run(now, rows=100)["bodies"] == 4, "the next run goes on where alice was"
    assert _bodies_left(alice) == 0


def test_a_run_can_start_at_any_account():
    now = utcnow()
    alice, bob = factories.account("Alice"), factories.account("Bob")
    [ann], [ben] = factories.subscribers(alice, 1), factories.subscribers(bob, 1)
    old = now - timedelta(days=40)
    for account, person in ((alice, ann), (bob, ben)):
        for n in range(4):
            _message(account, person, f"{account}:{n}", old)
    with db.session_scope() as s:
        owners = list(dict.fromkeys(step.account_id for step in plan(s, now) if step.kind != "drop_partition"))
    _budgeted_run(now, rows=2, start=owners.index(bob))
    assert (_bodies_left(alice), _bodies_left(bob)) == (4, 2), "bob went first, and the budget ended with his batch"
    _budgeted_run(now, rows=2, start=owners.index(alice))
    assert (_bodies_left(alice), _bodies_left(bob)) == (2, 2)


def test_a_drop_behind_a_reader_gives_up_its_tries_and_leaves_the_transaction_usable():
    now = utcnow()
    alice = factories.account("Alice")
    [ann] = factories.subscribers(alice, 1)
    month = partition_for(month_start(now.date(), -20))
    _events(alice, ann, month.start + timedelta(days=1), 2, "old")
    with db.session_scope() as s:
        create_partition(s, month)
    reader = db.get_engine().connect()
    try:
        reader.begin()
        assert reader.execute(text("SELECT count(*) FROM events")).scalar() == 2  # holds its lock on events
        with db.session_scope() as s:
            assert drop_partition(s, month, tries=2, pause=0) is False
            assert s.execute(text("SELECT count(*) FROM rollup_watermarks")).scalar() is not None, "still usable"
    finally:
        reader.rollback()
        reader.close()
    assert month.name in _partitions()
    with db.session_scope() as s:
        assert drop_partition(s, month, tries=1)
    assert month.name not in _partitions()
