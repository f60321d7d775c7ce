"""Dead workers noticed in seconds (core.liveness, delivery.dead_workers): the
heartbeat row, and the release of a silent worker's claims to the sweep, with
``now`` given so the 300 s lease is nowhere near running out."""
from __future__ import annotations

import uuid
from datetime import timedelta

import redis
from sqlalchemy import select, update

from core.liveness import beat, mark_stopped, silent_workers
from sequencing.dead_workers import release_dead_workers, release_lost_hand_overs
from settings import get_settings
from delivery.errors import TransientDeliveryError
from delivery.outbox import SEND_LEASE, claim_for_dispatch, claim_for_send
from delivery.sender import Outcome, record
from models import Enrollment, Message, WorkerHeartbeat, db
from models.base import utcnow
from sequencing.claims import claim_due_enrollments, claim_enrollments, take_claims
from sequencing.engine import advance_enrollments
from tasks.liveness import worker_owner
from tasks.sequencing import enqueue_sends
from tests.support import factories
from tests.support.sending import queue_emails, statuses
from tests.support.waiting import wait_for

DEAD_AFTER = timedelta(seconds=15)


def heartbeat_rows() -> dict[str, tuple[bool, int]]:
    """worker id -> (released, messages released)."""
    with db.session_scope() as s:
        return {h.worker_id: (h.released_at is not None, h.released_messages)
                for h in s.scalars(select(WorkerHeartbeat))}


def test_a_worker_is_silent_once_its_last_beat_is_older_than_the_threshold_and_a_beat_revives_it():
    start = utcnow()
    with db.session_scope() as s:
        beat(s.connection(), "w1", start)
    with db.session_scope() as s:
        assert silent_workers(s, start + timedelta(seconds=14), DEAD_AFTER) == []
        assert silent_workers(s, start + timedelta(seconds=16), DEAD_AFTER) == [("w1", False)]
        release_dead_workers(s, start + timedelta(seconds=16), DEAD_AFTER)
    assert heartbeat_rows() == {"w1": (True, 0)}
    with db.session_scope() as s:  # it was only paused: its next beat clears the mark
        beat(s.connection(), "w1", start + timedelta(seconds=17))
    assert heartbeat_rows() == {"w1": (False, 0)}
    with db.session_scope() as s:
        assert silent_workers(s, start + timedelta(seconds=20), DEAD_AFTER) == []


def test_a_dead_workers_sending_messages_are_released_to_the_in_doubt_sweep_and_a_live_ones_keep_their_lease():
    dead_ids, live_ids, unowned_ids = queue_emails(2), queue_emails(1), queue_emails(1)
    start = utcnow()
    with db.session_scope() as s:
        beat(s.connection(), "dead", start)
        beat(s.connection(), "live", start)
        claim_for_send(s, dead_ids, start, SEND_LEASE, owner="dead")
        claim_for_send(s, live_ids, start, SEND_LEASE, owner="live")
        claim_for_send(s, unowned_ids, start, SEND_LEASE)  # no owner (an older worker): the lease alone
    at = start + timedelta(seconds=20)
    with db.session_scope() as s:
        beat(s.connection(), "live", start + timedelta(seconds=12))
    with db.session_scope() as s:
        assert release_dead_workers(s, at, DEAD_AFTER) == {"dead": (2, False)}
    with db.session_scope() as s:
        assert sorted(claim_for_dispatch(s, at, 100, SEND_LEASE)) == sorted(dead_ids), \
            "only the dead worker's rows, 280 s before their lease would have run out"
    with db.session_scope() as s:
        rows = {m.id: m for m in s.scalars(select(Message))}
        assert {i: (rows[i].status, rows[i].crashes, rows[i].in_doubt_since) for i in dead_ids} == \
            {i: ("queued", 1, at) for i in dead_ids}, "marked in doubt and counted as a crash, as after a lease"
        assert {rows[i].claimed_until for i in live_ids + unowned_ids} == {start + SEND_LEASE}
    assert heartbeat_rows() == {"dead": (True, 2), "live": (False, 0)}
    with db.session_scope() as s:  # released once: a later tick finds nothing more to do
        assert release_dead_workers(s, at + timedelta(seconds=5), DEAD_AFTER) == {}


def test_a_late_outcome_of_a_released_worker_changes_nothing():
    # A worker that was paused, not dead, wakes after its claims were released and
    # handed to another: its outcome must not land on the other's claim.
    [message_id] = queue_emails(1)
    start = utcnow()
    with db.session_scope() as s:
        beat(s.connection(), "paused", start)
        [row] = claim_for_send(s, [message_id], start, SEND_LEASE, owner="paused")
    at = start + timedelta(seconds=20)
    with db.session_scope() as s:
        release_dead_workers(s, at, DEAD_AFTER)
        assert claim_for_dispatch(s, at, 100, SEND_LEASE) == [message_id]
        claim_for_send(s, [message_id], at, SEND_LEASE, owner="other")
    late = Outcome(message_id, row.account_id, row.subscriber_id, row.attempts, "smtp",
                   error=TransientDeliveryError("451 later"), at=at, claim=start + SEND_LEASE)
    with db.session_scope() as s:
        assert record(s, [late]) == ["superseded"]
    with db.session_scope() as s:
        message = s.get(Message, message_id)
        assert (message.status, message.claimed_by, message.claimed_until) == ("sending", "other", at + SEND_LEASE)


def test_the_send_task_claims_as_its_process_whose_heartbeat_keeps_beating(smtp, worker):
    # The suite's worker runs its threads in this process, so its id is this process's.
    ids = queue_emails(3)
    enqueue_sends(ids)
    wait_for(lambda: statuses() == {"sent": 3}, 30, "the worker to send")
    owner = worker_owner()
    assert worker_owner() == owner, "one id per process"
    with db.session_scope() as s:
        assert set(s.scalars(select(Message.claimed_by))) == {owner}
    # The tables were truncated before this test, perhaps after this process's first
    # beat: the thread's next beat writes the row again.
    wait_for(lambda: owner in heartbeat_rows(), 10, "the heartbeat thread to renew its row")


def test_a_dead_workers_enrollments_are_claimed_again_at_once_and_a_finished_advance_leaves_no_owner():
    acct = factories.account()
    seq = factories.sequence(acct, [{"type": "email", "subject": "hi", "text": "a"}])
    start = utcnow()
    ids = factories.enroll(acct, seq, factories.subscribers(acct, 4), start)
    with db.session_scope() as s:
        beat(s.connection(), "dead", start)
        beat(s.connection(), "live", start)
        assert claim_due_enrollments(s, start, 100, SEND_LEASE) == ids
    dead, live = ids[:3], ids[3:]
    with db.session_scope() as s:
        take_claims(s, dead, "dead")
        take_claims(s, live, "live")
    with db.session_scope() as s:  # the live worker finishes its advance: no owner is left on the row
        advance_enrollments(s, live, start)
        beat(s.connection(), "live", start + timedelta(seconds=12))
    at = start + timedelta(seconds=20)
    with db.session_scope() as s:
        assert release_dead_workers(s, at, DEAD_AFTER) == {"dead": (3, False)}
    with db.session_scope() as s:
        claim = claim_enrollments(s, at, 100, SEND_LEASE)
        assert (claim.ids, claim.crashed) == (dead, dead), "claimed again, 280 s early, as crashed"
    with db.session_scope() as s:
        assert dict(s.execute(select(Enrollment.id, Enrollment.claimed_by)).all()) == {i: None for i in ids}
        assert s.scalar(select(WorkerHeartbeat.released_enrollments).where(WorkerHeartbeat.worker_id == "dead")) == 3


def test_a_broker_that_lost_its_contents_is_noticed_once():
    from tasks.broker import broker_was_emptied

    broker, prefix = get_settings().broker_url, f"{get_settings().broker_prefix}liveness-{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(broker)
    try:
        assert broker_was_emptied(broker, prefix), "a new broker holds nothing handed to it before"
        assert not broker_was_emptied(broker, prefix)
        client.delete(*client.keys(prefix + "*"))  # flushed
        assert broker_was_emptied(broker, prefix)
        assert not broker_was_emptied("amqp://guest@127.0.0.1//", prefix), "RabbitMQ keeps its queues"
    finally:
        keys = client.keys(prefix + "*")
        if keys:
            client.delete(*keys)


def test_after_a_broker_flush_what_was_handed_to_it_and_not_started_is_due_again_at_once():
    queued = queue_emails(2)  # written by an advance, their tasks enqueued: dispatch leased for 300 s
    acct = factories.account("Bob")
    seq = factories.sequence(acct, [{"type": "email", "subject": "hi", "text": "a"}])
    start = utcnow()
    ids = factories.enroll(acct, seq, factories.subscribers(acct, 3), start)
    with db.session_scope() as s:
        s.execute(update(Message).where(Message.id.in_(queued)).values(claimed_until=start + SEND_LEASE))
        assert claim_due_enrollments(s, start, 100, SEND_LEASE) == ids
        take_claims(s, ids[:1], "running")  # its advance started: a live worker owns it
    at = start + timedelta(seconds=2)
    with db.session_scope() as s:
        assert claim_for_dispatch(s, at, 100, SEND_LEASE) == []
        assert claim_enrollments(s, at, 100, SEND_LEASE).ids == []
    with db.session_scope() as s:
        assert release_lost_hand_overs(s, at) == {"messages": 2, "enrollments": 2}
    with db.session_scope() as s:
        assert sorted(claim_for_dispatch(s, at, 100, SEND_LEASE)) == sorted(queued)
        assert claim_enrollments(s, at, 100, SEND_LEASE).ids == ids[1:], "not the one being advanced"


def test_the_tick_hands_out_again_the_unstarted_tasks_a_worker_that_died_busy_may_have_held():
    # A send worker killed while busy may also hold tasks it had not started yet
    # (prefetched): their rows carry no owner, and Redis keeps such tasks unacked
    # for its visibility timeout, an hour. Without this they waited out the 300 s
    # dispatch lease (bench.recovery, seed 22: the last email 299 s after the last fault).
    from tasks.broker import broker_was_emptied, keeps_a_dead_workers_tasks
    from tasks.sequencing import tick

    settings = get_settings()
    held, prefetched = queue_emails(1), queue_emails(2)
    now = utcnow()
    with db.session_scope() as s:
        beat(s.connection(), "dead", now - timedelta(hours=1))
        claim_for_send(s, held, now, SEND_LEASE, owner="dead")
        s.execute(update(Message).where(Message.id.in_(prefetched)).values(claimed_until=now + SEND_LEASE))
    broker_was_emptied(settings.broker_url, settings.broker_prefix)  # the broker's marker is set: no flush seen
    assert keeps_a_dead_workers_tasks(settings.broker_url)
    assert tick()["messages"] == 3, "the dead worker's claimed message and the two it may have held unstarted"
    assert not keeps_a_dead_workers_tasks("amqp://guest@127.0.0.1//"), "RabbitMQ redelivers them at once"


def test_a_silent_worker_that_said_it_stopped_was_not_killed_unless_it_still_held_claims():
    held = queue_emails(1)
    start = utcnow()
    with db.session_scope() as s:
        for worker_id in ("stopped", "killed", "stopped holding"):
            beat(s.connection(), worker_id, start)
        mark_stopped(s.connection(), "stopped", start)
        mark_stopped(s.connection(), "stopped holding", start)  # a cold shutdown: its tasks cut short
        claim_for_send(s, held, start, SEND_LEASE, owner="stopped holding")
    with db.session_scope() as s:
        released = release_dead_workers(s, start + timedelta(seconds=20), DEAD_AFTER)
    assert released == {"stopped": (0, True), "killed": (0, False), "stopped holding": (1, True)}
    assert {worker_id: r.died for worker_id, r in released.items()} == {
        "stopped": False, "killed": True, "stopped holding": True}


def test_the_tick_hands_out_again_the_unstarted_tasks_of_a_killed_worker_that_held_no_claim():
    # Killed between tasks, or before its first claim of a batch: its silence alone
    # says it may have held prefetched tasks. A worker that stopped cleanly gave them
    # back to the broker, and the tick leaves the queued rows to their lease.
    from tasks.broker import broker_was_emptied
    from tasks.sequencing import tick

    settings = get_settings()
    prefetched = queue_emails(2)
    now = utcnow()
    with db.session_scope() as s:
        beat(s.connection(), "stopped", now - timedelta(hours=1))
        mark_stopped(s.connection(), "stopped", now - timedelta(hours=1))
        s.execute(update(Message).where(Message.id.in_(prefetched)).values(claimed_until=now + SEND_LEASE))
    broker_was_emptied(settings.broker_url, settings.broker_prefix)  # the broker's marker is set: no flush seen
    assert tick()["messages"] == 0, "a clean stop: nothing handed out again"
    with db.session_scope() as s:
        beat(s.connection(), "killed", now - timedelta(hours=1))
    assert tick()["messages"] == 2, "a kill: what it may have held unstarted is handed out again"


def test_a_worker_process_stopping_marks_its_row_and_the_next_claim_beats_under_a_new_id():
    from tasks.liveness import stop_heartbeat

    first = worker_owner()
    stop_heartbeat()
    with db.session_scope() as s:
        row = s.scalar(select(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == first))
        assert row is not None and row.stopped_at is not None
    second = worker_owner()
    try:
        assert second != first
        with db.session_scope() as s:
            assert s.scalar(select(WorkerHeartbeat.stopped_at).where(WorkerHeartbeat.worker_id == second)) is None
    finally:
        stop_heartbeat()


def test_the_heartbeat_and_the_release_work_on_the_embedded_sqlite_default(tmp_path):
    from tests.support.database import embedded_sqlite

    with embedded_sqlite(tmp_path):
        [message_id] = queue_emails(1)
        start = utcnow()
        with db.autocommit_scope() as s:  # as the heartbeat thread writes it
            beat(s.connection(), "dead", start)
        with db.session_scope() as s:
            claim_for_send(s, [message_id], start, SEND_LEASE, owner="dead")
        at = start + timedelta(seconds=20)
        with db.session_scope() as s:
            assert release_dead_workers(s, at, DEAD_AFTER) == {"dead": (1, False)}
            assert release_lost_hand_overs(s, at) == {"messages": 0, "enrollments": 0}
        with db.session_scope() as s:
            assert claim_for_dispatch(s, at, 100, SEND_LEASE) == [message_id]
            assert s.get(Message, message_id).crashes == 1
